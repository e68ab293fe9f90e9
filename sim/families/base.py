"""The model-family abstraction shared by every family.

A family is a pair of pure functions closed over static settings, in the
shape of optax's ``GradientTransformation``:

* ``fit(key, data) -> params`` fits a model to one training set (the key is
  unused by closed-form fits but keeps stochastic fits, e.g. EM or SGD,
  in the same signature);
* ``sample(key, params, n) -> data`` draws ``n`` (a static Python int)
  training points from a fitted model.

Both are written for a single chain; the engine batches them with ``vmap``.
Nothing here holds arrays or state.

The data regimes of :mod:`sim.regimes` (accumulate, fresh real data, anchored
real sets, sample-size schedules, verification filters) are written once
against the optional :class:`DataOps` protocol below, so a new family gets all
of them by implementing it; a family without ``ops`` runs the replace regime
only (:func:`sim.chain.replace_step`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

Params = Any
Data = Any
Stats = Any
Points = Any


class DataOps(NamedTuple):
    r"""Training sets as mergeable summaries: what :mod:`sim.regimes` needs of a family.

    A *stats* value summarises one training set so that the fit depends on the
    set only through it (sufficient statistics: Gaussian ``(count, mean,
    log M2)``, categorical counts, regression ``(T, X^T X, X^T y)``), and
    ``merge`` gives the summary of the union of two sets. Then accumulating
    all data so far keeps one summary per chain, whose size does not grow with
    generations.

    Attributes:
      stats: ``stats(data, weights=None) -> Stats`` for data returned by
        ``Family.sample``; 0/1 ``weights`` (shape ``(n,)``, families with
        ``points`` only) select the points a verifier kept.
      merge: ``merge(a, b) -> Stats``, the summary of the pooled sets.
      fit_stats: ``fit_stats(key, stats) -> params``; equal to
        ``fit(key, data)`` when ``stats = stats(data)``.
      count: ``count(stats) -> float array``, the number of points summarised.
      empty: ``empty(params) -> Stats``: the summary of no data (the identity
        of ``merge``), with the dtypes and shapes that ``params`` implies.
      min_count: the fewest points a fit needs (a filtered set with fewer
        keeps the previous model).
      sample_stats: optional ``sample_stats(key, params, n) -> Stats``: the
        summary of ``n`` samples drawn directly (same law as
        ``stats(sample(key, params, n))``, not the same draws), where ``n``
        may be a traced integer. Needed by sample-size schedules and used by
        the regimes' ``exact`` draws; ``None`` if the family has none.
      points: optional ``points(data) -> Points``: the data as a pytree whose
        leaves have a leading axis of points (for stored pools, i.e.
        accumulate-subsample, and for verifiers that judge points).
      point_stats: optional ``point_stats(points, weights) -> Stats``, the
        summary of the points with 0/1 ``weights`` (shape ``(n,)``).
      subsample: optional ``subsample(key, stats, size, capacity) -> Stats``:
        the summary of ``size`` points drawn without replacement from the set
        that ``stats`` summarises (at most ``capacity`` points), for families
        whose points are exchangeable given their summary (categorical
        counts). Families without it subsample a stored pool of ``points``.
      fit_stats_info: optional ``fit_stats_info(key, stats) -> (params, info)``
        for fits that report diagnostics (EM iterations and log-likelihood,
        a training loss); the engine records the info beside the state.
      thin: optional ``thin(key, data, accept) -> Stats``, for families
        without ``points``: the summary of the points of ``data`` that a
        verifier keeps, each independently with probability ``accept(value)``
        (categorical: ``accept`` maps category indices to probabilities).
        Families with ``points`` are thinned by the regimes themselves.
      fit_stats_warm: optional ``fit_stats_warm(key, stats, previous) -> (params, info)``:
        a fit that starts from the previous generation's params (warm start, as
        fine-tuning does: a neural model's weights); the regimes call it, when
        present, instead of ``fit_stats_info``/``fit_stats``.
    """

    stats: Callable[..., Stats]
    merge: Callable[[Stats, Stats], Stats]
    fit_stats: Callable[[Any, Stats], Params]
    count: Callable[[Stats], Any]
    empty: Callable[[Params], Stats]
    min_count: int = 1
    sample_stats: Callable[[Any, Params, Any], Stats] | None = None
    points: Callable[[Data], Points] | None = None
    point_stats: Callable[[Points, Any], Stats] | None = None
    subsample: Callable[[Any, Stats, int, int], Stats] | None = None
    thin: Callable[[Any, Data, Callable], Stats] | None = None
    fit_stats_info: Callable[[Any, Stats], tuple[Params, Any]] | None = None
    fit_stats_warm: Callable[[Any, Stats, Params], tuple[Params, Any]] | None = None


class Family(NamedTuple):
    """A model family: pure ``fit`` and ``sample`` functions.

    Attributes:
      fit: ``(key, data) -> params``.
      sample: ``(key, params, n) -> data`` with ``n`` static.
      name: a short label used in reports and manifests.
      ops: the :class:`DataOps` that the data regimes need, or ``None``.
      fit_info: optional ``(key, data) -> (params, info)``: ``fit`` with its
        per-fit diagnostics (a pytree of scalars), for stochastic or iterative
        fits; the chain's info then carries them to the record.
      noise, with_noise: optional, for a sampler whose randomness does not
        depend on the params (a location-scale family): ``noise(key, n, dtype)``
        draws it and ``with_noise(params, noise) -> data`` makes the sample, with
        ``sample(key, params, n) == with_noise(params, noise(key, n, dtype))``.
        The engine then draws generation t+1's noise while it fits generation t
        (:class:`sim.chain.AheadStep`).
    """

    fit: Callable[[Any, Data], Params]
    sample: Callable[[Any, Params, int], Data]
    name: str = "family"
    ops: DataOps | None = None
    fit_info: Callable[[Any, Data], tuple[Params, Any]] | None = None
    noise: Callable[[Any, int, Any], Any] | None = None
    with_noise: Callable[[Params, Any], Data] | None = None
