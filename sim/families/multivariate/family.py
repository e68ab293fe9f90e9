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
    r"""A fitted :math:`N(\mu, \Sigma)`: :math:`\Sigma = U\,\mathrm{diag}(e^{2s})\,U^T`.

    ``U`` is unit lower-triangular (ones on the diagonal) and ``s`` the
    per-direction log scales; ``log_det`` :math:`= 2\sum_i s_i` is kept beside them.
    """

    mean: jax.Array  # shape=(d,), float: mu
    unit_lower: jax.Array  # shape=(d, d), float: unit lower-triangular U
    log_scales: jax.Array  # shape=(d,), float: s, Sigma's Cholesky factor is U diag(exp(s))
    log_det: jax.Array  # shape=(), float: log det Sigma = 2 sum(s)


class MultivariateSample(NamedTuple):
    r"""Samples :math:`x_i = \text{loc} + U\,\mathrm{diag}(e^{s})\,z_i`, kept factored."""

    loc: jax.Array  # shape=(d,), float
    unit_lower: jax.Array  # shape=(d, d), float: U of the covariance the z stand for
    log_scales: jax.Array  # shape=(d,), float: s of that covariance
    z: jax.Array  # shape=(M, d), float: standardised draws


class MultivariateStats(NamedTuple):
    r"""Sufficient statistics of a training set (:class:`~sim.families.base.DataOps`).

    The scatter :math:`\sum_i (x_i - \bar x)(x_i - \bar x)^T = G\,\mathrm{diag}(e^{2t})\,G^T`
    with ``G`` = ``factor`` lower-triangular, each column scaled to largest
    entry 1 (a zero column for a direction the set does not span), and ``t`` =
    ``log_scales`` the columns' log scales (``-inf`` for a zero column; all
    ``-inf`` for fewer than two distinct points).
    """

    count: jax.Array  # shape=(), float: number of points
    mean: jax.Array  # shape=(d,), float: their mean (0 when count is 0)
    factor: jax.Array  # shape=(d, d), float: lower factor G, columns of largest entry 1
    log_scales: jax.Array  # shape=(d,), float: t, the columns' log scales


def real_params(dim: int = 3, dtype=None) -> MultivariateParams:
    """The real distribution N(0, I_d) as generation-0 params."""
    dim = check_int(dim, "dim", 1)
    dtype = dtype or jnp.result_type(float)
    zeros = jnp.zeros((dim,), dtype)
    return MultivariateParams(zeros, jnp.eye(dim, dtype=dtype), zeros, jnp.zeros((), dtype))


def as_sample(x: jax.Array) -> MultivariateSample:
    """Wraps raw data ``x`` (shape ``(M, d)``) so that ``fit`` can take it."""
    x = jnp.asarray(x)
    d = x.shape[-1]
    zeros = jnp.zeros((d,), x.dtype)
    return MultivariateSample(zeros, jnp.eye(d, dtype=x.dtype), zeros, x)


def _lower_from_qr(b: jax.Array) -> jax.Array:
    """The lower factor L with L L^T = b^T b (b of shape (k, d)), nonnegative diagonal."""
    r = jnp.linalg.qr(b, mode="r")[: b.shape[-1]]
    sign = jnp.where(jnp.diagonal(r) < 0, -1.0, 1.0).astype(b.dtype)
    return (r * sign[:, None]).T


def _log_abs(x: jax.Array) -> jax.Array:
    """log|x|, -inf at 0 (no warning, no NaN)."""
    a = jnp.abs(x)
    return jnp.where(a > 0, jnp.log(jnp.where(a > 0, a, 1)), -jnp.inf)


def _finite_or_zero(x: jax.Array) -> jax.Array:
    return jnp.where(jnp.isfinite(x), x, jnp.zeros_like(x))


