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
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sim import random as _random
from sim._reduce import pairwise_mean, pairwise_sum
from sim._static import is_static
from sim._static import label as _label
from sim._validate import check_estimator, check_float
from sim.families.base import DataOps, Family


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


def real_params(mu0: float = 0.0, sigma0: float = 1.0, dtype=None) -> GaussianParams:
    """The real distribution N(mu0, sigma0^2) as generation-0 params."""
    dtype = dtype or jnp.result_type(float)
    return GaussianParams(jnp.asarray(mu0, dtype), jnp.asarray(2.0 * jnp.log(sigma0), dtype))


class GaussianStats(NamedTuple):
    r"""Sufficient statistics of a Gaussian training set (:class:`~sim.families.base.DataOps`).

    ``log_m2`` is :math:`\log\sum_i (x_i - \bar x)^2` (``-inf`` for fewer than
    two distinct points), kept in logs for the same reason as ``log_var``.
    """

    count: jax.Array  # shape=(), float: number of points
    mean: jax.Array  # shape=(), float: their mean (0 when count is 0)
    log_m2: jax.Array  # shape=(), float: log of the sum of squared deviations


def _standardized_stats(data: StandardizedSample, weights=None) -> GaussianStats:
    """Statistics of the points (0/1 ``weights``) computed in standardised coordinates."""
    z = data.z
    if weights is None:
        count = jnp.asarray(z.shape[-1], z.dtype)
        zbar = pairwise_mean(z)
        ss = pairwise_sum(jnp.square(z - zbar[..., None]))
    else:
        w = weights.astype(z.dtype)
        count = pairwise_sum(w)
        zbar = pairwise_sum(w * z) / jnp.maximum(count, 1)
        ss = pairwise_sum(w * jnp.square(z - zbar[..., None]))
    mean = data.loc + jnp.exp(data.log_scale) * zbar
    return GaussianStats(count, mean, 2.0 * data.log_scale + jnp.log(ss))


def merge_stats(a: GaussianStats, b: GaussianStats) -> GaussianStats:
    r"""Statistics of the union of two sets (Chan, Golub & LeVeque 1979).

    .. math::
        n = n_a + n_b,\quad \bar x = \bar x_a + \delta n_b/n,\quad
        M_2 = M_{2,a} + M_{2,b} + \delta^2 n_a n_b / n,\quad \delta = \bar x_b - \bar x_a,

    the three terms of :math:`M_2` added in logs.
    """
    n = a.count + b.count
    safe = jnp.where(n > 0, n, 1)
    delta = b.mean - a.mean
    mean = jnp.where(n > 0, a.mean + delta * (b.count / safe), 0)
    cross = 2.0 * jnp.log(jnp.abs(delta)) + jnp.log(a.count * b.count / safe)
    log_m2 = jnp.logaddexp(jnp.logaddexp(a.log_m2, b.log_m2), cross)
    return GaussianStats(n, mean, log_m2)


def empty_stats(params: GaussianParams) -> GaussianStats:
    """The statistics of no data (the identity of :func:`merge_stats`)."""
    zero = jnp.zeros_like(params.log_var)
    return GaussianStats(zero, zero, jnp.full_like(zero, -jnp.inf))


def sample_stats(key, params: GaussianParams, n) -> GaussianStats:
    r"""Statistics of ``n`` draws from ``params``, drawn directly (THEORY.md G1).

    :math:`\bar x = \mu + \sigma Z/\sqrt n` and
    :math:`M_2 = \sigma^2\chi^2_{n-1}`, independent. A Python int ``n`` uses
    the project's exact samplers with a static gamma shape; a traced ``n`` (a
    sample-size schedule, a random real count) the same sampler with a traced
    shape (the same law; other random words). ``n`` = 0 gives the empty
    statistics and ``n`` = 1 a single point (``log_m2 = -inf``).
    """
    dtype = params.log_var.dtype
    k_mean, k_var = jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)
    if isinstance(n, int):
        if n == 0:
            return empty_stats(params)
        z = _random.normal(k_mean, dtype)
        log_chi2 = _random.log_chi2(k_var, n - 1, dtype) if n > 1 else jnp.asarray(-jnp.inf, dtype)
        count = jnp.asarray(n, dtype)
    else:
        count = jnp.asarray(n, dtype)
        z = _random.normal(k_mean, dtype)
        shape = jnp.where(count > 1, 0.5 * (count - 1), 1.0)
        log_chi2 = _random.log_gamma(k_var, shape, dtype) + np.asarray(math.log(2.0), dtype)
        log_chi2 = jnp.where(count > 1, log_chi2, -jnp.inf)
    root_n = jnp.sqrt(jnp.maximum(count, 1))
    if not isinstance(n, int):
        # XLA rewrites z / sqrt(n) as z * rsqrt(n), on the CPU an approximation and a
        # Newton step that the fused kernel's vector loop and scalar remainder round
        # differently: a chain's mean then depended on its lane (batch size, number
        # of devices). The barrier keeps sqrt and the division (both correctly rounded).
        root_n = jax.lax.optimization_barrier(root_n)
    mean = params.mean + jnp.exp(0.5 * params.log_var) * z / root_n
    stats = GaussianStats(count, mean, params.log_var + log_chi2)
    return jax.tree.map(lambda e, s: jnp.where(count > 0, s, e), empty_stats(params), stats)


