r"""The Bayesian family: a conjugate Normal-Inverse-Gamma posterior, sampled by its predictive.

Model (Gelman et al., *Bayesian Data Analysis*, 3rd ed., Sec. 3.3, in the
Normal-Inverse-Gamma parametrisation of Murphy 2007, Sec. 6): data
:math:`x_i \mid \mu, \sigma^2 \sim N(\mu, \sigma^2)` iid, prior

.. math::
    \sigma^2 \sim \mathrm{IG}(\alpha_0, \beta_0), \qquad
    \mu \mid \sigma^2 \sim N(\mu_0, \sigma^2/\kappa_0).

Given :math:`n` points with mean :math:`\bar x` and scatter
:math:`S = \sum_i (x_i - \bar x)^2` the posterior is NIG with

.. math::
    \kappa_n = \kappa_0 + n,\quad \mu_n = \frac{\kappa_0\mu_0 + n\bar x}{\kappa_n},\quad
    \alpha_n = \alpha_0 + \frac n2,\quad
    \beta_n = \beta_0 + \frac S2 + \frac{\kappa_0 n (\bar x - \mu_0)^2}{2\kappa_n}

(BDA eq. 3.9-3.10 with :math:`\nu = 2\alpha`, :math:`\nu\sigma^2 = 2\beta`).
The fit is this posterior (closed form, :func:`posterior`); the key is unused.

Sampling ("the fitted Bayesian model generates the next training set"), the
``predictive`` setting:

* ``"joint"`` (default): draw :math:`(\mu, \sigma^2)` once from the posterior, then
  the M points iid :math:`N(\mu, \sigma^2)`. The M points are then a draw from the
  *joint* posterior predictive of M new points (exchangeable, correlated through the
  shared parameters; a multivariate t, not M independent t's). This is what
  "sampling a data set from the fitted Bayesian model" means, and it is the only
  choice under which the summary of the M points has a closed-form law, so it has
  the exact path (``DataOps.sample_stats``: the parameters, then Gaussian
  sufficient statistics).
* ``"student_t"``: M *independent* draws of the one-point predictive
  :math:`t_{2\alpha_n}(\mu_n, \beta_n(\kappa_n+1)/(\alpha_n\kappa_n))` (each point
  with its own parameter draw): the heavy-tailed marginal, as a generator that
  samples point by point would do. Points path only.

The two give the same one-point marginal and different training sets: under
``joint`` the sample variance is :math:`\sigma^2\chi^2_{M-1}` for one drawn
:math:`\sigma^2`; under ``student_t`` it spreads over M independent scales, and
its expectation carries the parameter uncertainty :math:`1 + 1/\kappa_n` as well
(:mod:`theory.bayes` gives the consequences).

Parametrisation of :class:`BayesParams`: ``log_s2`` is
:math:`\log(\beta_n/\alpha_n)` (BDA's :math:`\sigma_n^2` of the scaled
inverse-:math:`\chi^2`), so that the real distribution :math:`N(m, s^2)` at
generation 0 is the limit :math:`\kappa = \alpha = \infty`, ``log_s2`` =
:math:`\log s^2` (a point mass on :math:`(m, s^2)`), which the samplers handle
branch-free. Data are :class:`~sim.families.gaussian.StandardizedSample` and
training sets are summarised by :class:`~sim.families.gaussian.GaussianStats`
(count, mean, log scatter), so every data regime works; the posterior is a
function of that summary only.

Sequential updating (the posterior becomes the next prior) needs no state of its
own: by conjugacy, updating posterior :math:`n-1` with the data of generation
:math:`n` gives the posterior of the *original* prior given all data so far, which
is this family under the ``accumulate`` regime (the spec's ``update="sequential"``).

References:
  A. Gelman, J. B. Carlin, H. S. Stern, D. B. Dunson, A. Vehtari, D. B. Rubin
  (2013). *Bayesian Data Analysis*, 3rd ed., Sec. 3.3 (normal model, conjugate prior).
  K. P. Murphy (2007). Conjugate Bayesian analysis of the Gaussian distribution,
  Sec. 6 (NIG posterior, eq. 85-89; predictive, eq. 100).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from sim import random as _random
from sim._static import is_static
from sim._validate import check_float
from sim.families.base import DataOps, Family
from sim.families.gaussian.family import (
    GaussianParams,
    GaussianStats,
    StandardizedSample,
    _point_stats,
    _points,
    _standardized_stats,
    merge_stats,
)
from sim.families.gaussian.family import sample_stats as gaussian_sample_stats

PREDICTIVES = ("joint", "student_t")


class BayesParams(NamedTuple):
    r"""A Normal-Inverse-Gamma posterior :math:`\mathrm{NIG}(\mu_n, \kappa_n, \alpha_n, \beta_n)`.

    .. math::
        \sigma^2 \sim \mathrm{IG}(\alpha, \alpha e^{\text{log\_s2}}), \qquad
        \mu \mid \sigma^2 \sim N(\text{mean}, \sigma^2/\kappa);

    ``kappa = alpha = inf`` is the point mass on ``(mean, exp(log_s2))`` (the real
    distribution).
    """

    mean: jax.Array  # shape=(), float: mu_n
    kappa: jax.Array  # shape=(), float: kappa_n > 0 (inf: mu known)
    alpha: jax.Array  # shape=(), float: alpha_n > 0 (inf: sigma^2 known)
    log_s2: jax.Array  # shape=(), float: log(beta_n / alpha_n)


class Prior(NamedTuple):
    """The NIG prior's hyperparameters (Python floats, or traced scalars in a sweep)."""

    mu0: float
    kappa0: float
    alpha0: float
    beta0: float


