"""A ready-made regression run: one call from settings to a reduced :class:`SimulationResult`.

:func:`run_regression` builds the family (:func:`sim.families.regression.regression`),
the record (:func:`sim.metrics.regression_record`) and generation 0 (the true
weights), and runs them under a data regime (:func:`sim.regimes.run_regime`).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from sim._validate import check_int
from sim.families.regression import regression
from sim.metrics import regression_record
from sim.parallel import SimulationResult
from sim.regimes import Regime, run_regime


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
