r"""Data regimes: what each generation trains on (issue 5's remedies), for every family.

A :class:`Regime` says which data fit :math:`t = 1, 2, \dots` is trained on;
fit 1 always sees real data only (it samples generation 0, the real
distribution). With :math:`M_t` the sample size of generation :math:`t`
(``sample_size``, or ``schedule[t-1]``):

* ``replace``: :math:`M_t` samples of fit :math:`t-1` (the classic chain);
* ``accumulate``: everything so far, i.e. the :math:`M_1` real points and
  the :math:`M_2, \dots, M_t` synthetic ones (Gerstgrasser et al. 2024);
* ``subsample``: ``budget`` points drawn without replacement from
  everything so far (a fixed training budget; Kazdan et al. 2024), all of it
  while the pool is smaller than the budget;
* ``fresh``: :math:`R_t` new real points plus :math:`M_t - R_t` samples of
  fit :math:`t-1`, with :math:`R_t = \operatorname{round}(\alpha M_t)`
  (``mixing="fixed"``, THEORY.md F1) or
  :math:`R_t \sim \mathrm{Bin}(M_t, \alpha)` (``"binomial"``);
* ``anchored``: one real set of :math:`R = M - \operatorname{round}(\lambda M)`
  points, drawn at fit 1 and reused by every fit, plus
  :math:`\operatorname{round}(\lambda M_t)` samples of fit :math:`t-1`
  (:math:`\lambda` = synthetic share, THEORY.md F3);

and two options compose with each of them:

* ``schedule``: the sample sizes :math:`M_1, M_2, \dots` (THEORY.md G6:
  whether :math:`\sum_t 1/M_t` converges decides whether W2 diverges);
* ``verifier`` (:class:`Verifier`): each *synthetic* point is kept with a
  probability that depends on whether it is good (e.g. likely under the real
  distribution): ``accept_good`` for good points, ``accept_bad`` for bad
  ones, i.e. a verifier with false-rejection rate ``1 - accept_good`` and
  false-acceptance rate ``accept_bad``. Real data are never filtered. A fit
  left with fewer points than the family needs keeps the previous model.

Regimes are written once against the :class:`~sim.families.base.DataOps`
protocol: a training set is carried as its summary (``stats``), pooled with
``merge`` and fitted with ``fit_stats``. Accumulating therefore keeps one
summary per chain whose size does not depend on the number of generations
(Gaussian: count, mean, log M2; categorical: counts; regression: X^T X,
X^T y). A family whose summary is its data (no finite sufficient statistic:
a kernel density estimate, a neural model) would have to implement
``stats`` as a fixed-capacity buffer of points, and accumulating then costs
O(total points) per chain, which is what the regime means for it.
``subsample`` needs the points themselves whatever the family: it keeps a
pool of every point so far (``ops.points``; memory O(sum of M_t) per chain),
except for families whose points are exchangeable given their summary
(categorical counts, ``ops.subsample``).

Draws. ``draws="points"`` samples the synthetic data with ``family.sample``
and summarises them (the law and, for ``replace``, the very draws of
:func:`sim.chain.replace_step`); ``draws="exact"`` draws the summaries
directly with ``ops.sample_stats`` (Gaussian: O(1) per generation whatever
M; THEORY.md G1). Real data (fresh and anchor sets) are drawn as summaries
whenever the family has ``sample_stats``, on either path: they are never
filtered or pooled as points. Schedules need ``"exact"`` (their sizes change with the
generation, which a compiled ``sample`` cannot); verifiers and point pools
need ``"points"``.

Sweeps. :func:`regime_step` is cached (one compilation per setting);
:func:`make_regime_step` is the same step uncached, for a family built inside
a jitted function with traced settings, and takes a ``fraction`` (alpha or
lambda) that may be traced (a per-lane scalar under ``vmap``).

The regime's state per chain is a :class:`RegimeState`: the params, the
number of fits so far, the pool (the accumulated summary, the anchor set's
summary, or the stored points) and the size of the last training set, which
is recorded as the field ``train_size`` next to the family's own record.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sim import random as _random
from sim._static import is_static
from sim._validate import check_float, check_int
from sim.chain import fit_stats, replace_transition
from sim.families.base import Family
from sim.parallel import SimulationResult, simulate

KINDS = ("replace", "accumulate", "subsample", "fresh", "anchored")
MIXINGS = ("fixed", "binomial")
DRAWS = ("points", "exact")


@dataclasses.dataclass(frozen=True)
class Verifier:
    """Keeps a synthetic point w.p. ``accept_good`` if ``good(point)``, else ``accept_bad``.

    Attributes:
      good: a hashable function from the family's point values (Gaussian:
        the draws; categorical: category indices) to booleans; build it with
        :func:`gaussian_verifier` or :func:`categorical_verifier`.
      accept_good: P(keep | good) = 1 - the false-rejection rate.
      accept_bad: P(keep | bad) = the false-acceptance rate.
      label: a short description for reports.
    """

    good: Callable[[jax.Array], jax.Array]
    accept_good: float = 1.0
    accept_bad: float = 0.0
    label: str = "verifier"

    def __post_init__(self):
        for name in ("accept_good", "accept_bad"):
            v = check_float(getattr(self, name), name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name}={v} must be a probability in [0, 1]")
            object.__setattr__(self, name, v)

    def probability(self, values: jax.Array) -> jax.Array:
        """The probability of keeping each point."""
        good = self.good(values)
        leaf = jax.tree.leaves(values)[0]
        dtype = leaf.dtype if jnp.issubdtype(leaf.dtype, jnp.floating) else jnp.float32
        return jnp.where(good, self.accept_good, self.accept_bad).astype(dtype)


@dataclasses.dataclass(frozen=True)
class Regime:
    """What each generation trains on (see the module docstring); hashable.

    Build it with the class methods: ``Regime.replace()``,
    ``Regime.accumulate()``, ``Regime.subsample(budget)``,
    ``Regime.fresh(alpha)``, ``Regime.anchored(lam)``, each taking the options
    ``schedule=`` and ``verifier=``.
    """

    kind: str = "replace"
    fraction: float = 0.0  # fresh: alpha (real share); anchored: lambda (synthetic share)
    budget: int = 0  # subsample: points per fit
    mixing: str = "fixed"  # fresh: real count fixed or binomial
    schedule: tuple[int, ...] = ()  # M_1, M_2, ... (empty: sample_size every generation)
    verifier: Verifier | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"regime kind={self.kind!r} is not one of {KINDS}")
        frac = check_float(self.fraction, "fraction")
        if not 0.0 <= frac <= 1.0:
            name = {"fresh": "alpha", "anchored": "lam"}.get(self.kind, "fraction")
            raise ValueError(f"{name}={frac} must be in [0, 1]")
        object.__setattr__(self, "fraction", frac)
        if self.kind == "subsample":
            object.__setattr__(self, "budget", check_int(self.budget, "budget", 1))
        if self.mixing not in MIXINGS:
            raise ValueError(f"mixing={self.mixing!r} is not one of {MIXINGS}")
        schedule = tuple(check_int(m, "schedule entry", 1) for m in self.schedule)
        object.__setattr__(self, "schedule", schedule)
        if self.verifier is not None and not isinstance(self.verifier, Verifier):
            raise ValueError(f"verifier must be a Verifier; got {self.verifier!r}")
        if schedule and self.verifier is not None:
            raise ValueError("a verifier needs draws='points', which a schedule cannot use")
        if schedule and self.kind == "subsample":
            raise ValueError("subsample stores points, which a schedule (exact draws) cannot give")

    @classmethod
    def replace(cls, **options) -> Regime:
        """Train on the previous model's samples only."""
        return cls("replace", **options)

    @classmethod
    def accumulate(cls, **options) -> Regime:
        """Train on all real and synthetic data so far."""
        return cls("accumulate", **options)

    @classmethod
    def subsample(cls, budget: int, **options) -> Regime:
        """Train on ``budget`` points drawn without replacement from all data so far."""
        return cls("subsample", budget=budget, **options)

    @classmethod
    def fresh(cls, alpha: float, mixing: str = "fixed", **options) -> Regime:
        """A share ``alpha`` of each generation's sample is new real data."""
        return cls("fresh", fraction=alpha, mixing=mixing, **options)

    @classmethod
    def anchored(cls, lam: float, **options) -> Regime:
        """A fixed real set reused every generation, plus a synthetic share ``lam``."""
        return cls("anchored", fraction=lam, **options)

    @property
    def label(self) -> str:
        """A short description (for tables, legends and manifests)."""
        text = {
            "replace": "replace",
            "accumulate": "accumulate",
            "subsample": f"subsample(B={self.budget})",
            "fresh": f"fresh(alpha={self.fraction:g}"
            + (",binomial)" if self.mixing == "binomial" else ")"),
            "anchored": f"anchored(lam={self.fraction:g})",
        }[self.kind]
        if self.schedule:
            text += f"+schedule(M1={self.schedule[0]},...)"
        if self.verifier is not None:
            v = self.verifier
            text += f"+verify({v.label},{v.accept_good:g}/{v.accept_bad:g})"
        return text