def check_prior(mu0, kappa0, alpha0, beta0) -> Prior:
    """The prior with each static value checked by name (traced values pass as they are)."""
    vals = dict(mu0=mu0, kappa0=kappa0, alpha0=alpha0, beta0=beta0)
    out = {}
    for name, v in vals.items():
        out[name] = check_float(v, name, positive=name != "mu0") if is_static(v) else v
    return Prior(**out)


def real_params(real_mean: float = 0.0, real_sd: float = 1.0, dtype=None) -> BayesParams:
    """The real distribution N(real_mean, real_sd^2) as generation-0 params
    (kappa = alpha = inf)."""
    real_mean = check_float(real_mean, "real_mean")
    real_sd = check_float(real_sd, "real_sd", positive=True)
    dtype = dtype or jnp.result_type(float)
    inf = jnp.asarray(jnp.inf, dtype)
    log_s2 = jnp.asarray(2 * math.log(real_sd), dtype)
    return BayesParams(jnp.asarray(real_mean, dtype), inf, inf, log_s2)


def posterior(prior: Prior, stats: GaussianStats) -> BayesParams:
    r"""The NIG posterior of ``prior`` given a training set's summary (module docstring).

    Empty data give the prior back; ``log_m2 = -inf`` (fewer than two distinct
    points) is a zero scatter.
    """
    dtype = stats.mean.dtype
    mu0, k0, a0, b0 = (jnp.asarray(v, dtype) for v in prior)
    n = stats.count
    kn = k0 + n
    an = a0 + 0.5 * n
    dev = stats.mean - mu0
    bn = b0 + 0.5 * jnp.exp(stats.log_m2) + 0.5 * (k0 * n / kn) * dev * dev
    mean = (k0 * mu0 + n * stats.mean) / kn
    return BayesParams(mean, kn, an, jnp.log(bn) - jnp.log(an))


def posterior_moments(params: BayesParams):
    r"""``(E[sigma^2], log E[sigma^2], predictive variance)`` of the posterior:
    :math:`\beta/(\alpha-1)` and :math:`(1+1/\kappa)\beta/(\alpha-1)` (infinite for
    :math:`\alpha \le 1`; the real distribution's variance at :math:`\alpha = \infty`)."""
    shrink = jnp.log1p(-1.0 / params.alpha)  # log((alpha - 1) / alpha)
    log_var_mean = jnp.where(params.alpha > 1, params.log_s2 - shrink, jnp.inf)
    var_mean = jnp.exp(log_var_mean)
    return var_mean, log_var_mean, var_mean * (1.0 + 1.0 / params.kappa)


def _log_gamma_over_shape(key, alpha):
    """log(G / alpha), G ~ Gamma(alpha); 0 where alpha is infinite (G/alpha -> 1)."""
    finite = jnp.isfinite(alpha)
    shape = jnp.where(finite, alpha, 1.0)
    lg = _random.log_gamma(key, shape, alpha.dtype, min_shape=1.0)
    return jnp.where(finite, lg - jnp.log(shape), 0.0)