def graded_product(frame: jax.Array, log_rows: jax.Array, core: jax.Array):
    r"""``(G, t)`` with :math:`G\,\mathrm{diag}(e^t) = T\,\mathrm{diag}(e^{m})\,C`, in range.

    ``T`` = ``frame`` (d x d, bounded entries), ``m`` = ``log_rows`` (may span
    far beyond the float range; ``-inf`` for a null row) and ``C`` = ``core``
    lower-triangular. Column j of the product is :math:`\sum_i T_{:i} e^{m_i}
    C_{ij}`; it is computed as :math:`e^{c_j}\sum_i T_{:i}\,\mathrm{sgn}(C_{ij})
    e^{m_i + \log|C_{ij}| - c_j}` with :math:`c_j = \max_i (m_i + \log|C_{ij}|)`,
    so every exponent is <= 0: an entry far below its column's largest term
    underflows to 0 (a correct rounding) and nothing overflows. The columns
    of ``G`` are then scaled to largest entry 1 (a zero column stays 0 with
    ``t = -inf``).
    """
    log_terms = log_rows[:, None] + _log_abs(core)  # (i, j): m_i + log|C_ij|
    top = jnp.max(log_terms, axis=0)
    top_safe = _finite_or_zero(top)
    terms = jnp.sign(core) * jnp.exp(log_terms - top_safe[None, :])
    x = frame @ terms
    big = jnp.max(jnp.abs(x), axis=0)
    big_safe = jnp.where(big > 0, big, 1)
    g = x / big_safe[None, :]
    t = jnp.where(big > 0, top_safe + jnp.log(big_safe), -jnp.inf)
    return g, t


def _unit_frame(factor: jax.Array) -> jax.Array:
    """A unit lower-triangular frame from a stats factor: its columns over their diagonal,
    and e_j for a column whose diagonal is small against its largest entry (1)."""
    diag = jnp.diagonal(factor)
    ok = diag > 2.0**-10
    d = factor.shape[-1]
    eye = jnp.eye(d, dtype=factor.dtype)
    unit = jnp.tril(factor / jnp.where(ok, diag, 1.0)[None, :], -1) + eye
    return jnp.where(ok[None, :], unit, eye)


def _relative_stats(data: MultivariateSample, weights=None) -> MultivariateStats:
    """Statistics of the points (0/1 ``weights``) computed in standardised coordinates."""
    z = data.z
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
    factor, log_scales = graded_product(data.unit_lower, data.log_scales, r)
    mean = data.loc + data.unit_lower @ (jnp.exp(data.log_scales) * zbar)
    zero = jnp.zeros_like(mean)
    return MultivariateStats(count, jnp.where(count > 0, mean, zero), factor, log_scales)


def merge_stats(a: MultivariateStats, b: MultivariateStats) -> MultivariateStats:
    r"""Statistics of the union of two sets (Chan, Golub & LeVeque 1979).

    .. math::
        n = n_a + n_b,\quad \bar x = \bar x_a + \delta n_b/n,\quad
        S = S_a + S_b + \delta\delta^T n_a n_b / n,\quad \delta = \bar x_b - \bar x_a,

    the three terms added as factors by one QR, in the frame of the larger
    set: with ``T`` unit lower-triangular from that set's factor,
    :math:`T^{-1} S T^{-T} = B^T B` for the stacked rows
    :math:`B = [T^{-1}G_a e^{t_a}, T^{-1}G_b e^{t_b}, \sqrt{n_a n_b/n}\,T^{-1}\delta]^T`.
    In that frame the set's own block is diagonal and the other's is graded
    the same way, so each column of ``B`` is scaled by its largest entry
    (in logs) before the QR and nothing over- or underflows that matters;
    :func:`graded_product` takes the result back out of the frame.
    """
    n = a.count + b.count
    safe = jnp.where(n > 0, n, 1)
    delta = b.mean - a.mean
    mean = jnp.where(n > 0, a.mean + delta * (b.count / safe), 0)
    cross = delta * jnp.sqrt(a.count * b.count / safe)
    frame = jnp.where(a.count >= b.count, _unit_frame(a.factor), _unit_frame(b.factor))
    solve = functools.partial(
        jax.scipy.linalg.solve_triangular, frame, lower=True, unit_diagonal=True
    )
    cross_f = solve(cross)
    cross_top = jnp.max(jnp.abs(cross_f))
    cross_safe = jnp.where(cross_top > 0, cross_top, 1)
    rows = jnp.concatenate([solve(a.factor).T, solve(b.factor).T, (cross_f / cross_safe)[None]])
    log_rows = jnp.concatenate(
        [a.log_scales, b.log_scales, jnp.where(cross_top > 0, jnp.log(cross_safe), -jnp.inf)[None]]
    )
    log_terms = log_rows[:, None] + _log_abs(rows)
    top = _finite_or_zero(jnp.max(log_terms, axis=0))  # each column's largest entry, in logs
    stacked = jnp.sign(rows) * jnp.exp(log_terms - top[None, :])
    lower = _lower_from_qr(stacked)  # T^{-1} S T^{-T} = diag(e^top) L L^T diag(e^top)
    factor, log_scales = graded_product(frame, top, lower)
    merged = MultivariateStats(n, mean, factor, log_scales)
    # the empty set is an exact identity (the QR would round the other factor's last bits)
    merged = jax.tree.map(lambda x, y: jnp.where(b.count > 0, x, y), merged, a)
    return jax.tree.map(lambda x, y: jnp.where(a.count > 0, x, y), merged, b)


