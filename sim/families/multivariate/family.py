r"""The d-dimensional Gaussian with full covariance, carried as a unit-determinant
Cholesky factor and a log-determinant, sampled in standardised coordinates.

Each generation fits

.. math::
    \hat\mu = \frac1M \sum_i x_i, \qquad
    \hat\Sigma = \frac1c \sum_i (x_i - \hat\mu)(x_i - \hat\mu)^T, \quad
    c = M \ (\text{mle}) \text{ or } M-1 \ (\text{unbiased}),

to ``M > d`` samples drawn from the previous fit (THEORY.md W1, W2).

Numerical decisions (the Gaussian family's, in d dimensions):

* params are ``(mean, chol, log_det)`` with
  :math:`\Sigma = e^{\text{log\_det}/d}\, L L^T` and :math:`\det L = 1`: the
  scale lives in ``log_det`` (a long chain's determinant leaves float32's range
  within a few hundred generations at d = 30), the unit-determinant factor
  keeps the shape, positive definite by construction (a lower-triangular
  factor with a positive diagonal);
* samples are drawn in standardised coordinates ``z ~ N(0, I)`` and the fit is
  relative to the previous one: with :math:`S_z = R R^T` the scatter of the
  ``z`` (a Cholesky of :math:`S_z`, well conditioned since the ``z`` are
  standard; a QR of the centred draws for a filtered, possibly singular set),
  the new factor is :math:`L_{old} R` renormalised and
  :math:`\log\det\hat\Sigma = \log\det\Sigma_{old} + 2\sum_i \log R_{ii} - d\log c`.
  Forming :math:`x = \mu + L z` and refactorising would lose the small
  directions to rounding late in a chain.
* summaries (:class:`MultivariateStats`) hold the scatter as a lower factor of
  Frobenius norm 1 and a log scale (a singular or empty scatter is a valid
  summary); Chan's pairwise merge adds the factors by one QR of the stacked
  factors.
* the exact path draws the scatter of ``M`` points by the Bartlett
  decomposition (:func:`sim.random.bartlett`): O(d^2) draws per generation
  whatever ``M``.

Range (measured). One matrix holds the factor, and its directions separate
at their own rates (the i-th diagonal entry of a product of Bartlett factors
drifts like :math:`\psi((M-i)/2)/2` per generation: Lyapunov exponents), so
the ratio of its largest to its smallest entries grows exponentially. In
float32 at d = 100, M = 316 (exact path) the smallest diagonal entry reaches
the denormal range and is flushed to 0 at generations 440-452 (8 chains); at
d = 31, M = 100, 300 generations stay finite. Per-direction log scales (a unit
lower-triangular factor and a log-diagonal) would remove the limit.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from sim import random as _random
from sim._reduce import pairwise_sum
from sim._static import is_static
from sim._static import label as _label
from sim._validate import check_estimator, check_int
from sim.families.base import DataOps, Family

ESTIMATOR_DDOF = {"mle": 0, "unbiased": 1}  # the covariance divisor is count - ddof


class MultivariateParams(NamedTuple):
    r"""A fitted :math:`N(\mu, \Sigma)`: :math:`\Sigma = e^{\text{log\_det}/d} L L^T`, det L = 1."""

    mean: jax.Array  # shape=(d,), float: mu
    chol: jax.Array  # shape=(d, d), float: unit-determinant lower Cholesky factor L
    log_det: jax.Array  # shape=(), float: log det Sigma


class MultivariateSample(NamedTuple):
    r"""Samples :math:`x_i = \text{loc} + e^{\text{log\_det}/(2d)} L z_i`, kept factored."""

    loc: jax.Array  # shape=(d,), float
    chol: jax.Array  # shape=(d, d), float: the unit-determinant factor L
    log_det: jax.Array  # shape=(), float: log det of the covariance the z stand for
    z: jax.Array  # shape=(M, d), float: standardised draws


class MultivariateStats(NamedTuple):
    r"""Sufficient statistics of a training set (:class:`~sim.families.base.DataOps`).

    The scatter :math:`\sum_i (x_i - \bar x)(x_i - \bar x)^T = e^{2s} F F^T`
    with ``F`` = ``factor`` lower-triangular of Frobenius norm 1 (0 for fewer
    than two distinct points) and ``s`` = ``log_scale`` (``-inf`` then).
    """

    count: jax.Array  # shape=(), float: number of points
    mean: jax.Array  # shape=(d,), float: their mean (0 when count is 0)
    factor: jax.Array  # shape=(d, d), float: lower factor of the scatter, norm 1
    log_scale: jax.Array  # shape=(), float: log of the scatter factor's scale


def real_params(dim: int = 3, dtype=None) -> MultivariateParams:
    """The real distribution N(0, I_d) as generation-0 params."""
    dim = check_int(dim, "dim", 1)
    dtype = dtype or jnp.result_type(float)
    return MultivariateParams(
        jnp.zeros((dim,), dtype), jnp.eye(dim, dtype=dtype), jnp.zeros((), dtype)
    )


def as_sample(x: jax.Array) -> MultivariateSample:
    """Wraps raw data ``x`` (shape ``(M, d)``) so that ``fit`` can take it."""
    x = jnp.asarray(x)
    d = x.shape[-1]
    return MultivariateSample(
        jnp.zeros((d,), x.dtype), jnp.eye(d, dtype=x.dtype), jnp.zeros((), x.dtype), x
    )


def _lower_from_qr(b: jax.Array) -> jax.Array:
    """The lower factor L with L L^T = b^T b (b of shape (k, d)), positive diagonal."""
    r = jnp.linalg.qr(b, mode="r")[: b.shape[-1]]
    sign = jnp.where(jnp.diagonal(r) < 0, -1.0, 1.0).astype(b.dtype)
    return (r * sign[:, None]).T


def _normalised(lower: jax.Array, log_scale):
    """(lower / ||lower||_F, log_scale + log ||lower||_F); an all-zero factor stays 0, -inf."""
    top = jnp.max(jnp.abs(lower))  # scaled first: the squares of a graded factor overflow
    top = jnp.where(top > 0, top, 1.0)
    norm = top * jnp.sqrt(jnp.sum(jnp.square(lower / top)))
    safe = jnp.where(norm > 0, norm, 1.0)
    return lower / safe, jnp.where(norm > 0, log_scale + jnp.log(safe), -jnp.inf)


def _relative_stats(data: MultivariateSample, weights=None) -> MultivariateStats:
    """Statistics of the points (0/1 ``weights``) computed in standardised coordinates."""
    z = data.z
    d = z.shape[-1]
    if weights is None:
        count = jnp.asarray(z.shape[0], z.dtype)
        w = jnp.ones(z.shape[:1], z.dtype)
    else:
        w = weights.astype(z.dtype)
        count = pairwise_sum(w)
    zbar = pairwise_sum(w * z.T) / jnp.maximum(count, 1)  # fixed-order sums (batch-free)
    centred = jnp.sqrt(w)[:, None] * (z - zbar)
    if weights is None:  # M > d points of N(0, I): S_z is well conditioned, Cholesky is safe
        r = jnp.linalg.cholesky(centred.T @ centred)
    else:  # a filtered set may be singular: QR gives its factor (zero pivots), no NaN
        r = _lower_from_qr(centred)  # S_z = R R^T
    scale = 0.5 * data.log_det / d
    factor, log_scale = _normalised(data.chol @ r, scale)
    mean = data.loc + jnp.exp(scale) * (data.chol @ zbar)
    zero = jnp.zeros_like(mean)
    return MultivariateStats(count, jnp.where(count > 0, mean, zero), factor, log_scale)


def merge_stats(a: MultivariateStats, b: MultivariateStats) -> MultivariateStats:
    r"""Statistics of the union of two sets (Chan, Golub & LeVeque 1979).

    .. math::
        n = n_a + n_b,\quad \bar x = \bar x_a + \delta n_b/n,\quad
        S = S_a + S_b + \delta\delta^T n_a n_b / n,\quad \delta = \bar x_b - \bar x_a,

    the three terms added as factors: :math:`S = B^T B` with
    :math:`B = [e^{s_a} F_a, e^{s_b} F_b, \sqrt{n_a n_b/n}\,\delta]^T` (one QR,
    scaled by the largest term first so that nothing overflows).
    """
    n = a.count + b.count
    safe = jnp.where(n > 0, n, 1)
    delta = b.mean - a.mean
    mean = jnp.where(n > 0, a.mean + delta * (b.count / safe), 0)
    cross = delta * jnp.sqrt(a.count * b.count / safe)
    cross_norm = jnp.sqrt(jnp.sum(jnp.square(cross)))
    log_cross = jnp.where(
        cross_norm > 0, jnp.log(jnp.where(cross_norm > 0, cross_norm, 1)), -jnp.inf
    )
    top = jnp.maximum(jnp.maximum(a.log_scale, b.log_scale), log_cross)
    top = jnp.where(jnp.isfinite(top), top, 0.0)
    stacked = jnp.concatenate(
        [
            (jnp.exp(a.log_scale - top) * a.factor).T,
            (jnp.exp(b.log_scale - top) * b.factor).T,
            (jnp.exp(-top) * cross)[None, :],
        ]
    )
    factor, log_scale = _normalised(_lower_from_qr(stacked), top)
    merged = MultivariateStats(n, mean, factor, log_scale)
    # the empty set is an exact identity (the QR would round the other factor's last bits)
    merged = jax.tree.map(lambda x, y: jnp.where(b.count > 0, x, y), merged, a)
    return jax.tree.map(lambda x, y: jnp.where(a.count > 0, x, y), merged, b)


def empty_stats(params: MultivariateParams) -> MultivariateStats:
    """The statistics of no data (the identity of :func:`merge_stats`)."""
    zero = jnp.zeros_like(params.log_det)
    return MultivariateStats(
        zero,
        jnp.zeros_like(params.mean),
        jnp.zeros_like(params.chol),
        jnp.full_like(zero, -jnp.inf),
    )


def sample_stats(key, params: MultivariateParams, n) -> MultivariateStats:
    r"""Statistics of ``n`` draws from ``params``, drawn directly (Bartlett).

    :math:`\bar x = \mu + \Sigma^{1/2} Z / \sqrt n`, :math:`Z \sim N(0, I)`, and
    the scatter :math:`\Sigma^{1/2} A A^T \Sigma^{1/2\,T}` with ``A`` the
    Bartlett factor of :math:`\mathrm{Wishart}_d(n - 1, I)`, independent;
    O(d^2) draws whatever ``n``. ``n`` may be traced (a schedule); ``n = 0``
    gives the empty statistics.
    """
    dtype = params.log_det.dtype
    d = params.mean.shape[-1]
    count = jnp.asarray(n, dtype)
    z = jax.random.normal(jax.random.fold_in(key, 0), (d,), dtype)
    if is_static(n) and n == 0:
        return empty_stats(params)
    # a static df >= d draws with static gamma shapes; fewer points (a regime's split) are
    # drawn as a traced df (the singular directions get a zero diagonal)
    df = n - 1 if is_static(n) and n - 1 >= d else count - 1
    a = _random.bartlett(jax.random.fold_in(key, 1), df, d, dtype)
    scale = 0.5 * params.log_det / d
    root_n = jnp.sqrt(jnp.maximum(count, 1))
    if not is_static(n):
        root_n = jax.lax.optimization_barrier(root_n)  # see gaussian.sample_stats
    mean = params.mean + jnp.exp(scale) * (params.chol @ z) / root_n
    factor, log_scale = _normalised(params.chol @ a.lower, scale)
    stats = MultivariateStats(count, mean, factor, log_scale)
    return jax.tree.map(lambda e, s: jnp.where(count > 0, s, e), empty_stats(params), stats)


def _points(data: MultivariateSample) -> jax.Array:
    d = data.z.shape[-1]
    return data.loc + jnp.exp(0.5 * data.log_det / d) * (data.z @ data.chol.T)


def _point_stats(x: jax.Array, weights) -> MultivariateStats:
    return _relative_stats(as_sample(x), weights)


@functools.cache
def multivariate(dim: int = 3, estimator: str = "unbiased") -> Family:
    """The d-dimensional full-covariance Gaussian family (cached, validated).

    Args:
      dim: d >= 1.
      estimator: ``"mle"`` (divide by M) or ``"unbiased"`` (divide by M-1).

    Returns:
      A :class:`~sim.families.base.Family` whose params are
      :class:`MultivariateParams`, whose data are :class:`MultivariateSample`
      and whose :class:`~sim.families.base.DataOps` summarise a set by
      :class:`MultivariateStats`.

    Example:
      >>> import jax
      >>> fam = multivariate(3, "mle")
      >>> data = fam.sample(jax.random.key(0), real_params(3), 20)
      >>> fitted = fam.fit(None, data)
      >>> fitted.chol.shape
      (3, 3)
    """
    check_estimator(estimator)
    return multivariate_family(check_int(dim, "dim", 1), ESTIMATOR_DDOF[estimator])


def multivariate_family(dim: int, ddof) -> Family:
    r"""The family fitting :math:`\hat\Sigma = S / (\text{count} - \text{ddof})`.

    Uncached; ``ddof`` may be traced (a per-lane estimator of a sweep): 0.0 is
    the MLE, 1.0 the unbiased estimator. ``dim`` is static (it sets shapes).
    """
    if is_static(ddof) and not (math.isfinite(ddof) and ddof < dim + 1):
        raise ValueError(f"ddof={ddof!r} must be finite and < dim + 1 = {dim + 1}")

    def fit_stats(key, stats: MultivariateStats) -> MultivariateParams:
        del key  # closed-form fit
        shift = ddof if is_static(ddof) else jnp.asarray(ddof, stats.count.dtype)
        log_diag = jnp.log(jnp.diagonal(stats.factor))
        mean_log_diag = jnp.mean(log_diag)
        log_det = 2.0 * dim * (stats.log_scale + mean_log_diag) - dim * jnp.log(stats.count - shift)
        chol = stats.factor * jnp.exp(-mean_log_diag)
        return MultivariateParams(stats.mean, chol, log_det)

    def fit(key, data: MultivariateSample) -> MultivariateParams:
        m, d = data.z.shape[-2:]
        if m <= d:
            raise ValueError(
                f"cannot fit a {d}-dimensional covariance to sample_size={m} points "
                f"(needs sample_size > dim={d})"
            )
        return fit_stats(key, _relative_stats(data))

    def sample(key, params: MultivariateParams, n: int) -> MultivariateSample:
        z = jax.random.normal(key, (n, dim), dtype=params.log_det.dtype)
        return MultivariateSample(params.mean, params.chol, params.log_det, z)

    ops = DataOps(
        stats=_relative_stats,
        merge=merge_stats,
        fit_stats=fit_stats,
        count=lambda s: s.count,
        empty=empty_stats,
        min_count=dim + 1,
        sample_stats=sample_stats,
        points=_points,
        point_stats=_point_stats,
    )
    if is_static(ddof) and ddof in (0, 1):
        name = f"multivariate{dim}-" + ("mle" if ddof == 0 else "unbiased")
    else:
        name = f"multivariate{dim}(ddof={_label(ddof)})"
    return Family(fit=fit, sample=sample, name=name, ops=ops)
