r"""Linear regression refitted to its own labels: OLS and ridge (THEORY.md L1, L2).

The model has weights :math:`w \in \mathbb{R}^d` (the params: a plain array of
shape ``(d,)``). A data set is ``n`` rows :math:`(x_i, y_i)` with

.. math::
    x_i \sim N(0, I_d), \qquad y_i = x_i^\top w + \sigma\varepsilon_i, \quad
    \varepsilon_i \sim N(0, 1),

and a fit is ridge regression with an *unscaled* penalty :math:`\lambda \ge 0`
(:math:`\lambda = 0`: ordinary least squares),

.. math::
    \hat w = (X^\top X + \lambda I_d)^{-1} X^\top y,

so it depends on the data only through the additive summary
:math:`(n, X^\top X, X^\top y)` (:class:`RegressionStats`): pooling two sets
adds their summaries, and accumulating every generation's data costs
:math:`O(d^2)` per chain whatever the number of generations. The penalty is
not multiplied by the number of rows: accumulating :math:`t` sets shrinks
less than one, which is the convention of :func:`theory.regression.ridge_test_error`.

Two designs (the conventions of :mod:`theory.regression`):

* ``design="fresh"``: new rows :math:`x_i` every call to ``sample`` (from the
  key); the closed forms average over the design
  (:func:`theory.regression.test_error`, ``design="fresh"``);
* ``design="fixed"``: one design matrix :math:`X` (``num_samples`` :math:`= T`
  rows) drawn once when the family is built, from ``design_seed``
  (:func:`family_design`), shared by every chain and generation; only the
  labels are redrawn. The closed forms are conditional on that :math:`X`
  (:func:`theory.regression.ridge_test_error` with the spectrum of
  :func:`theory.regression.ridge_spectrum`).

Generation 0 is the truth :math:`w^*`; fit 1 sees real labels
:math:`X_1 w^* + \sigma\varepsilon_1`. The recorded test error is the excess
risk for an isotropic test point,
:math:`\mathbb{E}_x[(x^\top w - x^\top w^*)^2] = \lVert w - w^*\rVert^2`
(:func:`sim.families.regression.regression_record`).

Solves. Ridge, and OLS with a fresh design, solve the normal equations by a
Cholesky factorisation (the matrix is positive definite: :math:`\lambda > 0`,
or at least ``d`` continuous rows). OLS with a *fixed* design uses the
minimum-norm solution through ``eigh`` (:func:`min_norm_solve`, about 10x
the cost of Cholesky at d = 10-20), because rows of the shared :math:`X` can
repeat in a training set (accumulate-subsample draws from many copies of
them) and leave :math:`X^\top X` singular although there are more than ``d``
rows; there it gives ``numpy.linalg.lstsq``'s answer instead of NaN.

Sums. ``X^T X``, ``X^T y`` and ``X w`` are matrix products (``einsum``):
measured on CPU, a chain's products are bit-identical in batches of 2 to
4096 chains for ``d >= 2`` (and at least 2 rows). With ``d = 1`` XLA rewrites the degenerate
products into reductions whose order depends on the batch shape, so they are
written as elementwise products and fixed-order pairwise sums instead.

References:
    Dohmatob, E., Feng, Y. & Kempe, J. (2024). Model Collapse Demystified:
    The Case of Regression. arXiv:2402.07712.

    Gerstgrasser, M. et al. (2024). Is Model Collapse Inevitable? Breaking
    the Curse of Recursion by Accumulating Real and Synthetic Data.
    arXiv:2404.01413.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sim._reduce import pairwise_sum
from sim._static import is_static, is_static_equal
from sim._static import label as _label
from sim._validate import check_float, check_int
from sim.families.base import DataOps, Family

DESIGNS = ("fresh", "fixed")


class RegressionData(NamedTuple):
    r"""``n`` rows :math:`(x_i, y_i)`: a design and its labels."""

    x: jax.Array  # shape=(n, d), float: design rows
    y: jax.Array  # shape=(n,), float: labels


class RegressionStats(NamedTuple):
    r"""The additive summary :math:`(n, X^\top X, X^\top y)` of a set of rows."""

    count: jax.Array  # shape=(), float: number of rows n
    gram: jax.Array  # shape=(d, d), float: X^T X
    moment: jax.Array  # shape=(d,), float: X^T y


def _matvec(x: jax.Array, w: jax.Array) -> jax.Array:
    """``x @ w`` for x of shape (n, d), batch-invariant also for d = 1."""
    if x.shape[-1] == 1:
        return x[:, 0] * w[0]
    return jnp.einsum("nd,d->n", x, w)


def _weighted_stats(x: jax.Array, y: jax.Array, count: jax.Array) -> RegressionStats:
    """(count, X^T X, X^T y) with X^T X and X^T y as batch-invariant sums over rows."""
    if x.shape[-1] == 1:
        col = x[:, 0]
        gram = pairwise_sum(col * col)[None, None]
        moment = pairwise_sum(col * y)[None]
    else:
        gram = jnp.einsum("ni,nj->ij", x, x)
        moment = jnp.einsum("ni,n->i", x, y)
    return RegressionStats(count, gram, moment)


def regression_stats(data: RegressionData, weights=None) -> RegressionStats:
    r""":math:`(n, X^\top X, X^\top y)` of a data set (of its rows with 0/1 ``weights``)."""
    if weights is not None:
        return point_stats(data, weights)
    n = data.x.shape[0]
    return _weighted_stats(data.x, data.y, jnp.asarray(n, data.x.dtype))


def point_stats(points: RegressionData, weights) -> RegressionStats:
    r"""The summary of the rows with weights :math:`u_i` (0/1: the kept rows).

    .. math::
        n = \sum_i u_i, \quad G = \sum_i u_i x_i x_i^\top, \quad
        m = \sum_i u_i x_i y_i .

    With 0/1 weights every product :math:`u_i x_i` is exact, so the result is
    the summary of the kept rows (up to the order of the sums).
    """
    x = points.x
    u = jnp.asarray(weights).astype(x.dtype)
    return _weighted_stats(u[:, None] * x, points.y, pairwise_sum(u))


def merge_stats(a: RegressionStats, b: RegressionStats) -> RegressionStats:
    """The summary of the union of two sets: the sum of their summaries."""
    return jax.tree.map(jnp.add, a, b)


def empty_stats(params: jax.Array) -> RegressionStats:
    """The summary of no rows (the identity of :func:`merge_stats`)."""
    w = jnp.asarray(params)
    d = w.shape[-1]
    return RegressionStats(
        jnp.zeros((), w.dtype), jnp.zeros((d, d), w.dtype), jnp.zeros((d,), w.dtype)
    )


def _check_dtype(dtype) -> str:
    dt = jnp.dtype(dtype or jnp.result_type(float))
    if not jnp.issubdtype(dt, jnp.floating):
        raise ValueError(f"dtype={dt.name} must be a floating type")
    return dt.name


def _check_design(design) -> str:
    if design not in DESIGNS:
        raise ValueError(f"design={design!r} is not one of {DESIGNS}")
    return design


@functools.cache
def _design(dim: int, num_samples: int, design_seed: int, dtype: str) -> np.ndarray:
    # Drawn in float32 with threefry (whatever the default PRNG and x64
    # setting), so the float32 and float64 designs are the same numbers. Evaluated
    # now even when a family is built inside a jitted function (a sweep).
    with jax.ensure_compile_time_eval():
        key = jax.random.key(design_seed, impl="threefry2x32")
        x = np.asarray(jax.random.normal(key, (num_samples, dim), jnp.float32)).astype(dtype)
    x.setflags(write=False)
    return x


def family_design(dim: int, num_samples: int, design_seed: int = 0, dtype=None) -> np.ndarray:
    r"""The fixed design :math:`X` (shape ``(T, d)``) of ``regression(..., design="fixed")``.

    Rows :math:`N(0, I_d)`, drawn in float32 from ``design_seed`` (threefry)
    and cast to ``dtype``, so that float32 and float64 runs share the same
    matrix. A read-only NumPy array (cached); pass it to
    :func:`theory.regression.ridge_spectrum` for the conditional closed forms.
    """
    d = check_int(dim, "dim", 1)
    t = check_int(num_samples, "num_samples", 1)
    seed = check_int(design_seed, "design_seed", 0)
    return _design(d, t, seed, _check_dtype(dtype))


def min_norm_solve(gram: jax.Array, moment: jax.Array) -> jax.Array:
    r"""Minimum-norm least squares :math:`G^{+} m` from :math:`G = X^\top X`, :math:`m = X^\top y`.

    With :math:`G = V\operatorname{diag}(\kappa)V^\top` (``eigh``),
    :math:`\hat w = \sum_{\kappa_i > \tau} v_i (v_i^\top m)/\kappa_i`, where
    eigenvalues at or below :math:`\tau = d\,\epsilon\,\kappa_{\max}` (the
    rank tolerance of ``numpy.linalg.matrix_rank``) count as 0. This is the OLS
    fit when :math:`G` is invertible and ``numpy.linalg.lstsq``'s answer when
    it is not.
    """
    d = gram.shape[-1]
    if d == 1:
        g = gram[0, 0]
        return jnp.where(g > 0, moment / jnp.where(g > 0, g, 1), 0)
    evals, evecs = jnp.linalg.eigh(gram)
    tol = d * jnp.finfo(gram.dtype).eps * jnp.maximum(evals[-1], 0)
    keep = evals > tol
    coef = jnp.einsum("ij,i->j", evecs, moment)
    coef = jnp.where(keep, coef / jnp.where(keep, evals, 1), 0)
    return jnp.einsum("ij,j->i", evecs, coef)


def check_sizes(dim: int, num_samples: int, ridge: float) -> tuple[int, int]:
    """(d, T) after checking that a fit to T rows exists (OLS needs T > d)."""
    d = check_int(dim, "dim", 1)
    t = check_int(num_samples, "num_samples", 1)
    if ridge == 0 and d >= t:
        raise ValueError(
            f"OLS (ridge=0) needs more rows than weights: got dim={d} >= num_samples={t} "
            "(X^T X is singular); use num_samples > dim or ridge > 0"
        )
    return d, t


def regression(
    dim: int,
    num_samples: int,
    noise: float,
    ridge: float = 0.0,
    design: str = "fresh",
    design_seed: int = 0,
    dtype=None,
) -> Family:
    r"""The linear-regression family with Gaussian rows, ``noise`` and a ``ridge`` penalty.

    Cached on its validated settings, so equal settings give the same
    (hashable) functions and one compilation; the implementation is
    :func:`regression_family` (uncached, ``noise`` and ``ridge`` may be traced).

    Args:
      dim: :math:`d \ge 1`, the number of weights.
      num_samples: :math:`T \ge 1`, rows per training set; with
        ``ridge=0`` it must exceed ``dim``. With a fixed design it is the
        number of rows of :math:`X`, and ``sample`` draws exactly ``T`` rows.
      noise: :math:`\sigma \ge 0`, the label-noise standard deviation.
      ridge: :math:`\lambda \ge 0`, the (unscaled) ridge penalty; 0 is OLS.
      design: ``"fresh"`` (new rows every draw) or ``"fixed"`` (one shared
        :math:`X`, :func:`family_design`).
      design_seed: the seed of the fixed design (ignored for ``"fresh"``).
      dtype: float type of the data and weights (default: JAX's default
        float); it must match the chain's generation-0 weights.

    Returns:
      A :class:`~sim.families.base.Family` whose params are weight vectors
      (shape ``(d,)``), whose data are :class:`RegressionData` and whose
      :class:`~sim.families.base.DataOps` summarise a set by
      :class:`RegressionStats` (with ``points`` and ``point_stats`` for
      stored pools).

    Raises:
      ValueError: naming the bad setting (also OLS with ``dim >= num_samples``).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> fam = regression(3, 20, noise=0.5)
      >>> data = fam.sample(jax.random.key(0), jnp.ones(3), 20)
      >>> w = fam.fit(None, data)  # OLS estimate near (1, 1, 1)
    """
    noise = check_float(noise, "noise", nonnegative=True)
    ridge = check_float(ridge, "ridge", nonnegative=True)
    d, t = check_sizes(dim, num_samples, ridge)
    design = _check_design(design)
    seed = check_int(design_seed, "design_seed", 0) if design == "fixed" else 0
    return _regression(d, t, noise, ridge, design, seed, _check_dtype(dtype))


@functools.cache
def _regression(
    d: int, t: int, noise: float, ridge: float, design: str, seed: int, dtype: str
) -> Family:
    return regression_family(d, t, noise, ridge, design, seed, dtype)


def regression_family(
    dim: int,
    num_samples: int,
    noise,
    ridge=0.0,
    design: str = "fresh",
    design_seed: int = 0,
    dtype=None,
) -> Family:
    r"""The family of :func:`regression`, uncached, for static or traced ``noise`` and ``ridge``.

    ``noise`` and ``ridge`` may be traced (per-lane scalars of a parameter
    sweep under ``vmap``); ``dim``, ``num_samples``, ``design``,
    ``design_seed`` and ``dtype`` are static. Static values are not validated
    here (:func:`regression` does). A Python noise of 0 draws no noise; a
    traced noise always draws it (and multiplies it by 0 there). A traced
    ridge with the fixed design computes both solves and takes the
    minimum-norm OLS fit where ``ridge == 0``, the ridge fit elsewhere;
    ``ops.min_count`` is then traced (``dim`` where ``ridge == 0``, else 1),
    so the family is not hashable. A traced ridge of 0 with a fresh design
    and ``dim >= num_samples`` fits NaN (singular normal equations), which
    :func:`regression` refuses for static values.
    """
    d, t = int(dim), int(num_samples)
    dtype = _check_dtype(dtype)
    design = _check_design(design)
    seed = int(design_seed) if design == "fixed" else 0
    fixed_x = _design(d, t, seed, dtype) if design == "fixed" else None
    static_ridge = is_static(ridge)
    if not static_ridge:
        ridge = jnp.asarray(ridge, dtype)
    noise_off = is_static_equal(noise, 0)
    if not is_static(noise):
        noise = jnp.asarray(noise, dtype)

    def ridge_solve(stats: RegressionStats) -> jax.Array:
        a = stats.gram + ridge * jnp.eye(d, dtype=stats.gram.dtype)
        factor = jax.scipy.linalg.cho_factor(a, lower=True)
        return jax.scipy.linalg.cho_solve(factor, stats.moment)

    def fit_stats(key, stats: RegressionStats) -> jax.Array:
        del key  # closed-form fit
        if design != "fixed":
            return ridge_solve(stats)
        if static_ridge:
            if ridge == 0:
                return min_norm_solve(stats.gram, stats.moment)
            return ridge_solve(stats)
        return jnp.where(ridge == 0, min_norm_solve(stats.gram, stats.moment), ridge_solve(stats))

    def fit(key, data: RegressionData) -> jax.Array:
        return fit_stats(key, regression_stats(data))

    def sample(key, params: jax.Array, n: int) -> RegressionData:
        w = jnp.asarray(params)
        if w.shape != (d,):
            raise ValueError(f"params must be a weight vector of shape ({d},); got {w.shape}")
        k_x, k_noise = jax.random.split(key)
        if fixed_x is not None:
            if n != t:
                raise ValueError(
                    f"a fixed design has num_samples={t} rows; cannot draw n={n} of them"
                )
            x = jnp.asarray(fixed_x)
        else:
            x = jax.random.normal(k_x, (n, d), w.dtype)
        y = _matvec(x, w)
        if not noise_off:
            y = y + noise * jax.random.normal(k_noise, (n,), w.dtype)
        return RegressionData(x, y)

    if static_ridge:
        min_count = d if ridge == 0 else 1
    else:
        min_count = jnp.where(ridge == 0, d, 1)
    ops = DataOps(
        stats=regression_stats,
        merge=merge_stats,
        fit_stats=fit_stats,
        count=lambda s: s.count,
        empty=empty_stats,
        min_count=min_count,
        points=lambda data: data,
        point_stats=point_stats,
    )
    where = f"fixed{seed}" if design == "fixed" else "fresh"
    name = f"regression(d={d},T={t},sigma={_label(noise)},lambda={_label(ridge)},{where},{dtype})"
    return Family(fit=fit, sample=sample, name=name, ops=ops)