class Constant:
    """A params pytree held as host arrays, hashable by content (a cache key for steps)."""

    def __init__(self, tree):
        leaves, self.treedef = jax.tree.flatten(tree)
        self.leaves = tuple(np.asarray(x) for x in leaves)
        h = hashlib.sha1(str(self.treedef).encode())
        for x in self.leaves:
            h.update(str((x.dtype, x.shape)).encode())
            h.update(np.ascontiguousarray(x).tobytes())
        self._hash = h.hexdigest()

    def __hash__(self):
        return hash(self._hash)

    def __eq__(self, other):
        return isinstance(other, Constant) and other._hash == self._hash

    def tree(self):
        return jax.tree.unflatten(self.treedef, [jnp.asarray(x) for x in self.leaves])


class RegimeState(NamedTuple):
    """Per-chain state of a chain under a regime (what the next generation needs)."""

    params: Any  # the current fit
    generation: jax.Array  # int32: fits so far
    pool: Any  # accumulated / anchor summary, a PointPool, or () (see the module docstring)


class RegimeInfo(NamedTuple):
    """Per-generation diagnostics of a chain under a regime (recorded, not carried)."""

    train_size: jax.Array  # float: points in this fit's training set (0 at generation 0)
    fit: Any = ()  # the fit's own diagnostics (``Family.fit_info``), or ()