def _points(data: StandardizedSample) -> jax.Array:
    return data.loc + jnp.exp(data.log_scale) * data.z


def _point_stats(x: jax.Array, weights) -> GaussianStats:
    zero = jnp.zeros((), x.dtype)
    return _standardized_stats(StandardizedSample(zero, zero, x), weights)


ESTIMATOR_DDOF = {"mle": 0, "unbiased": 1}  # the variance divisor is count - ddof


@functools.cache
def gaussian(estimator: str = "unbiased", known_variance: float | None = None) -> Family:
    """The 1-D Gaussian family with the given variance estimator.

    Cached, so that equal settings give the same (hashable) functions and a
    jitted runner is compiled once per setting. A validating wrapper of
    :func:`gaussian_family` (``ddof`` from :data:`ESTIMATOR_DDOF`).

    Args:
      estimator: ``"mle"`` (divide by M) or ``"unbiased"`` (divide by M-1).
      known_variance: if given, only the mean is fitted and the variance stays
        at this value (the known-sigma models of THEORY.md L3 and F3).

    Returns:
      A :class:`~sim.families.base.Family` whose params are
      :class:`GaussianParams`, whose data are :class:`StandardizedSample` and
      whose :class:`~sim.families.base.DataOps` summarise a set by
      :class:`GaussianStats`.

    Example:
      >>> import jax
      >>> fam = gaussian("mle")
      >>> data = fam.sample(jax.random.key(0), real_params(), 100)
      >>> fitted = fam.fit(None, data)
    """
    check_estimator(estimator)
    if known_variance is not None:
        known_variance = check_float(known_variance, "known_variance", positive=True)
    return gaussian_family(ESTIMATOR_DDOF[estimator], known_variance)


def gaussian_family(ddof, known_variance=None) -> Family:
    r"""The 1-D Gaussian family fitting :math:`\hat\sigma^2 = M_2 / (\text{count} - \text{ddof})`.

    Uncached, and ``ddof`` (and ``known_variance``) may be traced, e.g. a
    per-lane scalar of a parameter sweep under ``vmap``: ``ddof`` = 0.0 is the
    MLE, 1.0 the unbiased estimator, anything between a shrinkage. Only static
    values are checked; :func:`gaussian` is the cached, validated entry point.

    Args:
      ddof: the "delta degrees of freedom", < 2 (the fit needs count - ddof >
        0 for its at least 2 points).
      known_variance: ``None`` (fit the variance), or a variance > 0 kept
        fixed while only the mean is fitted.

    Returns:
      The :class:`~sim.families.base.Family` of :func:`gaussian`; with
      Python ``ddof`` 0 or 1 it computes the very same numbers.
    """
    if is_static(ddof) and not (math.isfinite(ddof) and ddof < 2):
        raise ValueError(f"ddof={ddof!r} must be finite and < 2")
    if known_variance is not None and is_static(known_variance):
        known_variance = check_float(known_variance, "known_variance", positive=True)
        log_known = math.log(known_variance)
    elif known_variance is not None:
        log_known = jnp.log(known_variance)

    def fit_stats(key, stats: GaussianStats) -> GaussianParams:
        del key  # closed-form fit
        if known_variance is not None:
            log_var = jnp.broadcast_to(jnp.asarray(log_known, stats.mean.dtype), stats.mean.shape)
            return GaussianParams(stats.mean, log_var)
        shift = ddof if is_static(ddof) else jnp.asarray(ddof, stats.count.dtype)
        return GaussianParams(stats.mean, stats.log_m2 - jnp.log(stats.count - shift))

    def fit(key, data: StandardizedSample) -> GaussianParams:
        m = data.z.shape[-1]
        if m < 2 and known_variance is None:
            raise ValueError(f"cannot fit a variance to M={m} < 2 samples")
        # Fixed-order sums: a chain's fit must not depend on its batch.
        return fit_stats(key, _standardized_stats(data))

    def noise(key, n: int, dtype) -> jax.Array:
        return jax.random.normal(key, (n,), dtype=dtype)

    def with_noise(params: GaussianParams, z) -> StandardizedSample:
        return StandardizedSample(params.mean, 0.5 * params.log_var, z)

    def sample(key, params: GaussianParams, n: int) -> StandardizedSample:
        return with_noise(params, noise(key, n, params.log_var.dtype))

    ops = DataOps(
        stats=_standardized_stats,
        merge=merge_stats,
        fit_stats=fit_stats,
        count=lambda s: s.count,
        empty=empty_stats,
        min_count=1 if known_variance is not None else 2,
        sample_stats=sample_stats,
        points=_points,
        point_stats=_point_stats,
    )
    if known_variance is not None:
        name = f"gaussian-known({_label(known_variance)})"
    elif is_static(ddof) and ddof in (0, 1):
        name = "gaussian-mle" if ddof == 0 else "gaussian-unbiased"
    else:
        name = f"gaussian(ddof={_label(ddof)})"
    return Family(fit=fit, sample=sample, name=name, ops=ops, noise=noise, with_noise=with_noise)
