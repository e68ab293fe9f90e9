r"""The 1-D Gaussian family, kept in log-variance and standardised coordinates.

Each generation fits

.. math::
    \hat\mu = \frac1M \sum_i x_i, \qquad
    \hat\sigma^2 = \frac1c \sum_i (x_i - \hat\mu)^2, \quad
    c = M \ (\text{mle}) \text{ or } M-1 \ (\text{unbiased}),

to ``M`` samples drawn from the previous fit.

Two numerical decisions (measured, see DESIGN.md):

* the scale is carried as ``log_var`` = :math:`\log\sigma^2`; a chain whose
  variance falls below the smallest float (after a few hundred generations at
  M=10) keeps going, with ``log_var`` around -1000 and beyond;
* samples are drawn in standardised coordinates: ``sample`` returns
  ``z ~ N(0, 1)`` together with the location and log-scale they stand for,
  and ``fit`` computes the mean and variance of ``z`` before mapping back.
  Forming ``x = mu + sigma z`` first would round ``sigma z`` away once
  ``sigma / |mu|`` falls below the machine epsilon.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from sim._reduce import pairwise_mean, pairwise_sum
from sim._validate import check_estimator
from sim.families.base import Family


class GaussianParams(NamedTuple):
    r"""A fitted 1-D Gaussian :math:`N(\mu, \sigma^2)`."""

    mean: jax.Array  # shape=(), float: mu
    log_var: jax.Array  # shape=(), float: log sigma^2


class StandardizedSample(NamedTuple):
    r"""Samples :math:`x_i = \text{loc} + e^{\text{log\_scale}} z_i`, kept factored."""

    loc: jax.Array  # shape=(), float
    log_scale: jax.Array  # shape=(), float: log sigma (half the log-variance)
    z: jax.Array  # shape=(M,), float: standardised draws


def as_sample(x: jax.Array) -> StandardizedSample:
    """Wraps raw data ``x`` (shape ``(M,)``) so that ``fit`` can take it."""
    x = jnp.asarray(x)
    zero = jnp.zeros((), x.dtype)
    return StandardizedSample(zero, zero, x)


def variance_divisor(sample_size: int, estimator: str) -> int:
    """c = M for the MLE, M - 1 for the unbiased estimator."""
    check_estimator(estimator)
    return sample_size if estimator == "mle" else sample_size - 1


def real_params(mu0: float = 0.0, sigma0: float = 1.0, dtype=None) -> GaussianParams:
    """The real distribution N(mu0, sigma0^2) as generation-0 params."""
    dtype = dtype or jnp.result_type(float)
    return GaussianParams(jnp.asarray(mu0, dtype), jnp.asarray(2.0 * jnp.log(sigma0), dtype))


@functools.cache
def gaussian(estimator: str = "unbiased") -> Family:
    """The 1-D Gaussian family with the given variance estimator.

    Cached, so that equal settings give the same (hashable) functions and a
    jitted runner is compiled once per setting.

    Args:
      estimator: ``"mle"`` (divide by M) or ``"unbiased"`` (divide by M-1).

    Returns:
      A :class:`~sim.families.base.Family` whose params are
      :class:`GaussianParams` and whose data are :class:`StandardizedSample`.

    Example:
      >>> import jax
      >>> fam = gaussian("mle")
      >>> data = fam.sample(jax.random.key(0), real_params(), 100)
      >>> fitted = fam.fit(None, data)
    """
    check_estimator(estimator)

    def fit(key, data: StandardizedSample) -> GaussianParams:
        del key  # closed-form fit
        z = data.z
        m = z.shape[-1]
        if m < 2:
            raise ValueError(f"cannot fit a variance to M={m} < 2 samples")
        c = m if estimator == "mle" else m - 1
        # Fixed-order sums: a chain's fit must not depend on its batch.
        zbar = pairwise_mean(z)
        ss = pairwise_sum(jnp.square(z - zbar[..., None]))
        mean = data.loc + jnp.exp(data.log_scale) * zbar
        log_var = 2.0 * data.log_scale + jnp.log(ss / c)
        return GaussianParams(mean, log_var)

    def sample(key, params: GaussianParams, n: int) -> StandardizedSample:
        z = jax.random.normal(key, (n,), dtype=params.log_var.dtype)
        return StandardizedSample(params.mean, 0.5 * params.log_var, z)

    return Family(fit=fit, sample=sample, name=f"gaussian-{estimator}")