class PointPool(NamedTuple):
    """Every point so far, for families that cannot subsample a summary."""

    points: Any  # leaves of shape (capacity, ...)
    weights: jax.Array  # shape=(capacity,): 1 for a stored (and kept) point, else 0


def round_half_up(x: float) -> int:
    """``floor(x + 1/2)``: how the regimes round ``alpha M`` and ``lambda M`` to counts
    (halves up, unlike Python's ``round``, which rounds halves to even)."""
    return int(math.floor(x + 0.5))


def _select(pred, a, b):
    return jax.tree.map(lambda x, y: jnp.where(pred, x, y), a, b)


@functools.cache
def _record_type(fields: tuple[str, ...]):
    return collections.namedtuple("RegimeRecord", fields + ("train_size",))


@functools.cache
def regime_record(record):
    """``record(state, info)``: the family's ``record(params)`` of ``state.params``
    plus the info's ``train_size``."""

    def rec(state: RegimeState, info: RegimeInfo):
        r = record(state.params)
        cls = _record_type(tuple(r._fields))
        return cls(*r, jnp.asarray(info.train_size).astype(r[0].dtype))

    return rec


def _check_ops(family: Family, regime: Regime, draws: str) -> None:
    ops = family.ops
    if ops is None:
        if regime.kind == "replace" and not regime.schedule and regime.verifier is None:
            return
        raise ValueError(
            f"family {family.name!r} has no DataOps, so it supports the plain replace regime only; "
            f"got {regime.label}"
        )
    if draws == "exact" and ops.sample_stats is None:
        raise ValueError(f"family {family.name!r} cannot draw its statistics (draws='exact')")
    if regime.schedule and draws != "exact":
        raise ValueError("a sample-size schedule needs draws='exact' (sizes change per generation)")
    if regime.verifier is not None:
        if draws != "points":
            raise ValueError("a verifier judges points: it needs draws='points'")
        if ops.points is None and ops.thin is None:
            raise ValueError(f"family {family.name!r} has neither points nor thin for a verifier")
    if regime.kind == "subsample":
        if ops.subsample is None and (ops.points is None or draws != "points"):
            raise ValueError(
                f"subsample on family {family.name!r} stores points: it needs ops.points and "
                "draws='points'"
            )
    if regime.kind == "fresh" and regime.mixing == "binomial" and draws != "exact":
        raise ValueError("mixing='binomial' draws a random real count: it needs draws='exact'")


