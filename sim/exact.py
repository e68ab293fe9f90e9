r"""Exact sufficient-statistic fast paths: the same Markov chain in O(1) per step.

For the 1-D Gaussian, fitting M samples drawn from :math:`N(\mu, \sigma^2)`
gives (THEORY.md G1, Cochran's theorem)

.. math::
    \hat\mu = \mu + \sigma \bar z, \quad \bar z \sim N(0, 1/M), \qquad
    \log\hat\sigma^2 = \log\sigma^2 + \log(\chi^2_{M-1} / c),

with :math:`\bar z` and :math:`\chi^2_{M-1}` independent, so one normal and
one chi-square per generation replace M normals. The cost no longer depends on
M, so M = 10,000 runs as fast as M = 10. The draws are the family's
``DataOps.sample_stats`` (:func:`sim.families.gaussian.sample_stats`), which the
data regimes (:mod:`sim.regimes`) use too.
"""

from __future__ import annotations

import functools

from sim._validate import check_estimator, check_int
from sim.families.gaussian import GaussianParams, gaussian


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
    ops = gaussian(check_estimator(estimator)).ops

    def step(key, params: GaussianParams) -> GaussianParams:
        return ops.fit_stats(None, ops.sample_stats(key, params, m))

    return step