def empty_stats(params: MultivariateParams) -> MultivariateStats:
    """The statistics of no data (the identity of :func:`merge_stats`)."""
    zero = jnp.zeros_like(params.log_det)
    return MultivariateStats(
        zero,
        jnp.zeros_like(params.mean),
        jnp.zeros_like(params.unit_lower),
        jnp.full_like(params.log_scales, -jnp.inf),
    )


def sample_stats(key, params: MultivariateParams, n) -> MultivariateStats:
    r"""Statistics of ``n`` draws from ``params``, drawn directly (Bartlett).

    :math:`\bar x = \mu + \Sigma^{1/2} Z / \sqrt n`, :math:`Z \sim N(0, I)`, and
    the scatter :math:`\Sigma^{1/2} A A^T \Sigma^{1/2\,T}` with ``A`` the
    Bartlett factor of :math:`\mathrm{Wishart}_d(n - 1, I)`, independent, and
    :math:`\Sigma^{1/2} = U\,\mathrm{diag}(e^s)`; O(d^2) draws whatever ``n``.
    ``n`` may be traced (a schedule); ``n = 0`` gives the empty statistics.
    """
    dtype = params.log_det.dtype
    d = params.mean.shape[-1]
    count = jnp.asarray(n, dtype)
    z = jax.random.normal(jax.random.fold_in(key, 0), (d,), dtype)
    if is_static(n) and n == 0:
        return empty_stats(params)
    # a static df >= d draws with static gamma shapes; fewer points (a regime's split) are
    # drawn as a traced df: the singular Wishart's factor has its columns j >= df zero
    # (Srivastava 2003), so the normals below a zero diagonal are dropped
    df = n - 1 if is_static(n) and n - 1 >= d else count - 1
    a = _random.bartlett(jax.random.fold_in(key, 1), df, d, dtype)
    lower = jnp.where((a.log_diag > -jnp.inf)[None, :], a.lower, 0)
    root_n = jnp.sqrt(jnp.maximum(count, 1))
    if not is_static(n):
        root_n = jax.lax.optimization_barrier(root_n)  # see gaussian.sample_stats
    mean = params.mean + (params.unit_lower @ (jnp.exp(params.log_scales) * z)) / root_n
    factor, log_scales = graded_product(params.unit_lower, params.log_scales, lower)
    stats = MultivariateStats(count, mean, factor, log_scales)
    return jax.tree.map(lambda e, s: jnp.where(count > 0, s, e), empty_stats(params), stats)


def _points(data: MultivariateSample) -> jax.Array:
    # the coordinates themselves: this regime's range is float's (see the module docstring)
    return data.loc + (data.z * jnp.exp(data.log_scales)) @ data.unit_lower.T


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
      >>> fitted.unit_lower.shape
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
        diag = jnp.diagonal(stats.factor)
        ok = diag > 0
        safe = jnp.where(ok, diag, 1)
        eye = jnp.eye(dim, dtype=stats.factor.dtype)
        unit = jnp.where(ok[None, :], jnp.tril(stats.factor / safe[None, :], -1) + eye, eye)
        log_scales = jnp.where(ok, stats.log_scales + jnp.log(safe), -jnp.inf) - 0.5 * jnp.log(
            stats.count - shift
        )
        return MultivariateParams(stats.mean, unit, log_scales, 2.0 * pairwise_sum(log_scales))

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
        return MultivariateSample(params.mean, params.unit_lower, params.log_scales, z)

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
