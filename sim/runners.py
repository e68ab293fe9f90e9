"""Ready-made runs: one call from settings to a reduced :class:`SimulationResult`.

Experiments, benchmarks and notebooks call these; they pick the step (the
``sample`` path that draws M samples and refits, or the ``exact`` path that
draws the sufficient statistics), the record and the initial state, and hand
them to :func:`sim.parallel.simulate`.
"""

from __future__ import annotations

import jax.numpy as jnp

from sim._validate import check_estimator, check_float, check_int
from sim.chain import replace_step
from sim.exact import gaussian_exact_step
from sim.families.gaussian import gaussian, real_params
from sim.metrics import gaussian_record
from sim.parallel import SimulationResult, simulate

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
      **simulate_kwargs: passed to :func:`sim.parallel.simulate`.

    Returns:
      A :class:`~sim.parallel.SimulationResult` whose fields are those of
      :class:`~sim.metrics.GaussianRecord`.
    """
    step = gaussian_step(sample_size, estimator, method)
    check_float(sigma0, "sigma0", positive=True)
    record = gaussian_record(float(mu0), float(sigma0), float(tail_k), float(collapse_eps))
    params0 = real_params(mu0, sigma0, dtype or jnp.result_type(float))
    return simulate(
        key,
        step,
        params0,
        record,
        num_generations=num_generations,
        num_chains=num_chains,
        snapshot_generations=snapshot_generations,
        snapshot_fields=snapshot_fields,
        sample_size=sample_size if method == "sample" else 1,
        **simulate_kwargs,
    )
