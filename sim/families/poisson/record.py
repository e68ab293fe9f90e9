"""What a Poisson chain records per generation: the rate and whether it is extinct."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from sim._validate import check_float
from sim.families.poisson.family import PoissonParams


class PoissonRecord(NamedTuple):
    r"""Per-chain, per-generation summaries of a Poisson chain (all float)."""

    rate: jax.Array  # shape=(), the fitted rate lambda_n
    extinct: jax.Array  # shape=(), 1.0 if lambda_n = 0 (absorbed), else 0.0
    error_sq: jax.Array  # shape=(), (lambda_n - lambda_0)^2


@functools.cache
def poisson_record(lam0: float = 1.0):
    """Builds ``record(params) -> PoissonRecord`` for the real rate ``lam0`` (cached)."""
    lam0 = check_float(lam0, "lam0", nonnegative=True)

    def record(params: PoissonParams) -> PoissonRecord:
        rate = params.rate
        return PoissonRecord(rate, (rate == 0).astype(rate.dtype), jnp.square(rate - lam0))

    return record
