"""Verifiers for Gaussian data: which synthetic points a filter keeps (:mod:`sim.regimes`)."""

from __future__ import annotations

import functools

import jax.numpy as jnp

from sim._validate import check_float
from sim.regimes import Verifier


@functools.cache
def _within(mu0: float, half_width: float):
    return lambda x: jnp.abs(x - mu0) <= half_width


def gaussian_verifier(
    mu0: float = 0.0,
    sigma0: float = 1.0,
    k: float = 2.0,
    *,
    accept_good: float = 1.0,
    accept_bad: float = 0.0,
) -> Verifier:
    r"""A likelihood-threshold verifier for 1-D Gaussian data.

    A point is good iff its density under the real :math:`N(\mu_0, \sigma_0^2)`
    is at least that at :math:`k\sigma_0`, i.e. iff
    :math:`|x - \mu_0| \le k\sigma_0`.
    """
    sigma0 = check_float(sigma0, "sigma0", positive=True)
    k = check_float(k, "k", positive=True)
    good = _within(check_float(mu0, "mu0"), k * sigma0)
    return Verifier(good, accept_good, accept_bad, f"|x-mu0|<={k:g}sigma0")
