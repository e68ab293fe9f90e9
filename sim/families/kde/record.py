r"""What a KDE chain records per generation (real distribution :math:`N(\mu_0, \sigma_0^2)`).

For the fit's stored points :math:`x_1..x_N` (mean :math:`\bar x`, MLE variance
:math:`S`) and bandwidth :math:`h`:

* ``variance`` :math:`S + h^2`, the fitted distribution's variance (THEORY.md K1;
  ``theory.kde.expected_variance``);
* ``points_var`` :math:`S`, the stored points' MLE variance;
* ``mean`` :math:`\bar x`, the fitted distribution's mean;
* ``fit_bandwidth`` :math:`h` (at generation 0, the real distribution held as a
  one-point KDE: :math:`\sigma_0`);
* ``heldout_loglik`` :math:`\frac1H \sum_j \log \hat f(y_j)`, the mean
  log-density of a held-out real sample :math:`y_1..y_H \sim N(\mu_0, \sigma_0^2)`.
  The sample is **shared by every chain** and fixed: drawn once from the key
  ``jax.random.key(HELDOUT_SEED, impl="threefry2x32")`` (independent of the run's
  seed), so every chain and every generation is scored on the same points;
  its value at generation 0 is the real density's own score on them;
* ``tail_mass`` :math:`P_{\hat f}(|X - \mu_0| > k\sigma_0) = \frac1N \sum_i
  [\Phi((\mu_0 - k\sigma_0 - x_i)/h) + \Phi((x_i - \mu_0 - k\sigma_0)/h)]`,
  in closed form from the mixture of normals (:math:`2\Phi(-k)` at generation 0).

Cost per chain and generation: O(capacity x H) for the log-likelihood (the
capacity is M, or M G under accumulate), O(capacity) for the rest.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import erfc

from sim._reduce import pairwise_sum
from sim._validate import check_float, check_int
from sim.families.kde.family import KDEParams, point_mean_var

HELDOUT_SEED = 20241021


class KDERecord(NamedTuple):
    """Per-chain, per-generation summaries of a KDE chain (all float)."""

    variance: jax.Array  # shape=(), S + h^2
    points_var: jax.Array  # shape=(), S, the stored points' MLE variance
    mean: jax.Array  # shape=(), the stored points' mean
    fit_bandwidth: jax.Array  # shape=(), h (not "bandwidth": that names the sweep setting)
    heldout_loglik: jax.Array  # shape=(), mean log-density of the shared held-out sample
    tail_mass: jax.Array  # shape=(), P_fit(|X - mu0| > k sigma0)


def heldout_sample(size: int, mu0: float, sigma0: float, dtype) -> jax.Array:
    """The shared held-out real sample (see the module docstring)."""
    key = jax.random.key(HELDOUT_SEED, impl="threefry2x32")
    return mu0 + sigma0 * jax.random.normal(key, (size,), dtype)


@functools.cache
def kde_record(mu0: float = 0.0, sigma0: float = 1.0, tail_k: float = 3.0, heldout_size: int = 64):
    """Builds ``record(params) -> KDERecord`` (cached per setting).

    Args:
      mu0, sigma0: the real distribution.
      tail_k: k; tails are measured beyond k sigma0 from mu0.
      heldout_size: H, the size of the shared held-out sample.
    """
    mu0 = check_float(mu0, "mu0")
    sigma0 = check_float(sigma0, "sigma0", positive=True)
    tail_k = check_float(tail_k, "tail_k", nonnegative=True)
    heldout_size = check_int(heldout_size, "heldout_size", 1)
    half_log_2pi = 0.5 * math.log(2.0 * math.pi)

    def record(params: KDEParams) -> KDERecord:
        x, n, h = params.points, params.count, params.bandwidth
        dtype = x.dtype
        mean, var = point_mean_var(x, n)
        valid = jnp.arange(x.shape[-1]) < n
        y = heldout_sample(heldout_size, mu0, sigma0, dtype)
        u = (y[:, None] - x[None, :]) / h  # (H, capacity)
        logk = jnp.where(valid[None, :], -0.5 * jnp.square(u), -jnp.inf)
        top = jnp.max(logk, axis=-1, keepdims=True)  # a max is exact in any order
        top = jnp.where(jnp.isfinite(top), top, 0)
        # fixed-order sums (batch-free), not jax.nn.logsumexp
        log_sum = top[:, 0] + jnp.log(pairwise_sum(jnp.exp(logk - top)))
        log_f = log_sum - jnp.log(n) - jnp.log(h) - half_log_2pi
        loglik = pairwise_sum(log_f) / heldout_size
        # Phi(t) = erfc(-t / sqrt 2) / 2: accurate relative to itself in the lower tail,
        # where the small terms are (and cheaper than ndtr, which evaluates two branches)
        scale = -1.0 / (math.sqrt(2.0) * h)
        lo = 0.5 * erfc((mu0 - tail_k * sigma0 - x) * scale)
        hi = 0.5 * erfc((x - mu0 - tail_k * sigma0) * scale)
        tail = pairwise_sum(jnp.where(valid, lo + hi, 0)) / n
        return KDERecord(var + jnp.square(h), var, mean, h, loglik, tail)

    return record
