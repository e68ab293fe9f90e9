r"""Gaussian mixtures fitted by EM: K full-covariance components in d dimensions.

Each generation fits the mixture

.. math::
    p(x) = \sum_{k=1}^K \pi_k\, N(x; \mu_k, \Sigma_k)

to M points drawn from the previous fit by expectation-maximisation
(Dempster, Laird & Rubin 1977), the setting of Shumailov et al. (Nature 2024,
"AI models collapse when trained on recursively generated data", the GMM
example). One EM iteration, on points :math:`x_i` with 0/1 weights
:math:`w_i` (a regime's kept points) and :math:`N = \sum_i w_i`:

.. math::
    r_{ik} = \frac{\pi_k N(x_i; \mu_k, \Sigma_k)}{\sum_j \pi_j N(x_i; \mu_j, \Sigma_j)},\quad
    N_k = \sum_i w_i r_{ik},\quad \pi_k = N_k / N,\quad
    \mu_k = \frac{1}{N_k}\sum_i w_i r_{ik} x_i,\quad
    \Sigma_k = \frac{1}{N_k}\sum_i w_i r_{ik} (x_i - \mu_k)(x_i - \mu_k)^T.

Choices:

* Full covariance in every dimension (d = 1 is the scalar case); each
  :math:`\Sigma_k` is factorised by a Cholesky per E-step.
* The fit starts from the previous generation's fit, as the multivariate
  family fits relative to its previous factor: ``sample`` returns a
  :class:`GmmSample` holding the points *and* the params they were drawn from,
  and EM is initialised there (a warm start: the chain's components keep their
  identity from one generation to the next). Points without a model (a stored
  pool of accumulate-subsample, :attr:`DataOps.point_stats`) start from a
  deterministic split of the points into K groups of equal weight by their
  first coordinate.
* Iterations: at most ``max_steps``; with ``tol > 0`` EM stops as soon as the
  mean log-likelihood per point changes by less than ``tol`` (a
  ``lax.while_loop``; ``tol = 0`` runs exactly ``max_steps``). The fit's
  :class:`GmmInfo` records the iterations used, the final mean
  log-likelihood (of the returned params) and how many components sit at each
  floor.
* Degenerate components. A component with no responsibility left
  (:math:`N_k \le N\epsilon`, :math:`\epsilon` the dtype's epsilon) keeps its
  previous mean and covariance. Weight floor: weights below ``weight_floor``
  are set to it and the others scaled to fill the rest (so ``K weight_floor
  < 1``). Covariance floor: a covariance whose smallest eigenvalue is below
  ``cov_floor`` is raised by :math:`(\text{cov\_floor} - \lambda_{min}) I`.
  Both act after every M-step; how many components each holds in the returned
  fit is recorded.
* With K = 1 the E-step gives every point responsibility 1 and the first
  M-step is the Gaussian MLE (mean, covariance divided by M) whatever the
  start: the chain is the multivariate (d = 1: the 1-D) Gaussian MLE chain
  (THEORY.md G3, W2), tested in ``tests/test_gmm.py``.
* Sums over points use :func:`sim._reduce.pairwise_sum` (a fixed order), so a
  chain's numbers do not depend on its batch; sums over components and
  coordinates are unrolled.

Regimes. There is no finite sufficient statistic for EM: a summary
(:class:`GmmStats`) is the points themselves with their 0/1 weights and the
params to start from; ``merge`` concatenates. Replace and fresh real data
(static counts) therefore work; accumulate and anchored would need a summary
of fixed shape (the spec refuses them), accumulate-subsample works through the
engine's stored pool of points. No exact path exists (no ``sample_stats``).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from sim._reduce import pairwise_sum
from sim._static import is_static
from sim._validate import check_float, check_int
from sim.families.base import DataOps, Family


class GmmParams(NamedTuple):
    r"""A fitted mixture :math:`\sum_k \pi_k N(\mu_k, \Sigma_k)`."""

    weights: jax.Array  # shape=(K,), float: pi_k, sum 1
    means: jax.Array  # shape=(K, d), float: mu_k
    covs: jax.Array  # shape=(K, d, d), float: Sigma_k, symmetric positive definite


class GmmSample(NamedTuple):
    """Points drawn from a mixture, with the mixture they came from (EM's start)."""

    points: jax.Array  # shape=(n, d), float
    init: GmmParams  # the params the points were drawn from


class GmmStats(NamedTuple):
    """A training set for EM (:class:`~sim.families.base.DataOps`): its points."""

    points: jax.Array  # shape=(n, d), float
    weights: jax.Array  # shape=(n,), float: 1 for a point in the set, 0 otherwise
    init: GmmParams  # where EM starts


class GmmInfo(NamedTuple):
    """Diagnostics of one EM fit (per generation, recorded beside the params)."""

    iterations: jax.Array  # shape=(), int32: EM iterations run
    log_likelihood: jax.Array  # shape=(), float: mean log-likelihood per point, final params
    ll_change: jax.Array  # shape=(), float: the last iteration's change of log_likelihood
    weight_floored: jax.Array  # shape=(), float: components held at the weight floor
    cov_floored: jax.Array  # shape=(), float: components whose covariance was floored


def real_params(components: int = 2, dim: int = 1, separation: float = 4.0, dtype=None):
    r"""The real mixture: equal weights, identity covariances, means on the first axis.

    :math:`\mu_k = s\,(k - (K-1)/2)\, e_1` for :math:`k = 0..K-1`, so two
    components sit at :math:`\pm s/2`; with K = 1 the real distribution is
    :math:`N(0, I_d)`.
    """
    k = check_int(components, "components", 1)
    d = check_int(dim, "dim", 1)
    s = check_float(separation, "separation", nonnegative=True)
    dtype = dtype or jnp.result_type(float)
    offsets = (jnp.arange(k, dtype=dtype) - (k - 1) / 2) * s
    means = jnp.zeros((k, d), dtype).at[:, 0].set(offsets)
    covs = jnp.broadcast_to(jnp.eye(d, dtype=dtype), (k, d, d))
    return GmmParams(jnp.full((k,), 1.0 / k, dtype), means, covs)


def as_sample(points, init: GmmParams) -> GmmSample:
    """Wraps raw points (shape ``(n, d)``) with the params EM should start from."""
    return GmmSample(jnp.asarray(points), init)


# ----------------------------------------------------------------------- the algebra


def _sum_over(xs):
    """Adds a Python list of arrays left to right (an unrolled, fixed-order sum)."""
    return functools.reduce(lambda a, b: a + b, xs)


def component_log_density(xt, mean, chol):
    r"""log N(x_i; mu, L L^T) for the columns of ``xt`` (shape ``(d, n)``).

    Forward substitution :math:`L y = x - \mu`, unrolled over d;
    :math:`\log N = -\tfrac12 |y|^2 - \sum_j \log L_{jj} - \tfrac d2 \log 2\pi`.
    """
    d = xt.shape[0]
    diff = xt - mean[:, None]
    ys = []
    for j in range(d):
        acc = diff[j]
        for i in range(j):
            acc = acc - chol[j, i] * ys[i]
        ys.append(acc / chol[j, j])
    quad = _sum_over([y * y for y in ys])
    log_diag = _sum_over([jnp.log(chol[j, j]) for j in range(d)])
    return -0.5 * quad - log_diag - 0.5 * d * math.log(2 * math.pi)


# Up to this dimension Cholesky factors are computed by unrolled scalar formulas
# (a batched LAPACK call per 2 x 2 matrix measured 5x slower than the E-step's own work).
UNROLL_DIM = 4


def cholesky(covs):
    """Lower Cholesky factors of ``covs`` (shape ``(..., d, d)``); unrolled for small d."""
    d = covs.shape[-1]
    if d > UNROLL_DIM:
        return jnp.linalg.cholesky(covs)
    low = [[None] * d for _ in range(d)]
    for j in range(d):
        acc = covs[..., j, j]
        for k in range(j):
            acc = acc - low[j][k] * low[j][k]
        low[j][j] = jnp.sqrt(acc)
        for i in range(j + 1, d):
            acc = covs[..., i, j]
            for k in range(j):
                acc = acc - low[i][k] * low[j][k]
            low[i][j] = acc / low[j][j]
    zero = jnp.zeros_like(covs[..., 0, 0])
    rows = [jnp.stack([low[i][j] if j <= i else zero for j in range(d)], -1) for i in range(d)]
    return jnp.stack(rows, -2)


def _smallest_eigenvalue(cov):
    d = cov.shape[-1]
    if d == 1:
        return cov[0, 0]
    if d == 2:
        a, b, c = cov[0, 0], cov[0, 1], cov[1, 1]
        half = 0.5 * (a - c)
        return 0.5 * (a + c) - jnp.sqrt(half * half + b * b)
    return jnp.linalg.eigvalsh(cov)[0]


def _e_step(xt, w, total, params: GmmParams):
    """(responsibilities (K, n), mean log-likelihood per point): K exponentials and one
    logarithm per point."""
    k = params.weights.shape[0]
    chol = cholesky(params.covs)
    logp = [
        jnp.log(params.weights[j]) + component_log_density(xt, params.means[j], chol[j])
        for j in range(k)
    ]
    top = functools.reduce(jnp.maximum, logp)
    top = jnp.where(jnp.isfinite(top), top, 0.0)
    e = [jnp.exp(lp - top) for lp in logp]
    s = _sum_over(e)
    inv = 1.0 / s
    resp = jnp.stack([ej * inv for ej in e])
    ll = pairwise_sum(w * (top + jnp.log(s))) / total
    return resp, ll


def _m_step(xt, w, total, resp, old: GmmParams, cov_floor, weight_floor):
    """The M-step with the floors: (params, weight_floored, cov_floored)."""
    d = xt.shape[0]
    dtype = xt.dtype
    wr = w * resp  # (K, n)
    nk = pairwise_sum(wr)  # (K,)
    alive = nk > total * jnp.finfo(dtype).eps
    safe = jnp.where(alive, nk, 1.0)
    means = jnp.stack([pairwise_sum(wr * xt[a]) for a in range(d)], -1) / safe[:, None]
    diff = [xt[a] - means[:, a, None] for a in range(d)]  # d of (K, n)
    entry = {}
    for a in range(d):  # the two-pass scatter, its upper triangle only
        for b in range(a, d):
            entry[a, b] = entry[b, a] = pairwise_sum(wr * diff[a] * diff[b]) / safe
    covs = jnp.stack([jnp.stack([entry[a, b] for b in range(d)], -1) for a in range(d)], -2)
    means = jnp.where(alive[:, None], means, old.means)
    covs = jnp.where(alive[:, None, None], covs, old.covs)
    lam = jax.vmap(_smallest_eigenvalue)(covs)
    cov_low = lam < cov_floor
    raise_by = jnp.where(cov_low, cov_floor - lam, 0.0)
    covs = covs + raise_by[:, None, None] * jnp.eye(d, dtype=dtype)
    weights = nk / total
    low = weights < weight_floor
    n_low = pairwise_sum(low.astype(dtype))
    rest = pairwise_sum(jnp.where(low, 0.0, weights))
    scale = (1.0 - n_low * weight_floor) / jnp.where(rest > 0, rest, 1.0)
    weights = jnp.where(low, jnp.asarray(weight_floor, dtype), weights * scale)
    return GmmParams(weights, means, covs), n_low, pairwise_sum(cov_low.astype(dtype))


def em(points, weights, init: GmmParams, *, max_steps: int, tol, cov_floor, weight_floor):
    """EM from ``init`` on ``points`` (shape ``(n, d)``) with 0/1 ``weights``.

    Args:
      points, weights: the training set.
      init: the params to start from.
      max_steps: the most iterations (static).
      tol: stop when the mean log-likelihood per point changes by less than
        ``tol`` (0: run exactly ``max_steps``); may be traced.
      cov_floor, weight_floor: the floors (module docstring); may be traced.

    Returns:
      ``(params, GmmInfo)``.
    """
    xt = points.T
    dtype = xt.dtype
    w = weights.astype(dtype)
    total = pairwise_sum(w)
    tol = jnp.asarray(tol, dtype)
    resp, ll = _e_step(xt, w, total, init)
    zero = jnp.zeros((), dtype)

    def cond(carry):
        it, _, _, _, delta, _, _ = carry
        return (it < max_steps) & ~(jnp.abs(delta) < tol)

    def body(carry):
        it, params, resp, ll, _, _, _ = carry
        new, n_w, n_c = _m_step(xt, w, total, resp, params, cov_floor, weight_floor)
        resp, ll_new = _e_step(xt, w, total, new)
        return it + 1, new, resp, ll_new, ll_new - ll, n_w, n_c

    carry = (jnp.zeros((), jnp.int32), init, resp, ll, jnp.asarray(jnp.inf, dtype), zero, zero)
    it, params, _, ll, delta, n_w, n_c = jax.lax.while_loop(cond, body, carry)
    return params, GmmInfo(it, ll, delta, n_w, n_c)


def split_init(points, weights, components: int) -> GmmParams:
    """A start for EM from points alone: K groups of equal weight by the first coordinate.

    The kept points (``weights`` 1) sorted by their first coordinate are cut
    into K consecutive groups of equal count (a point straddling a cut goes to
    the group holding its middle), and each group's share, mean and covariance
    (plus the identity times the dtype's epsilon, so that it factorises) start EM.
    """
    xt = points.T
    dtype = xt.dtype
    w = weights.astype(dtype)
    total = pairwise_sum(w)
    key = jnp.where(w > 0, xt[0], jnp.inf)
    order = jnp.argsort(key)
    ws = w[order]
    rank = jnp.cumsum(ws) - 0.5 * ws
    group_sorted = jnp.clip(jnp.floor(components * rank / total), 0, components - 1)
    group = jnp.zeros_like(group_sorted).at[order].set(group_sorted)
    resp = jnp.stack([(group == k).astype(dtype) for k in range(components)])
    d = xt.shape[0]
    old = GmmParams(
        jnp.full((components,), 1.0 / components, dtype),
        jnp.zeros((components, d), dtype),
        jnp.broadcast_to(jnp.eye(d, dtype=dtype), (components, d, d)),
    )
    eps = jnp.finfo(dtype).eps
    params, _, _ = _m_step(xt, w, total, resp, old, eps, 0.0)
    return params


def mixture_inner(a: GmmParams, b: GmmParams):
    r"""The overlap of two mixture densities, :math:`\int f_a f_b\,dx`.

    .. math::
        \int f_a f_b\,dx = \sum_{i,j} \pi^a_i \pi^b_j\,
        N(\mu^a_i; \mu^b_j, \Sigma^a_i + \Sigma^b_j).

    The overlap integral of two Gaussians is a Gaussian density at the
    difference of the means (e.g. Petersen & Pedersen, *The Matrix Cookbook*,
    eq. 371: the product of two Gaussian densities).
    """

    def pair(mi, ci, mj, cj):
        chol = cholesky(ci + cj)
        return component_log_density((mi - mj)[:, None], jnp.zeros_like(mi), chol)[0]

    logs = jax.vmap(lambda mi, ci: jax.vmap(lambda mj, cj: pair(mi, ci, mj, cj))(b.means, b.covs))(
        a.means, a.covs
    )
    terms = a.weights[:, None] * b.weights[None, :] * jnp.exp(logs)
    return _sum_over([terms[i, j] for i in range(terms.shape[0]) for j in range(terms.shape[1])])


def l2_distance(a: GmmParams, b: GmmParams):
    r"""The L2 distance between two mixture densities, in closed form.

    .. math::
        \|f_a - f_b\|_2 = \Big(\int f_a^2 + \int f_b^2 - 2\int f_a f_b\Big)^{1/2},

    each integral a sum of Gaussian overlap integrals (:func:`mixture_inner`);
    the metric of Shumailov et al. (2024) for their GMM example. Rounding can
    make the bracket slightly negative for near-equal mixtures: it is clipped at 0.
    """
    sq = mixture_inner(a, a) + mixture_inner(b, b) - 2.0 * mixture_inner(a, b)
    return jnp.sqrt(jnp.maximum(sq, 0.0))


def sample(key, params: GmmParams, n: int) -> GmmSample:
    """``n`` points: component labels by inverting the weights' CDF at uniforms, then
    ``mu_k + L_k z`` with ``z ~ N(0, I)``; the sample keeps ``params`` (EM's start)."""
    k_lab, k_z = jax.random.split(key)
    dtype = params.weights.dtype
    k = params.weights.shape[0]
    d = params.means.shape[-1]
    u = jax.random.uniform(k_lab, (n,), dtype)
    cw = jnp.cumsum(params.weights)
    cw = cw / cw[-1]
    label = _sum_over([(u >= cw[j]).astype(jnp.int32) for j in range(k - 1)] or [0 * (u > 0)])
    z = jax.random.normal(k_z, (n, d), dtype)
    chol = cholesky(params.covs)
    lz = jnp.einsum("nij,nj->ni", chol[label], z)
    return GmmSample(params.means[label] + lz, params)


# ------------------------------------------------------------------------ the family


def check_floors(components: int, cov_floor, weight_floor) -> None:
    """Static floors must be > 0, and K weight_floor < 1 (the weights must sum to 1)."""
    if is_static(cov_floor):
        check_float(cov_floor, "cov_floor", positive=True)
    if is_static(weight_floor):
        wf = check_float(weight_floor, "weight_floor", positive=True)
        if components * wf >= 1:
            raise ValueError(
                f"weight_floor={wf:g} must be < 1/components = {1 / components:g} "
                "(K floored weights must leave mass for the others)"
            )


@functools.cache
def gmm(
    components: int = 2,
    dim: int = 1,
    max_steps: int = 20,
    tol: float = 1e-5,
    cov_floor: float = 1e-6,
    weight_floor: float = 1e-6,
) -> Family:
    """The Gaussian-mixture family fitted by EM (cached, validated).

    Args:
      components: K >= 1.
      dim: d >= 1.
      max_steps: the most EM iterations per fit (>= 1).
      tol: the stopping tolerance on the mean log-likelihood per point (>= 0;
        0 runs ``max_steps`` iterations).
      cov_floor: the smallest eigenvalue a covariance may have (> 0).
      weight_floor: the smallest weight (> 0, < 1/K).

    Returns:
      A :class:`~sim.families.base.Family` whose params are :class:`GmmParams`,
      whose data are :class:`GmmSample` and whose fits report :class:`GmmInfo`.

    Example:
      >>> import jax
      >>> fam = gmm(2, 1)
      >>> data = fam.sample(jax.random.key(0), real_params(2, 1), 200)
      >>> fitted, info = fam.fit_info(jax.random.key(1), data)
      >>> fitted.means.shape
      (2, 1)
    """
    k = check_int(components, "components", 1)
    d = check_int(dim, "dim", 1)
    steps = check_int(max_steps, "max_steps", 1)
    tol = check_float(tol, "tol", nonnegative=True)
    check_floors(k, cov_floor, weight_floor)
    return gmm_family(k, d, steps, tol, float(cov_floor), float(weight_floor))


def gmm_family(components: int, dim: int, max_steps: int, tol, cov_floor, weight_floor) -> Family:
    """Uncached :func:`gmm`: ``tol`` and the floors may be traced (per-lane settings)."""

    def stats(data: GmmSample, weights=None) -> GmmStats:
        x = data.points
        w = jnp.ones(x.shape[:1], x.dtype) if weights is None else weights.astype(x.dtype)
        return GmmStats(x, w, data.init)

    def merge(a: GmmStats, b: GmmStats) -> GmmStats:
        has_b = pairwise_sum(b.weights) > 0 if b.weights.shape[0] else False
        init = jax.tree.map(lambda x, y: jnp.where(has_b, x, y), b.init, a.init)
        return GmmStats(
            jnp.concatenate([a.points, b.points]), jnp.concatenate([a.weights, b.weights]), init
        )

    def empty(params: GmmParams) -> GmmStats:
        dtype = params.weights.dtype
        return GmmStats(jnp.zeros((0, dim), dtype), jnp.zeros((0,), dtype), params)

    def count(s: GmmStats):
        if s.weights.shape[0] == 0:
            return jnp.zeros((), s.weights.dtype)
        return pairwise_sum(s.weights)

    def fit_stats_info(key, s: GmmStats):
        del key  # EM is deterministic given its start
        return em(
            s.points,
            s.weights,
            s.init,
            max_steps=max_steps,
            tol=tol,
            cov_floor=cov_floor,
            weight_floor=weight_floor,
        )

    def fit_stats(key, s: GmmStats) -> GmmParams:
        return fit_stats_info(key, s)[0]

    def fit_info(key, data: GmmSample):
        n = data.points.shape[0]
        if n < components:
            raise ValueError(f"cannot fit {components} components to sample_size={n} points")
        return fit_stats_info(key, stats(data))

    def point_stats(points, weights) -> GmmStats:
        init = split_init(points, weights, components)
        return GmmStats(points, weights.astype(points.dtype), init)

    ops = DataOps(
        stats=stats,
        merge=merge,
        fit_stats=fit_stats,
        count=count,
        empty=empty,
        min_count=components * (dim + 1),
        points=lambda data: data.points,
        point_stats=point_stats,
        fit_stats_info=fit_stats_info,
    )
    return Family(
        fit=lambda key, data: fit_info(key, data)[0],
        sample=sample,
        name=f"gmm{components}x{dim}d",
        ops=ops,
        fit_info=fit_info,
    )