def _round_count(fraction, size):
    """round(fraction * size): a Python int for static values, else an int32 array
    (computed in the dtype of the traced fraction or size)."""
    if is_static(fraction) and isinstance(size, int):
        return round_half_up(fraction * size)
    return jnp.floor(fraction * size + 0.5).astype(jnp.int32)


def _check_fraction(regime: Regime, fraction):
    """The regime's fraction, or ``fraction`` overriding it (checked if static)."""
    if fraction is None:
        return regime.fraction
    if regime.kind not in ("fresh", "anchored"):
        raise ValueError(
            f"fraction applies to the fresh and anchored regimes only; got {regime.label}"
        )
    if not is_static(fraction):
        return fraction
    frac = check_float(fraction, "fraction")
    if not 0.0 <= frac <= 1.0:
        name = {"fresh": "alpha", "anchored": "lam"}[regime.kind]
        raise ValueError(f"{name}={frac} must be in [0, 1]")
    return frac


@functools.cache
def regime_step(
    family: Family,
    regime: Regime,
    sample_size: int,
    real: Constant,
    draws: str = "points",
    num_generations: int = 0,
):
    """The one-generation transition ``step(key, state) -> state`` of ``family`` under ``regime``.

    Cached (equal arguments give the same functions, so one compilation); the
    implementation is :func:`make_regime_step`.

    Args:
      family: a :class:`~sim.families.base.Family` (with ``ops`` unless the
        regime is a plain replace).
      regime: the :class:`Regime`.
      sample_size: M (the size of every generation's new data without a
        schedule; with ``anchored``, also sets the real set's size).
      real: the real distribution's params (:class:`Constant`): fresh and
        anchored real data are drawn from it.
      draws: ``"points"`` or ``"exact"`` (see the module docstring).
      num_generations: G; sizes the pool of ``subsample`` (ignored otherwise).

    Returns:
      ``(step, init)``: the step and ``init(params0) -> RegimeState``.
    """
    return make_regime_step(family, regime, sample_size, real, draws, num_generations)


