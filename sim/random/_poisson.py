r"""Exact Poisson draws from the project's gamma and binomial samplers.

``jax.random.poisson`` runs for the threefry PRNG only; the project's default
is philox. :func:`poisson` counts the arrivals of a unit-rate Poisson process
in :math:`(0, \mu]`, a step that needs one gamma and one binomial draw:

* let :math:`m = \lfloor \mu + 6\sqrt\mu \rfloor + 1` and :math:`G_m \sim
  \mathrm{Gamma}(m, 1)`, the :math:`m`-th arrival time;
* if :math:`G_m > \mu`, the first :math:`m-1` arrivals are uniform order
  statistics on :math:`(0, G_m)` given :math:`G_m`, so the count in
  :math:`(0, \mu]` is :math:`\mathrm{Binomial}(m-1, \mu/G_m)`, exactly;
* otherwise (a six-standard-deviation event, probability below 1e-9) the
  count is :math:`m` plus the arrivals in :math:`(G_m, \mu]`, counted one
  exponential gap at a time (a loop that runs for the rare lane only).

Both draws are exact, so the count is exactly Poisson(:math:`\mu`).

References:
  J. H. Ahrens and U. Dieter (1974). Computer methods for sampling from gamma,
  beta, Poisson and binomial distributions. Computing 12, 223-246 (the
  gamma-binomial reduction).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sim.random._binomial import binomial
from sim.random._gamma import log_gamma, uniform

# m sits this many standard deviations above the mean: G_m <= mu is rarer than 1e-9.
SPREAD = 6.0
# A guard on the rare loop: its expected length is mu - G_m (a few sqrt(mu)); a lane
# that would need more gaps than this returns NaN instead of hanging.
MAX_GAPS = 1 << 24


def poisson(key, mean, dtype=None, *, spread: float = SPREAD) -> jax.Array:
    r"""One exact :math:`\mathrm{Poisson}(\text{mean})` count, as a float (one chain's).

    Args:
      key: a PRNG key.
      mean: a scalar mean >= 0 (static or traced); the count is exact while it
        stays below 2**24 in float32 (2**53 in float64).
      dtype: the float type of the result (default: that of ``mean``, at
        least float32).
      spread: m sits ``spread`` standard deviations above the mean (tests
        pass a negative spread to send most lanes through the rare loop).

    Returns:
      A scalar count (integer-valued float); 0 for ``mean = 0``.
    """
    mean = jnp.asarray(mean)
    dtype = jnp.dtype(dtype or jnp.promote_types(jnp.result_type(mean.dtype, float), jnp.float32))
    if dtype == jnp.float64 and not jax.config.jax_enable_x64:
        raise ValueError("dtype=float64 needs jax_enable_x64 (JAX would compute in float32)")
    mu = jnp.maximum(mean.astype(dtype), 0.0)
    k_gamma, k_binom, k_gaps = (jax.random.fold_in(key, i) for i in range(3))
    m = jnp.maximum(jnp.floor(mu + spread * jnp.sqrt(mu)), 0.0) + 1.0
    g = jnp.exp(log_gamma(k_gamma, m, dtype))
    below = binomial(k_binom, m - 1.0, jnp.clip(mu / g, 0.0, 1.0))

    def more(carry):  # the next exponential gap, for a lane with G_m <= mu
        i, t, count = carry
        u = uniform(jax.random.fold_in(k_gaps, i), dtype)
        t = t - jnp.log(u)
        return i + 1, t, count + (t <= mu).astype(dtype)

    i, _, extra = jax.lax.while_loop(
        lambda c: (c[1] <= mu) & (c[0] < MAX_GAPS),
        more,
        (jnp.zeros((), jnp.int32), g, jnp.zeros((), dtype)),
    )
    return jnp.where(g > mu, below, jnp.where(i < MAX_GAPS, m + extra, jnp.nan))
