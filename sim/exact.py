r"""Exact sufficient-statistic fast paths: the same Markov chain in O(1) per step.

For the 1-D Gaussian, fitting M samples drawn from :math:`N(\mu, \sigma^2)`
gives (THEORY.md G1, Cochran's theorem)

.. math::
    \hat\mu = \mu + \sigma \bar z, \quad \bar z \sim N(0, 1/M), \qquad
    \log\hat\sigma^2 = \log\sigma^2 + \log(\chi^2_{M-1} / c),

with :math:`\bar z` and :math:`\chi^2_{M-1}` independent, so one normal and
one chi-square per generation replace M normals. The cost no longer depends on
M, so M = 10,000 runs as fast as M = 10.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from sim._validate import check_estimator, check_int
from sim.families.gaussian import GaussianParams, variance_divisor
from sim.random import log_chi2, normal


@functools.cache
def gaussian_exact_step(sample_size: int, estimator: str = "unbiased"):
    """The exact one-generation transition of the Gaussian chain.

    Args:
      sample_size: M, samples per generation (static, >= 2).
      estimator: ``"mle"`` or ``"unbiased"``.

    Returns:
      ``step(key, params) -> params`` with the law of
      ``fit(sample(params, M))`` for :func:`sim.families.gaussian.gaussian`.
    """
    m = check_int(sample_size, "sample_size", 2)
    check_estimator(estimator)
    log_c = math.log(variance_divisor(m, estimator))

    def step(key, params: GaussianParams) -> GaussianParams:
        dtype = params.log_var.dtype
        k_mean, k_var = jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)
        zbar = normal(k_mean, dtype) * np.asarray(1.0 / math.sqrt(m), dtype)
        mean = params.mean + jnp.exp(0.5 * params.log_var) * zbar
        log_var = params.log_var + log_chi2(k_var, m - 1, dtype) - np.asarray(log_c, dtype)
        return GaussianParams(mean, log_var)

    return step