def make_regime_step(
    family: Family,
    regime: Regime,
    sample_size: int,
    real,
    draws: str = "points",
    num_generations: int = 0,
    fraction=None,
):
    """:func:`regime_step`, uncached, with an optional (possibly traced) ``fraction``.

    For parameter sweeps that build the step inside a jitted function: the
    family may hold traced settings (e.g. :func:`sim.families.categorical.categorical_family`)
    and ``fraction`` may be a traced scalar (a per-lane value under ``vmap``).

    Args:
      family, regime, sample_size, draws, num_generations: as for
        :func:`regime_step`.
      real: the real distribution's params, a :class:`Constant` or a params
        pytree (arrays, possibly traced).
      fraction: if given, replaces ``regime.fraction`` (fresh: alpha, the
        real share; anchored: lambda, the synthetic share); fresh and
        anchored regimes only. A Python number is checked as the regime's
        own; a JAX value is not.

    With a traced fraction the counts round(alpha M) (or round(lambda M)) and
    the anchor set's size M - round(lambda M) are traced int32 values,
    rounded in the fraction's dtype. ``draws="exact"`` then draws summaries
    of a traced size (``ops.sample_stats``: the same law as for a Python
    size, other random words); binomial mixing only changes its success
    probability. With ``draws="points"``, families with ``ops.points``
    (Gaussian, regression) draw M points and weight the first n by 1, the
    rest by 0 (M = ``sample_size``; the draws are those of M points, whose
    first n are the n points of a static count under the threefry PRNG); the
    others (categorical counts) draw a traced n directly.

    Returns:
      ``(step, init)``: the step and ``init(params0) -> RegimeState``.
    """
    m = check_int(sample_size, "sample_size", 1)
    if draws not in DRAWS:
        raise ValueError(f"draws={draws!r} is not one of {DRAWS}")
    _check_ops(family, regime, draws)
    frac = _check_fraction(regime, fraction)
    ops = family.ops
    kind = regime.kind
    schedule = np.asarray(regime.schedule or (m,), np.int32)
    anchor_size = m - _round_count(frac, m) if kind == "anchored" else 0
    capacity = 0
    point_pool = kind == "subsample" and ops.subsample is None
    if kind == "subsample":
        g = check_int(num_generations, "num_generations", 1)
        capacity = m * g

    def sample(key, params, n):
        """``(data, mask)`` of n samples. A static n: ``mask`` is None and ``data`` is
        None for n = 0 (e.g. fresh(alpha=1): no synthetic points). A traced n (a traced
        fraction): M points whose first n are selected by ``mask`` for families with
        ``points``, else the family's own draw of a traced n (categorical counts)."""
        if isinstance(n, int):
            return (None if n == 0 else family.sample(key, params, n)), None
        if ops.points is None:
            return family.sample(key, params, n), None
        return family.sample(key, params, m), jnp.arange(m) < n

    def summary(params, data, weights=None):
        if data is None:
            return ops.empty(params)
        if weights is None:
            return ops.stats(data)
        stats = ops.stats(data, weights)
        return _select(ops.count(stats) > 0, stats, ops.empty(params))

    def draw(key, params, n):
        """Summary of n real points (never filtered or pooled as points, so drawn as a
        summary whenever the family can: the same law, and on the points path of
        ``anchored`` 6x cheaper than sampling the anchor set every generation)."""
        if ops.sample_stats is not None:
            return ops.sample_stats(key, params, n)
        return summary(params, *sample(key, params, n))

    def synthetic(key, params, n, t):
        """Summary (and, for point pools, the points and weights) of n model samples."""
        if draws == "exact":
            return ops.sample_stats(key, params, n), None
        data, mask = sample(key, params, n)
        if data is None:
            return ops.empty(params), None
        full = summary(params, data, mask)
        verifier = regime.verifier
        if ops.points is not None and (verifier is not None or point_pool):
            points = ops.points(data)
            ones = jnp.ones(jax.tree.leaves(points)[0].shape[:1], bool)
            keep = ones if mask is None else mask
            if verifier is not None:
                dtype = jax.tree.leaves(params)[0].dtype
                u = jax.random.uniform(jax.random.fold_in(key, 3), ones.shape, dtype)
                keep = jnp.where(t > 1, u < verifier.probability(points), ones)
                if mask is not None:
                    keep = keep & mask
                full = summary(params, data, keep) if mask is not None else ops.stats(data, keep)
            return full, (points, keep)
        if verifier is not None:
            thinned = ops.thin(jax.random.fold_in(key, 3), data, verifier.probability)
            full = _select(t > 1, thinned, full)
        return full, None

    def init(params0) -> RegimeState:
        if kind in ("accumulate", "anchored") or (kind == "subsample" and not point_pool):
            pool = ops.empty(params0)
        elif point_pool:
            shapes = jax.eval_shape(
                lambda p: ops.points(family.sample(jax.random.key(0), p, m)), params0
            )
            pool = PointPool(
                jax.tree.map(lambda s: jnp.zeros((capacity,) + s.shape[1:], s.dtype), shapes),
                jnp.zeros((capacity,), bool),
            )
        else:
            pool = ()
        return RegimeState(params0, jnp.zeros((), jnp.int32), pool)

    def step(key, state: RegimeState) -> tuple[RegimeState, RegimeInfo]:
        t = state.generation + 1
        params = state.params
        dtype = jax.tree.leaves(params)[0].dtype
        if ops is None:  # plain replace, any family
            new, fit_info = replace_transition(family, m, key, params)
            return RegimeState(new, t, ()), RegimeInfo(jnp.zeros((), dtype), fit_info)
        k_sample, k_fit = jax.random.split(key)
        k_real = jax.random.fold_in(k_sample, 1)
        real_params = real.tree() if isinstance(real, Constant) else real
        if regime.schedule:
            m_t = jnp.asarray(schedule)[jnp.minimum(t, len(schedule)) - 1]
        else:
            m_t = m
        if kind == "fresh":
            if regime.mixing == "binomial":
                k_mix = jax.random.fold_in(k_sample, 2)
                # a traced alpha in the default float type, as a Python one is taken
                q = frac if is_static(frac) else jnp.asarray(frac, jnp.result_type(float))
                n_real = _random.binomial(k_mix, jnp.asarray(m_t, jnp.float32), q)
                n_real = n_real.astype(jnp.int32)
            else:
                n_real = _round_count(frac, m_t)
            n_syn = m_t - n_real
        elif kind == "anchored":
            n_syn = _round_count(frac, m_t)
        else:
            n_syn = m_t
        syn, pts = synthetic(k_sample, params, n_syn, t)
        pool = state.pool
        if kind == "fresh":
            train = ops.merge(draw(k_real, real_params, n_real), syn)
        elif kind == "accumulate":
            train = pool = ops.merge(pool, syn)
        elif kind == "anchored":
            first = draw(jax.random.fold_in(k_sample, 4), real_params, anchor_size)
            pool = _select(t == 1, first, pool)
            train = ops.merge(pool, syn)
        elif kind == "subsample" and not point_pool:
            pool = ops.merge(pool, syn)
            train = ops.subsample(jax.random.fold_in(k_sample, 5), pool, regime.budget, capacity)
        elif point_pool:
            points, keep = pts
            offset = (t - 1) * n_syn
            stored = jax.tree.map(
                lambda buf, x: jax.lax.dynamic_update_slice_in_dim(buf, x, offset, 0),
                pool.points,
                points,
            )
            weights = jax.lax.dynamic_update_slice_in_dim(pool.weights, keep, offset, 0)
            pool = PointPool(stored, weights)
            # float32 ranks: top_k on float64 measured 7x slower
            u = jax.random.uniform(jax.random.fold_in(k_sample, 5), weights.shape, jnp.float32)
            _, idx = jax.lax.top_k(-jnp.where(weights, u, 2.0), min(regime.budget, capacity))
            chosen = jax.tree.map(lambda buf: buf[idx], stored)
            train = ops.point_stats(chosen, weights[idx])
        else:  # replace
            train = syn
        count = ops.count(train)
        new, fit_info = fit_stats(family, k_fit, train, params)
        new = _select(count >= ops.min_count, new, params)
        return RegimeState(new, t, pool), RegimeInfo(count.astype(dtype), fit_info)

    return step, init


