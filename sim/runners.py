"""Ready-made runs: thin, documented wrappers of :func:`sim.run.run`, one per family.

Experiments, benchmarks, notebooks and the README call these; each is
``run("<family>", key, ...)`` with the family's settings as keyword
arguments, so their results are those of the generic run.
"""

from __future__ import annotations

from sim.families.categorical import Vocabulary
from sim.families.categorical import block_size as categorical_block_size
from sim.families.regression import check_w_star, default_w_star
from sim.parallel import SimulationResult
from sim.regimes import Regime
from sim.run import run

__all__ = [
    "categorical_block_size",
    "check_w_star",
    "default_w_star",
    "run_categorical",
    "run_gaussian",
    "run_regression",
]


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
      :class:`~sim.families.gaussian.GaussianRecord` (plus ``train_size`` under a
      regime, whose ``final`` is a :class:`~sim.regimes.RegimeState`).
    """
    return run(
        "gaussian",
        key,
        num_chains=num_chains,
        num_generations=num_generations,
        regime=regime,
        sample_size=sample_size,
        estimator=estimator,
        method=method,
        mu0=mu0,
        sigma0=sigma0,
        tail_k=tail_k,
        collapse_eps=collapse_eps,
        dtype=dtype,
        known_variance=known_variance,
        snapshot_generations=snapshot_generations,
        snapshot_fields=snapshot_fields,
        **simulate_kwargs,
    )


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
        (default: decades, :func:`sim.families.categorical.default_bucket_edges`).
      dtype: float32 or float64 (default: JAX's default float).
      snapshot_generations, snapshot_fields: per-chain values kept.
      first_passage_fields: per-chain hitting times (default: absorption).
      regime: a :class:`~sim.regimes.Regime`; ``None`` runs the plain replace
        chain. Counts are the categorical statistics, so the regime's draws
        are the family's own (a schedule's sizes may change per generation).
      **simulate_kwargs: passed to :func:`sim.parallel.simulate`.

    Returns:
      A :class:`~sim.parallel.SimulationResult` whose fields are those of
      :class:`~sim.families.categorical.CategoricalRecord` (plus ``train_size`` under a
      regime); ``final.probs`` (``final.params.probs`` under a regime) has
      shape (C, K).
    """
    if not isinstance(vocabulary, Vocabulary):
        raise ValueError(f"vocabulary must be a Vocabulary; got {type(vocabulary).__name__}")
    return run(
        "categorical",
        key,
        num_chains=num_chains,
        num_generations=num_generations,
        regime=regime,
        vocabulary=vocabulary,
        sample_size=sample_size,
        smoothing=smoothing,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        tail_rank=tail_rank,
        bucket_edges=bucket_edges,
        dtype=dtype,
        snapshot_generations=snapshot_generations,
        snapshot_fields=snapshot_fields,
        first_passage_fields=first_passage_fields,
        **simulate_kwargs,
    )


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
      :class:`~sim.families.regression.RegressionRecord` plus ``train_size``;
      ``final.params`` holds the final weights, shape ``(C, d)``.
    """
    return run(
        "regression",
        key,
        num_chains=num_chains,
        num_generations=num_generations,
        regime=Regime.replace() if regime is None else regime,
        dim=dim,
        num_samples=num_samples,
        noise=noise,
        ridge=ridge,
        design=design,
        design_seed=design_seed,
        w_star=w_star,
        dtype=dtype,
        **simulate_kwargs,
    )
