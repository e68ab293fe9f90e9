"""Ready-made runs: one call from settings to a reduced :class:`SimulationResult`.

Experiments, benchmarks and notebooks call these; they pick the step (the
``sample`` path that draws M samples and refits, or the ``exact`` path that
draws the sufficient statistics), the record and the initial state, and hand
them to :func:`sim.parallel.simulate`.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from sim._validate import check_estimator, check_float, check_int
from sim.chain import replace_step
from sim.exact import gaussian_exact_step
from sim.families.categorical import Vocabulary, categorical
from sim.families.gaussian import gaussian, real_params
from sim.families.regression import regression
from sim.metrics import (
    categorical_record,
    default_bucket_edges,
    gaussian_record,
    regression_record,
)
from sim.parallel import DEFAULT_BLOCK_SIZE, SimulationResult, simulate
from sim.regimes import Regime, run_regime
from sim.sampling import sampling_bias

METHODS = ("sample", "exact")


def gaussian_step(sample_size: int, estimator: str, method: str):
    """The one-generation transition of the Gaussian chain for ``method``."""
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {METHODS}")
    m = check_int(sample_size, "sample_size", 2)
    check_estimator(estimator)
    if method == "exact":
        return gaussian_exact_step(m, estimator)
    return replace_step(gaussian(estimator), m)


def run_gaussian(
    key,
    *,
    sample_size: int,
    estimator: str = "unbiased",
    method: str = "sample",
    num_chains: int,
    num_generations: int,
    mu0: float = 0.0,
    sigma0: float = 1.0,
    tail_k: float = 3.0,
    collapse_eps: float = 1e-6,
    dtype=None,
    snapshot_generations=(),
    snapshot_fields=("log_var", "mean"),
    regime: Regime | None = None,
    known_variance: float | None = None,
    **simulate_kwargs,
) -> SimulationResult:
    """Simulates ``num_chains`` 1-D Gaussian chains and reduces their records.

    Args:
      key: root PRNG key (``jax.random.key(seed, impl=...)``).
      sample_size: M, samples per generation (>= 2).
      estimator: ``"mle"`` or ``"unbiased"``.
      method: ``"sample"`` (draw M samples, refit) or ``"exact"`` (draw the
        sufficient statistics; same Markov chain, O(1) in M).
      num_chains, num_generations: C and G.
      mu0, sigma0: the real distribution N(mu0, sigma0^2).
      tail_k: tails are measured beyond ``tail_k * sigma0``.
      collapse_eps: a chain is collapsed when sigma^2 < eps * sigma0^2.
      dtype: float32 or float64 (default: JAX's default float).
      snapshot_generations, snapshot_fields: per-chain values kept.
      regime: a :class:`~sim.regimes.Regime` (accumulate, fresh data, ...);
        ``None`` runs the plain replace chain. ``method`` then chooses the
        regime's draws (``"sample"``: points, ``"exact"``: statistics).
      known_variance: if given, only the mean is fitted (THEORY.md L3, F3);
        needs a ``regime`` (``Regime.replace()`` for the plain chain).
      **simulate_kwargs: passed to :func:`sim.parallel.simulate`.

    Returns:
      A :class:`~sim.parallel.SimulationResult` whose fields are those of
      :class:`~sim.metrics.GaussianRecord` (plus ``train_size`` under a
      regime, whose ``final`` is a :class:`~sim.regimes.RegimeState`).
    """
    step = gaussian_step(sample_size, estimator, method)
    check_float(sigma0, "sigma0", positive=True)
    record = gaussian_record(float(mu0), float(sigma0), float(tail_k), float(collapse_eps))
    params0 = real_params(mu0, sigma0, dtype or jnp.result_type(float))
    if known_variance is not None and regime is None:
        raise ValueError("known_variance needs a regime (use Regime.replace() for the plain chain)")
    if regime is not None:
        return run_regime(
            key,
            gaussian(estimator, known_variance),
            regime,
            sample_size=sample_size,
            real=params0,
            record=record,
            num_chains=num_chains,
            num_generations=num_generations,
            draws="exact" if method == "exact" else "points",
            snapshot_generations=snapshot_generations,
            snapshot_fields=snapshot_fields,
            **simulate_kwargs,
        )
    return simulate(
        key,
        step,
        params0,
        record,
        num_generations=num_generations,
        num_chains=num_chains,
        snapshot_generations=snapshot_generations,
        snapshot_fields=snapshot_fields,
        chain_elements=sample_size if method == "sample" else 1,
        **simulate_kwargs,
    )


# Chains per reduction block are capped so that one block of K-category states
# stays near this many elements (the block is the smallest chunk).
_MAX_BLOCK_ELEMENTS = 1 << 22


def categorical_block_size(num_chains: int, num_categories: int) -> int:
    """The reduction block for a categorical run: a function of (C, K) only."""
    by_c = 1 << max(0, math.ceil(math.log2(num_chains)))
    by_k = 1 << max(4, int(math.log2(max(1, _MAX_BLOCK_ELEMENTS // num_categories))))
    return min(DEFAULT_BLOCK_SIZE, by_c, by_k)


def run_categorical(
    key,
    *,
    vocabulary: Vocabulary,
    sample_size: int,
    num_chains: int,
    num_generations: int,
    smoothing: float = 0.0,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    tail_rank: int | None = None,
    bucket_edges=None,
    dtype=None,
    snapshot_generations=(),
    snapshot_fields=("support", "heterozygosity"),
    first_passage_fields=("absorbed",),
    regime: Regime | None = None,
    **simulate_kwargs,
) -> SimulationResult:
    """Simulates ``num_chains`` categorical chains and reduces their records.

    Args:
      key: root PRNG key.
      vocabulary: the real distribution (:class:`~sim.families.categorical.Vocabulary`).
      sample_size: M, tokens per generation (>= 1).
      num_chains, num_generations: C and G.
      smoothing: additive smoothing alpha >= 0 of the fit.
      temperature, top_k, top_p: the sampler transform applied to every fitted
        model before its data are drawn (:mod:`sim.sampling`).
      tail_rank: the tail is the categories of initial rank > tail_rank
        (default: K // 10).
      bucket_edges: survival buckets as upper rank bounds ending at K
        (default: decades, :func:`sim.metrics.default_bucket_edges`).
      dtype: float32 or float64 (default: JAX's default float).
      snapshot_generations, snapshot_fields: per-chain values kept.
      first_passage_fields: per-chain hitting times (default: absorption).
      regime: a :class:`~sim.regimes.Regime`; ``None`` runs the plain replace
        chain. Counts are the categorical statistics, so the regime's draws
        are the family's own (a schedule's sizes may change per generation).
      **simulate_kwargs: passed to :func:`sim.parallel.simulate`.

    Returns:
      A :class:`~sim.parallel.SimulationResult` whose fields are those of
      :class:`~sim.metrics.CategoricalRecord` (plus ``train_size`` under a
      regime); ``final.probs`` (``final.params.probs`` under a regime) has
      shape (C, K).
    """
    if not isinstance(vocabulary, Vocabulary):
        raise ValueError(f"vocabulary must be a Vocabulary; got {type(vocabulary).__name__}")
    m = check_int(sample_size, "sample_size", 1)
    k = vocabulary.num_categories
    bias = sampling_bias(temperature, top_k, top_p)
    dtype = jnp.dtype(dtype or jnp.result_type(float))
    family = categorical(smoothing, bias, dtype)
    step = replace_step(family, m)
    record = categorical_record(
        vocabulary,
        k // 10 if tail_rank is None else tail_rank,
        tuple(bucket_edges) if bucket_edges is not None else default_bucket_edges(k),
    )
    simulate_kwargs.setdefault(
        "block_size", categorical_block_size(check_int(num_chains, "num_chains", 1), k)
    )
    if regime is not None:
        # Counts are drawn directly either way; "exact" lets schedules change M.
        draws = "points" if regime.verifier is not None or regime.kind == "subsample" else "exact"
        elements = 4 * k + (m * num_generations if regime.kind == "subsample" else 0)
        return run_regime(
            key,
            family,
            regime,
            sample_size=m,
            real=vocabulary.params(dtype),
            record=record,
            num_chains=num_chains,
            num_generations=num_generations,
            draws=draws,
            snapshot_generations=snapshot_generations,
            snapshot_fields=snapshot_fields,
            first_passage_fields=first_passage_fields,
            chain_elements=elements,
            **simulate_kwargs,
        )
    return simulate(
        key,
        step,
        vocabulary.params(dtype),
        record,
        num_generations=num_generations,
        num_chains=num_chains,
        snapshot_generations=snapshot_generations,
        snapshot_fields=snapshot_fields,
        first_passage_fields=first_passage_fields,
        chain_elements=4 * k,
        **simulate_kwargs,
    )


def default_w_star(dim: int) -> tuple[float, ...]:
    r"""The default true weights: :math:`w^* = (1, \dots, 1)/\sqrt d` (unit norm)."""
    d = check_int(dim, "dim", 1)
    return (1.0 / math.sqrt(d),) * d


def check_w_star(w_star, dim: int) -> tuple[float, ...]:
    """``w_star`` as a tuple of d finite floats (``default_w_star`` for ``None``)."""
    if w_star is None:
        return default_w_star(dim)
    w = np.asarray(w_star, np.float64)
    if w.shape != (dim,):
        raise ValueError(f"w_star must have shape ({dim},) (dim={dim}); got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"w_star must be finite; got {w.tolist()}")
    return tuple(float(v) for v in w)


def run_regression(
    key,
    *,
    dim: int,
    num_samples: int,
    noise: float,
    ridge: float = 0.0,
    design: str = "fresh",
    design_seed: int = 0,
    w_star=None,
    regime: Regime | None = None,
    num_chains: int,
    num_generations: int,
    dtype=None,
    **simulate_kwargs,
) -> SimulationResult:
    r"""Simulates ``num_chains`` regression chains under a data regime and reduces their records.

    Every generation draws ``num_samples`` rows with labels from the previous
    fit (generation 0: ``w_star``) and the regime decides what the next fit
    trains on (replace, accumulate, subsample, ...: :mod:`sim.regimes`).

    Args:
      key: root PRNG key.
      dim, num_samples, noise, ridge, design, design_seed: the family
        (:func:`sim.families.regression.regression`); ``num_samples`` is also
        the regime's sample size M.
      w_star: the true weights, length ``dim`` (default: :func:`default_w_star`).
      regime: a :class:`~sim.regimes.Regime` (default ``Regime.replace()``).
      num_chains, num_generations: C and G.
      dtype: float32 or float64 (default: JAX's default float).
      **simulate_kwargs: passed to :func:`sim.regimes.run_regime` and
        :func:`sim.parallel.simulate` (snapshots, chunking, progress, ...).

    Returns:
      A :class:`~sim.parallel.SimulationResult` whose fields are those of
      :class:`~sim.metrics.RegressionRecord` plus ``train_size``;
      ``final.params`` holds the final weights, shape ``(C, d)``.
    """
    dtype = jnp.dtype(dtype or jnp.result_type(float))
    family = regression(dim, num_samples, noise, ridge, design, design_seed, dtype)
    d = int(dim)
    w = check_w_star(w_star, d)
    regime = Regime.replace() if regime is None else regime
    if not isinstance(regime, Regime):
        raise ValueError(f"regime must be a Regime; got {regime!r}")
    if ridge == 0 and regime.kind == "subsample" and regime.budget <= d:
        raise ValueError(
            f"OLS (ridge=0) on a subsample needs budget > dim: got budget={regime.budget}, dim={d}"
        )
    m = int(num_samples)
    if "chain_elements" not in simulate_kwargs:
        # Floats held per chain: one generation's rows, and the stored pool.
        rows = m + (m * check_int(num_generations, "num_generations", 1))
        rows = rows if regime.kind == "subsample" else m
        simulate_kwargs["chain_elements"] = rows * (d + 1)
    return run_regime(
        key,
        family,
        regime,
        sample_size=m,
        real=jnp.asarray(w, dtype),
        record=regression_record(w),
        num_chains=num_chains,
        num_generations=num_generations,
        **simulate_kwargs,
    )