def run_regime(
    key,
    family: Family,
    regime: Regime,
    *,
    sample_size: int,
    real,
    record,
    num_chains: int,
    num_generations: int,
    draws: str = "points",
    snapshot_generations=(),
    snapshot_fields=(),
    first_passage_fields=(),
    chain_elements: int | None = None,
    **simulate_kwargs,
) -> SimulationResult:
    """Simulates ``num_chains`` chains of ``family`` under ``regime`` and reduces their records.

    Args:
      key: root PRNG key.
      family: the model family.
      regime: a :class:`Regime`.
      sample_size: M.
      real: generation-0 params (the real distribution).
      record: ``record(params) -> NamedTuple`` (hashable, e.g. a cached
        factory's result); the result's fields are its fields plus
        ``train_size``.
      num_chains, num_generations: C and G (a schedule must cover G).
      draws: ``"points"`` or ``"exact"``.
      snapshot_generations, snapshot_fields, first_passage_fields,
        chain_elements, **simulate_kwargs: as for :func:`sim.parallel.simulate`
        (``chain_elements`` defaults to the largest per-generation sample,
        plus the pool for ``subsample``).

    Returns:
      A :class:`~sim.parallel.SimulationResult`; ``final`` is the chains'
      :class:`RegimeState` (``final.params`` the last fits).
    """
    if not isinstance(regime, Regime):
        raise ValueError(f"regime must be a Regime; got {regime!r}")
    g = check_int(num_generations, "num_generations", 1)
    if regime.schedule and len(regime.schedule) < g:
        raise ValueError(f"the schedule has {len(regime.schedule)} sizes but num_generations={g}")
    step, init = regime_step(
        family,
        regime,
        check_int(sample_size, "sample_size", 1),
        Constant(real),
        draws,
        g if regime.kind == "subsample" else 0,
    )
    if chain_elements is None:
        chain_elements = 1 if draws == "exact" else max(regime.schedule or (sample_size,))
        if regime.kind == "subsample":
            chain_elements += sample_size * g
    return simulate(
        key,
        step,
        init(real),
        regime_record(record),
        num_generations=g,
        num_chains=num_chains,
        snapshot_generations=snapshot_generations,
        snapshot_fields=snapshot_fields,
        first_passage_fields=first_passage_fields,
        chain_elements=chain_elements,
        **simulate_kwargs,
    )
