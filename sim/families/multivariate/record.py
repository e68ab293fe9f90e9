r"""What a multivariate Gaussian chain records per generation (real distribution N(0, I_d)).

With :math:`\Sigma_n = U\,\mathrm{diag}(e^{2s})\,U^T` and :math:`\sigma_i` the
singular values of :math:`U\,\mathrm{diag}(e^{s})` (so :math:`\sigma_i^2` are
the eigenvalues of :math:`\Sigma_n` and :math:`\sigma_i` those of
:math:`\Sigma_n^{1/2}`):

* ``log_det`` :math:`\log\det\Sigma_n = 2\sum_i s_i` (THEORY.md W2);
* ``trace`` :math:`\operatorname{tr}\Sigma_n = \sum_j e^{2 s_j}\sum_i U_{ij}^2` (W1);
* ``mean_sq_error`` :math:`\|\mu_n - \mu_0\|^2` (W1), :math:`\mu_0 = 0`;
* ``eigenvalues`` of :math:`\Sigma_n`, ascending, shape ``(d,)``
  (:func:`log_eigenvalues` exponentiated: those below the float range are 0);
* ``w2_squared`` :math:`W_2^2(N(\mu_n, \Sigma_n), N(0, I)) = \|\mu_n\|^2 +
  \operatorname{tr}\Sigma_n + d - 2\operatorname{tr}\Sigma_n^{1/2} =
  \|\mu_n\|^2 + \sum_i (\sigma_i - 1)^2` (the sum of squares: no cancellation).

The spectrum of a long chain spans far more than the float range (at d = 100,
M = 316 its log-eigenvalues span about 380 after 1,000 generations: float32
holds about 190), so :func:`log_eigenvalues` never forms the factor in one
scale; see its docstring.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sim._reduce import pairwise_sum
from sim.families.multivariate.family import MultivariateParams, graded_product

LR_STEPS = 4  # graded LR (QR) steps before the spectrum is split (see log_singular_values)
SPLIT_GAP = 2.0  # a split across this many e-folds costs ~(e^{-2 LR_STEPS SPLIT_GAP})^2 relative


class MultivariateRecord(NamedTuple):
    """Per-chain, per-generation summaries of a multivariate chain (all float)."""

    log_det: jax.Array  # shape=(), log det Sigma_n
    trace: jax.Array  # shape=(), tr Sigma_n
    mean_sq_error: jax.Array  # shape=(), ||mu_n - mu_0||^2
    eigenvalues: jax.Array  # shape=(d,), eigenvalues of Sigma_n, ascending
    w2_squared: jax.Array  # shape=(), W2^2 to N(0, I_d)


def _lr_step(unit, log_scales):
    r"""One zero-shift QR step on :math:`L = U\,\mathrm{diag}(e^s)`, kept graded.

    :math:`U = Q R` gives :math:`L = Q\,R\,\mathrm{diag}(e^s)`, whose singular values
    are those of :math:`\mathrm{diag}(e^s) R^T` (lower): that product, graded again.
    The coupling between directions i, j shrinks by :math:`(\sigma_i/\sigma_j)^2`.
    """
    d = unit.shape[-1]
    r = jnp.linalg.qr(unit, mode="r")
    r = r * jnp.where(jnp.diagonal(r) < 0, -1.0, 1.0).astype(r.dtype)[:, None]
    g, t = graded_product(jnp.eye(d, dtype=unit.dtype), log_scales, r.T)
    diag = jnp.diagonal(g)
    ok = diag > 0
    safe = jnp.where(ok, diag, 1)
    eye = jnp.eye(d, dtype=unit.dtype)
    new_unit = jnp.where(ok[None, :], jnp.tril(g / safe[None, :], -1) + eye, eye)
    return new_unit, jnp.where(ok, t + jnp.log(safe), -jnp.inf)


def _fit_span(dtype) -> float:
    """How many e-folds of singular values one scaled SVD resolves: half the float range
    below 1 (float32: 43; float64: 354), so that squares inside the SVD stay normal."""
    return 0.5 * float(-np.log(np.finfo(dtype).tiny))


def log_singular_values(unit: jax.Array, log_scales: jax.Array) -> jax.Array:
    r"""log of the singular values of :math:`U\,\mathrm{diag}(e^{s})`, descending.

    Never forms the matrix in one scale. First :data:`LR_STEPS` zero-shift QR
    steps in graded form (:func:`_lr_step`: each an O(d^3) QR of the unit
    factor) decouple directions whose scales differ and order them. Then the
    spectrum is taken in blocks of columns ``[p, q)``: the singular values of
    the columns ``p..q-1`` restricted to rows ``>= p`` (the trailing block's
    leading columns; by the Schur complement, the directions before ``p`` are
    larger and those from ``q`` on smaller, and each split costs a relative
    error of the order of the squared coupling across it), by an SVD scaled
    to the block's largest column, where the block's scales span at most
    :func:`_fit_span` e-folds; each split is placed at the largest gap of
    scales among the columns in reach. LAPACK's SVD of such a graded block
    resolves its small singular values to relative accuracy (measured against
    float64 at d = 100: 2e-13 in log over a span of 190). One block (one SVD,
    exact but for rounding) whenever the whole spectrum fits, as it does for
    every chain until the scales have spread over the float range.
    """
    d = unit.shape[-1]
    dtype = unit.dtype
    for _ in range(LR_STEPS):
        unit, log_scales = _lr_step(unit, log_scales)
    span = _fit_span(dtype)
    idx = jnp.arange(d)
    neg = jnp.asarray(-jnp.inf, dtype)

    def block(state):
        p, out = state
        tail = idx >= p
        s_tail = jnp.where(tail, log_scales, neg)
        top = jnp.max(s_tail)
        top = jnp.where(jnp.isfinite(top), top, 0)
        # candidate ends q in (p, d]: every column in [p, q) within `span` of the top;
        # gap(q) = min s over [p, q) - max s over [q, d)
        lead_min = jax.lax.cummin(jnp.where(tail, log_scales, jnp.inf))  # min over [p, j]
        rest_max = jax.lax.cummax(jnp.where(tail, log_scales, neg), reverse=True)  # over [j, d)
        q_idx = idx + 1  # candidate end q = j + 1 for column j
        rest_after = jnp.concatenate([rest_max[1:], jnp.full((1,), neg)])  # max over [q, d)
        fits = tail & (lead_min >= top - span)
        gap = jnp.where(fits, lead_min - rest_after, neg)
        all_fit = jnp.all(jnp.where(tail, log_scales >= top - span, True))
        # the last end whose gap is wide enough (the largest block), else the widest gap
        good = gap >= SPLIT_GAP
        last_good = jnp.max(jnp.where(good, q_idx, 0))
        widest = q_idx[jnp.argmax(gap)]
        q = jnp.where(all_fit, d, jnp.maximum(jnp.where(last_good > 0, last_good, widest), p + 1))
        cols = tail & (idx < q)
        scaled = jnp.where(
            tail[:, None] & cols[None, :],
            unit * jnp.exp(jnp.where(cols, log_scales - top, neg))[None, :],
            0,
        )
        sv = jnp.linalg.svd(scaled, compute_uv=False)  # descending; q - p nonzero
        log_sv = jnp.where(sv > 0, jnp.log(jnp.where(sv > 0, sv, 1)), neg) + top
        # the block's k-th largest goes to slot p + k, k < q - p
        k = idx - p
        take = jnp.clip(k, 0, d - 1)
        out = jnp.where(cols, log_sv[take], out)
        return q, out

    _, out = jax.lax.while_loop(
        lambda st: st[0] < d, block, (jnp.asarray(0, idx.dtype), jnp.full((d,), neg))
    )
    return jnp.sort(out)[::-1]


def log_eigenvalues(params: MultivariateParams) -> jax.Array:
    r"""log eigenvalues of :math:`\Sigma_n`, ascending, shape ``(d,)``, in range
    however far the spectrum has spread (:func:`log_singular_values`)."""
    return 2.0 * log_singular_values(params.unit_lower, params.log_scales)[::-1]


def multivariate_record(params: MultivariateParams) -> MultivariateRecord:
    """``record(params) -> MultivariateRecord`` against the real N(0, I_d)."""
    log_sv = log_singular_values(params.unit_lower, params.log_scales)[::-1]  # ascending
    root_eig = jnp.exp(log_sv)  # of Sigma^{1/2}; below the float range: 0
    eig = jnp.exp(2.0 * log_sv)
    mse = pairwise_sum(jnp.square(params.mean))
    # column j of the factor: e^{s_j} U[:, j]; its squared norm in logs, then summed
    col_sq = pairwise_sum(jnp.square(params.unit_lower).T)  # sum_i U_ij^2 (>= 1)
    trace = pairwise_sum(jnp.exp(2.0 * params.log_scales + jnp.log(col_sq)))
    w2 = mse + pairwise_sum(jnp.square(root_eig - 1.0))
    return MultivariateRecord(params.log_det, trace, mse, eig, w2)
