r"""What a Gaussian chain records per generation: small per-chain summaries.

For the real distribution :math:`N(\mu_0, \sigma_0^2)`, tail multiplier k and
collapse threshold :math:`\varepsilon`:

* ``mean`` :math:`\mu_n` and ``log_var`` :math:`\log\sigma_n^2`;
* ``w2_squared`` :math:`W_2^2 = (\mu_n-\mu_0)^2 + (\sigma_n-\sigma_0)^2`;
* ``tail_own`` :math:`P_{fit}(|X-\mu_n| > k\sigma_0) = 2\Phi(-k\sigma_0/\sigma_n)`,
  the fit's mass beyond k real standard deviations from its own mean;
* ``tail_real`` :math:`P_{fit}(|X-\mu_0| > k\sigma_0)`, the same from the real mean;
* ``collapsed`` :math:`1[\sigma_n^2 < \varepsilon\sigma_0^2]`.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import erfc, ndtr

from sim._validate import check_float
from sim.families.gaussian.family import GaussianParams


class GaussianRecord(NamedTuple):
    """Per-chain, per-generation summaries of a Gaussian chain (all float)."""

    mean: jax.Array  # shape=(), fitted mean
    log_var: jax.Array  # shape=(), fitted log-variance
    w2_squared: jax.Array  # shape=(), squared W2 distance to the real distribution
    tail_own: jax.Array  # shape=(), mass beyond k sigma0 from the fit's own mean
    tail_real: jax.Array  # shape=(), mass beyond k sigma0 from the real mean
    collapsed: jax.Array  # shape=(), 1.0 if sigma^2 < eps sigma0^2 else 0.0


@functools.cache
def gaussian_record(
    mu0: float = 0.0, sigma0: float = 1.0, tail_k: float = 3.0, collapse_eps: float = 1e-6
):
    """Builds ``record(params) -> GaussianRecord`` (cached per setting).

    Args:
      mu0, sigma0: the real distribution.
      tail_k: k, tails are measured beyond k * sigma0.
      collapse_eps: a chain counts as collapsed when sigma^2 < eps sigma0^2.
    """
    mu0 = check_float(mu0, "mu0")
    sigma0 = check_float(sigma0, "sigma0", positive=True)
    tail_k = check_float(tail_k, "tail_k", nonnegative=True)
    collapse_eps = check_float(collapse_eps, "collapse_eps", positive=True)
    log_threshold = math.log(collapse_eps) + 2.0 * math.log(sigma0)
    k_sigma = tail_k * sigma0

    def record(params: GaussianParams) -> GaussianRecord:
        dtype = params.log_var.dtype
        sigma = jnp.exp(0.5 * params.log_var)
        inv_sigma = jnp.exp(-0.5 * params.log_var)  # inf once sigma underflows
        d = params.mean - mu0
        w2 = jnp.square(d) + jnp.square(sigma - sigma0)
        tail_own = erfc(k_sigma * inv_sigma / math.sqrt(2.0))
        # Phi((-k sigma0 - d)/sigma) + Phi((d - k sigma0)/sigma); 0*inf guarded.
        lo = jnp.where(d + k_sigma == 0, 0.0, -(d + k_sigma) * inv_sigma)
        hi = jnp.where(d - k_sigma == 0, 0.0, (d - k_sigma) * inv_sigma)
        tail_real = ndtr(lo) + ndtr(hi)
        collapsed = (params.log_var < log_threshold).astype(dtype)
        return GaussianRecord(params.mean, params.log_var, w2, tail_own, tail_real, collapsed)

    return record