def draw_parameters(key, params: BayesParams) -> GaussianParams:
    r"""One draw :math:`(\mu, \sigma^2)` from the posterior, as Gaussian params:
    :math:`\sigma^2 = e^{\text{log\_s2}}\alpha/G`, :math:`G \sim \mathrm{Gamma}(\alpha)`,
    :math:`\mu = \text{mean} + \sigma Z/\sqrt\kappa`."""
    log_var = params.log_s2 - _log_gamma_over_shape(jax.random.fold_in(key, 2), params.alpha)
    z = _random.normal(jax.random.fold_in(key, 3), params.mean.dtype)
    mean = params.mean + jnp.exp(0.5 * log_var) * z / jnp.sqrt(params.kappa)
    return GaussianParams(mean, log_var)


def sample_joint(key, params: BayesParams, n: int) -> StandardizedSample:
    """``n`` points of the joint predictive: one parameter draw, then ``n`` normals."""
    g = draw_parameters(key, params)
    z = jax.random.normal(jax.random.fold_in(key, 4), (n,), params.mean.dtype)
    return StandardizedSample(g.mean, 0.5 * g.log_var, z)


def sample_student_t(key, params: BayesParams, n: int) -> StandardizedSample:
    r"""``n`` independent draws of the one-point predictive :math:`t_{2\alpha}`:
    point i is :math:`\mu + e^{\text{log\_s2}/2}\sqrt{\alpha/G_i}(Z'_i/\sqrt\kappa + Z_i)`."""
    dtype = params.mean.dtype
    keys = jax.random.split(jax.random.fold_in(key, 5), n)
    lg = jax.vmap(lambda k: _log_gamma_over_shape(k, params.alpha))(keys)
    z = jax.random.normal(jax.random.fold_in(key, 4), (2, n), dtype)
    t = jnp.exp(-0.5 * lg) * (z[0] / jnp.sqrt(params.kappa) + z[1])
    return StandardizedSample(params.mean, 0.5 * params.log_s2, t)


def sample_stats_joint(key, params: BayesParams, n) -> GaussianStats:
    """The summary of ``n`` joint-predictive points, drawn directly (``n`` may be traced):
    the parameters, then the Gaussian summary (THEORY.md G1)."""
    return gaussian_sample_stats(key, draw_parameters(key, params), n)


def empty_stats(params: BayesParams) -> GaussianStats:
    """The statistics of no data (the identity of ``merge``)."""
    zero = jnp.zeros_like(params.mean)
    return GaussianStats(zero, zero, jnp.full_like(zero, -jnp.inf))


@functools.cache
def bayes(
    mu0: float = 0.0,
    kappa0: float = 1.0,
    alpha0: float = 3.0,
    beta0: float = 1.0,
    predictive: str = "joint",
) -> Family:
    """The Bayesian family with a checked static prior (cached; see :func:`bayes_family`).

    Example:
      >>> import jax
      >>> fam = bayes(0.0, 1.0, 3.0, 1.0)
      >>> data = fam.sample(jax.random.key(0), real_params(), 20)
      >>> post = fam.fit(None, data)  # BayesParams: kappa = 21, alpha = 13
    """
    return bayes_family(check_prior(mu0, kappa0, alpha0, beta0), predictive)


def bayes_family(prior: Prior, predictive: str = "joint") -> Family:
    """The family refitting the posterior of ``prior`` (whose values may be traced).

    Args:
      prior: a :class:`Prior` (static values checked by :func:`check_prior`).
      predictive: ``"joint"`` or ``"student_t"`` (module docstring).

    Returns:
      A :class:`~sim.families.base.Family` whose params are :class:`BayesParams`,
      whose data are :class:`~sim.families.gaussian.StandardizedSample` and whose
      :class:`~sim.families.base.DataOps` summarise a set by
      :class:`~sim.families.gaussian.GaussianStats`.
    """
    if predictive not in PREDICTIVES:
        raise ValueError(f"predictive={predictive!r} is not one of {PREDICTIVES}")
    prior = Prior(*prior)

    def fit_stats(key, stats: GaussianStats) -> BayesParams:
        del key  # closed-form fit
        return posterior(prior, stats)

    def fit(key, data: StandardizedSample) -> BayesParams:
        return fit_stats(key, _standardized_stats(data))

    joint = predictive == "joint"
    ops = DataOps(
        stats=_standardized_stats,
        merge=merge_stats,
        fit_stats=fit_stats,
        count=lambda s: s.count,
        empty=empty_stats,
        min_count=2,
        sample_stats=sample_stats_joint if joint else None,
        points=_points,
        point_stats=_point_stats,
    )
    sample = sample_joint if joint else sample_student_t
    return Family(fit=fit, sample=sample, name=f"bayes-{predictive}", ops=ops)
