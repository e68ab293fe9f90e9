r"""Exact and approximate theory for the recursively refitted categorical distribution.

Setting (THEORY.md, "Discrete distributions", D1-D5). Generation 0 is the
real distribution :math:`p_0` on :math:`K` categories. Fit :math:`n = 1, 2,
\dots` is the vector of empirical frequencies of :math:`M` = ``sample_size``
tokens drawn from fit :math:`n-1` (fit 1 uses real data). With :math:`X_n`
the count vector of fit :math:`n` (so fit :math:`n` is :math:`X_n / M`),

.. math::

    X_1 \sim \mathrm{Mult}(M, p_0), \qquad
    X_{n+1} \mid X_n \sim \mathrm{Mult}(M, X_n / M),

the neutral Wright-Fisher model of population genetics with :math:`M` gene
copies. One category's count is the binomial Wright-Fisher chain
:math:`X_{n+1} \mid X_n \sim \mathrm{Bin}(M, X_n/M)` on :math:`\{0..M\}`,
absorbed at 0 (the category is forgotten) and at :math:`M` (it is all that is
left). The frequency of every category is a bounded martingale, so the chain
ends, almost surely, in a one-point distribution ("model collapse").

Contents:

* :func:`expected_heterozygosity` (D1, exact, with optional additive
  smoothing);
* :func:`survival_probability`, :func:`expected_support_size` (D3, exact, by
  the banded Wright-Fisher transition matrix);
* :func:`fixation_probability` (D2, exact);
* :func:`mean_absorption_time` (D4, exact linear solve or Kimura/Littler
  diffusion approximation, with its measured error);
* the Poisson (critical Galton-Watson) limit of Suresh et al. (D5):
  :func:`suresh_g`, :func:`poisson_survival_probability`,
  :func:`poisson_survival_from_rate`, :func:`suresh_survival_bounds`,
  :func:`suresh_survival_bounds_from_rate`;
* the infinite-:math:`M` drift under biased sampling (temperature, top-k,
  top-p): :func:`deterministic_trajectory`, :func:`sampling_transform`,
  :func:`nucleus_fixed_point`.

Conventions of this module (those of :mod:`theory.gaussian`):

* Pure ``jax.numpy``; no randomness. Arguments that only enter arithmetic
  (``p``, ``smoothing``, ``temperature``, ``top_k``, ``top_p``, ``count``,
  ``rate``, and ``n`` / ``sample_size`` of :func:`expected_heterozygosity`)
  may be traced by ``jax.jit`` / ``jax.vmap``. Arguments that set array sizes
  or loop lengths must be concrete (Python ints or concrete arrays) and each
  function says which; passing a tracer there raises ``ValueError``.
* The computation dtype is the promotion of the float inputs with Python
  ``float`` (``float64`` under ``jax_enable_x64`` unless an input is
  ``float32``).
* Probability vectors lie on the last axis; leading axes are batch axes.
  Concrete probability vectors must have finite entries ``>= 0`` summing to 1
  within 1e-6; they are used as given (not renormalised).
* Concrete inputs are validated (``ValueError`` naming the argument and the
  bad value); traced inputs are not checked.

Numerics. Binomial and multinomial probabilities are evaluated in log space
with Loader's saddle-point form (:func:`_log_mult_pmf`, :func:`_log_binom`):
Stirling remainders (``theory.gaussian._stirling_rem``) plus the deviance
terms :math:`\mathrm{bd0}(y, \mu) = y\log(y/\mu) + \mu - y`, summed as a
series of non-negative terms in :math:`v = (y-\mu)/(y+\mu)` near
:math:`y = \mu`. Measured against 40-digit ``mpmath`` for M = 50, 1000,
5000 and 20000: log-probabilities within 3 standard deviations of the mean
are accurate to 5e-15 absolute (2.8e-14 out to 9 standard deviations),
where the textbook ``gammaln`` form loses 2e-13, 7e-12, 3e-11 and 1.8e-10.
(The multinomial matrix of :func:`mean_absorption_time` for three or more
categories uses ``gammaln``: its ``sample_size`` is small there.)

References:
    Fisher, R. A. (1930). *The Genetical Theory of Natural Selection*;
    Wright, S. (1931). Evolution in Mendelian populations. *Genetics* 16.

    Kimura, M. & Ohta, T. (1969). The average number of generations until
    fixation of a mutant gene in a finite population. *Genetics* 61, 763-771.

    Littler, R. A. (1975). Loss of variability at one locus in a finite
    population. *Math. Biosci.* 25, 151-163.

    Ewens, W. J. (2004). *Mathematical Population Genetics I*, 2nd ed.,
    Springer (the Wright-Fisher model and its diffusion approximation).

    Suresh, A. T., Thangaraj, A. & Khandavally, A. N. K. (2024). Rate of
    Model Collapse in Recursive Training. arXiv:2412.17646 (AISTATS 2025).

    Athreya, K. B. & Ney, P. E. (1972). *Branching Processes*, Springer
    (critical Galton-Watson survival, Kolmogorov's estimate).

    Hoeffding, W. (1956). On the distribution of the number of successes in
    independent trials. *Ann. Math. Statist.* 27, 713-721.

    Loader, C. (2000). Fast and accurate computation of binomial
    probabilities. Technical note.

    Holtzman, A. et al. (2020). The curious case of neural text degeneration.
    ICLR (nucleus sampling); Hugging Face ``transformers`` logits warpers
    (temperature, then top-k, then top-p).
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy import special as jsp

from theory import _validate as _v
from theory.gaussian import _stirling_rem

__all__ = [
    "ABSORPTION_METHODS",
    "MAX_EXACT_STATES",
    "expected_heterozygosity",
    "survival_probability",
    "expected_support_size",
    "fixation_probability",
    "mean_absorption_time",
    "suresh_g",
    "poisson_survival_probability",
    "poisson_survival_from_rate",
    "suresh_survival_bounds",
    "suresh_survival_bounds_from_rate",
    "sampling_transform",
    "deterministic_trajectory",
    "NucleusFixedPoint",
    "nucleus_fixed_point",
]

ABSORPTION_METHODS = ("exact", "diffusion")
MAX_EXACT_STATES = 6000  # default cap on transient states for the exact absorption time

_LOG_2PI = math.log(2.0 * math.pi)
# Half-width of the band kept in the Wright-Fisher matrix: B = ceil(5 sqrt(M) + 10).
# The binomial mass beyond it, max over rows, is below 3e-24 for every M checked
# (50..20000, scipy.stats.binom); rows are renormalised after truncation.
_BAND_SD = 5.0
_BAND_PAD = 10.0
_BLOCKS_PER_HALF_BAND = 2  # block size b = B / 2 (measured fastest on CPU)
_MAP_ELEMENTS = 4_000_000  # elements per lax.map batch (bounds temporaries)


# ---------------------------------------------------------------------------
# Helpers.
# ---------------------------------------------------------------------------


def _dtype(*xs):
    """Promotion of the inputs with Python float (lists and tuples via NumPy)."""
    scalars = (jax.Array, np.ndarray, np.generic, int, float, bool)
    return jnp.result_type(float, *(x if isinstance(x, scalars) else np.asarray(x) for x in xs))


def _stirlerr(n):
    """log n! - log(sqrt(2 pi n) (n/e)^n) for n >= 1, and 0 at n = 0 (a convention)."""
    pos = n > 0
    return jnp.where(pos, _stirling_rem(jnp.where(pos, n, 1.0)), 0.0)


# 2 atanh(v) - 2v = 2v * sum_{j>=1} v^(2j) / (2j + 1); 16 terms: < 1e-17 for |v| < 0.3
_ATANH_COEF = [1.0 / (2 * j + 1) for j in range(1, 17)]
_BD0_SERIES_V = 0.3


def _bd0(y, mu):
    """Loader's deviance term y log(y/mu) + mu - y >= 0, without cancellation.

    With v = (y - mu)/(y + mu), y log(y/mu) = 2 y atanh(v), so
    bd0 = (y - mu) v + 2 y sum_{j>=1} v^(2j+1)/(2j+1), a sum of non-negative
    terms, used for |v| < 0.3 (y/mu in [0.54, 1.86]); the direct formula
    elsewhere (cancellation below a factor 6 there). bd0(0, mu) = mu and
    bd0(y > 0, 0) = inf (probability zero).
    """
    pos = (y > 0) & (mu > 0)
    ys = jnp.where(pos, y, 1.0)
    ms = jnp.where(pos, mu, 1.0)
    d = ys - ms
    v = d / (ys + ms)
    small = jnp.abs(v) < _BD0_SERIES_V
    vs = jnp.where(small, v, 0.0)
    v2 = vs * vs
    acc = jnp.full_like(v2, _ATANH_COEF[-1])
    for c in reversed(_ATANH_COEF[:-1]):
        acc = acc * v2 + c
    series = d * vs + 2.0 * ys * vs * v2 * acc
    direct = ys * jnp.log(ys / ms) - d
    val = jnp.where(small, series, direct)
    return jnp.where(pos, val, jnp.where(y > 0, jnp.inf, mu))


def _log_mult_pmf(y, mu, m):
    r"""log Mult(y; m, mu/m) along the last axis (Loader's saddle-point form).

    With Stirling's formula :math:`k! = \sqrt{2\pi k}(k/e)^k e^{\delta(k)}` and
    :math:`\sum_i y_i = m = \sum_i \mu_i`,

    .. math::

        \log\mathrm{Mult} = \delta(m) + \tfrac12\log(2\pi m)
            - \sum_{i: y_i > 0}\left[\delta(y_i) + \tfrac12\log(2\pi y_i)\right]
            - \sum_i \mathrm{bd0}(y_i, \mu_i),

    with no cancellation between large terms. ``y`` holds integer values
    (float dtype); ``mu >= 0`` are the expected counts :math:`m p_i`.
    """
    pos = y > 0
    log_y = jnp.where(pos, _LOG_2PI + jnp.log(jnp.where(pos, y, 1.0)), 0.0)
    terms = _stirlerr(y) + 0.5 * log_y + _bd0(y, mu)
    return _stirlerr(m) + 0.5 * (_LOG_2PI + jnp.log(m)) - jnp.sum(terms, axis=-1)


def _binom_log_coef(m: int, y):
    """Loader's log binomial coefficient part: log Bin(y; m, .) + bd0 terms, for y in 0..m.

    c(y) = d(m) - d(y) - d(m-y) + [log(2 pi m) - log(2 pi y) - log(2 pi (m-y))] / 2,
    the logarithms of zero counts omitted, so that
    log Bin(y; m, mu/m) = c(y) - bd0(y, mu) - bd0(m - y, m - mu).
    """
    pos = y > 0
    neg = y < m
    log_y = jnp.where(pos, _LOG_2PI + jnp.log(jnp.where(pos, y, 1.0)), 0.0)
    log_r = jnp.where(neg, _LOG_2PI + jnp.log(jnp.where(neg, m - y, 1.0)), 0.0)
    return (
        _stirlerr(jnp.asarray(m, y.dtype))
        - _stirlerr(y)
        - _stirlerr(m - y)
        + 0.5 * (_LOG_2PI + math.log(m) - log_y - log_r)
    )


def _log_binom(coef, y, mean, m: int):
    """log Bin(y; m, mean/m) from c(y) = ``coef`` (see _binom_log_coef)."""
    return coef - _bd0(y, mean) - _bd0(m - y, m - mean)


def _concrete_n(n, func: str):
    """Concrete generation counts as a flat int64 array, and whether n was a scalar."""
    if not _v.is_concrete(n):
        raise ValueError(
            f"{func} needs a concrete n (it sets the number of generations); got a traced "
            "value: pass n as a Python int or a sequence of ints"
        )
    arr = np.asarray(n)
    if arr.ndim > 1:
        raise ValueError(
            f"n must be an integer or a 1-D sequence of integers; got shape {arr.shape}"
        )
    _v.check_n(arr)
    return arr.astype(np.int64).reshape(-1), arr.ndim == 0


def _concrete_sample_size(sample_size, func: str) -> int:
    if not _v.is_concrete(sample_size):
        raise ValueError(
            f"{func} needs a concrete sample_size (it sets the size of the state space); "
            "got a traced value"
        )
    arr = np.asarray(sample_size)
    if arr.ndim != 0:
        raise ValueError(f"sample_size must be a single integer here; got shape {arr.shape}")
    _v.check_integer("sample_size", arr, 2)
    return int(arr)


def _record_iterates(step, x0, targets):
    """Stack step^t(x0) for the sorted, distinct, non-negative ints ``targets`` (1-D array).

    One pass of max(targets) steps; ``targets`` may be traced (its length is
    static), so the loop is a while loop compiled once per shape.
    """
    n_out = targets.shape[0]
    out = jnp.zeros((n_out + 1,) + x0.shape, x0.dtype)  # the last row is scratch

    def record(out, ptr, k, x):
        hit = (ptr < n_out) & (targets[jnp.minimum(ptr, n_out - 1)] == k)
        row = jnp.where(hit, ptr, n_out)
        return lax.dynamic_update_index_in_dim(out, x, row, 0), ptr + hit.astype(ptr.dtype)

    out, ptr = record(out, jnp.int32(0), 0, x0)

    def body(k, carry):
        x, out, ptr = carry
        x = step(x)
        out, ptr = record(out, ptr, k, x)
        return x, out, ptr

    last = targets[n_out - 1].astype(jnp.int32)
    _, out, _ = lax.fori_loop(jnp.int32(1), last + 1, body, (x0, out, ptr))
    return out[:n_out]


def _unique_targets(counts: np.ndarray):
    """(sorted distinct counts, index of each count in them)."""
    uniq, inverse = np.unique(counts, return_inverse=True)
    return uniq, inverse.reshape(-1)


# ---------------------------------------------------------------------------
# D1: heterozygosity.
# ---------------------------------------------------------------------------


def expected_heterozygosity(n, sample_size, p, smoothing=0.0):
    r"""Mean heterozygosity :math:`\mathbb{E}[H_n]` of fit ``n``, :math:`H = 1 - \sum_i p_i^2` (D1).

    :math:`H` is the probability that two independent draws from the fit
    differ (the Gini-Simpson index). Without smoothing (catalogue D1)

    .. math::

        \mathbb{E}[H_n] = H_0 \left(1 - \frac1M\right)^n .

    With additive smoothing :math:`\alpha` = ``smoothing`` every fit is
    :math:`(X + \alpha)/(M + K\alpha)`, :math:`K` = ``p.shape[-1]`` (every
    category, including those with :math:`p_{0,i} = 0`, gets the
    pseudo-count), and the recursion for :math:`S = \sum_i q_i^2` is affine
    and exact. *Derivation*: given the current fit :math:`q`,
    :math:`X \sim \mathrm{Mult}(M, q)` has
    :math:`\mathbb{E}[X_i^2] = M q_i + M(M-1) q_i^2`, so with
    :math:`D = M + K\alpha`

    .. math::

        \mathbb{E}[S' \mid q] = \frac{\sum_i \mathbb{E}(X_i + \alpha)^2}{D^2}
        = \underbrace{\frac{M + 2\alpha M + K\alpha^2}{D^2}}_{a}
          + \underbrace{\frac{M(M-1)}{D^2}}_{b}\, S .

    Taking expectations, :math:`s_{n+1} = a + b s_n` with :math:`0 \le b < 1`:
    a geometric series with fixed point :math:`S^* = a/(1-b)`, so
    :math:`\mathbb{E}[S_n] = S^* + b^n (S_0 - S^*)` and

    .. math::

        \mathbb{E}[H_n] = H^* + (H_0 - H^*)\, b^n, \qquad
        H^* = 1 - S^* = \frac{(K-1)\alpha(2M + K\alpha)}{M + 2MK\alpha + K^2\alpha^2},

    (:math:`1 - b - a = (K-1)\alpha(2M + K\alpha)/D^2` and
    :math:`1 - b = (M + 2MK\alpha + K^2\alpha^2)/D^2`). :math:`\alpha = 0`
    gives :math:`b = 1 - 1/M`, :math:`H^* = 0`: D1. For :math:`\alpha > 0`
    there is no absorption: every category keeps mass
    :math:`\ge \alpha/(M + K\alpha)` in every fit, and :math:`H_n` tends to
    :math:`H^* > 0` (to :math:`(K-1)/K`, uniform, as :math:`\alpha \to
    \infty`). Fit 1 is smoothed too (its counts come from :math:`p_0`), and
    :math:`n = 0` returns :math:`H_0`. :math:`b^n` is evaluated as
    :math:`\exp(n[\log(1 - 1/M) - 2\log(1 + K\alpha/M)])` with ``log1p``.

    Assumptions: multinomial resampling of exactly :math:`M` tokens per fit;
    the pseudo-count is the same for every category. Exact (no
    approximation).

    Args:
        n: number of fits (non-negative integer values), array-like; may be
            traced.
        sample_size: tokens per fit, integer ``M >= 2``, array-like; may be
            traced.
        p: real distribution(s) :math:`p_0`, shape ``(..., K)``.
        smoothing: pseudo-count :math:`\alpha \ge 0` (array-like; 0 = plain
            empirical frequencies).

    Returns:
        Array of the broadcast shape of ``n``, ``sample_size``, ``smoothing``
        and ``p.shape[:-1]``.

    References:
        THEORY.md D1; Ewens (2004) (decay of heterozygosity).

    Example:
        >>> from theory import categorical
        >>> float(categorical.expected_heterozygosity(1, 10, [0.5, 0.5]))  # 0.5 * 0.9
        0.45
    """
    _v.check_n(n)
    _v.check_integer("sample_size", sample_size, 2)
    _v.check_probability_vector("p", p)
    _v.check_nonnegative("smoothing", smoothing)
    _v.check_not_nan("smoothing", smoothing)
    dt = _dtype(n, sample_size, p, smoothing)
    p = jnp.asarray(p, dt)
    k = p.shape[-1]
    n = jnp.asarray(n, dt)
    m = jnp.asarray(sample_size, dt)
    a = jnp.asarray(smoothing, dt)
    h0 = 1.0 - jnp.sum(p * p, axis=-1)
    ka = k * a
    log_b = jnp.log1p(-1.0 / m) - 2.0 * jnp.log1p(ka / m)
    h_star = (k - 1) * a * (2.0 * m + ka) / (m + 2.0 * m * ka + ka * ka)
    return h_star + (h0 - h_star) * jnp.exp(n * log_b)


# ---------------------------------------------------------------------------
# D2, D3: fixation, survival, support size.
# ---------------------------------------------------------------------------


def fixation_probability(p):
    r"""Probability that the chain is absorbed at each category: :math:`p_0` itself (D2).

    *Derivation*: the frequency :math:`X_n^{(i)}/M` of category :math:`i` is
    a martingale (:math:`\mathbb{E}[X_{n+1} \mid X_n] = X_n`) bounded in
    :math:`[0, 1]`, and the chain is absorbed in finite time, almost surely,
    at a one-point distribution (every non-absorbing state reaches one in a
    single step with positive probability). Optional stopping at the
    absorption time :math:`T` gives :math:`P(\text{fixed at } i) =
    \mathbb{E}[X_T^{(i)}/M] = p_{0,i}`. Exact for every ``sample_size``; the
    argument has no ``sample_size`` because the answer does not depend on it.

    Args:
        p: real distribution(s), shape ``(..., K)``; may be traced.

    Returns:
        ``p`` as an array of the computation dtype (same shape).

    References:
        THEORY.md D2; Ewens (2004).

    Example:
        >>> from theory import categorical
        >>> categorical.fixation_probability([0.25, 0.75]).tolist()
        [0.25, 0.75]
    """
    _v.check_probability_vector("p", p)
    return jnp.asarray(p, _dtype(p))


def _band_half_width(m: int) -> int:
    return int(math.ceil(_BAND_SD * math.sqrt(m) + _BAND_PAD))


class _Band(NamedTuple):
    """Layout of the banded Wright-Fisher matrix: row blocks of size b, 5b columns each."""

    b: int  # rows per block
    hb: int  # half-width of the band, 2b (>= B)
    nb: int  # number of blocks
    rows: int  # nb * b >= m + 1 (padded rows are zero)


def _band_layout(m: int) -> _Band | None:
    """None when the band covers the whole matrix (m <= about 150: dense)."""
    half = _band_half_width(m)
    if 2 * half + 1 >= m + 1:
        return None
    b = -(-half // _BLOCKS_PER_HALF_BAND)
    nb = -(-(m + 1) // b)
    return _Band(b, _BLOCKS_PER_HALF_BAND * b, nb, nb * b)


def _grid_size(m: int) -> int:
    """Length of the 0, 1, 2, ... grid the matrix builders take as input."""
    lay = _band_layout(m)
    if lay is None:
        return m + 1
    return max(lay.rows, (2 * _BLOCKS_PER_HALF_BAND + 1) * lay.b)


# The builders below take ``grid = arange(_grid_size(m))`` as a runtime input
# (rather than calling arange): a matrix built from constants only would be
# constant-folded by XLA at compile time, which is very slow.


def _windows(v, m: int, lay: _Band):
    """(nb, 5b) windows of v (length m+1): row r holds v[r b - hb : r b - hb + 5b], 0-padded."""
    width = 2 * _BLOCKS_PER_HALF_BAND + 1
    padded = jnp.pad(v, (lay.hb, lay.rows - (m + 1) + lay.hb))
    chunks = padded.reshape(lay.nb + 2 * _BLOCKS_PER_HALF_BAND, lay.b)
    return jnp.concatenate([chunks[j : j + lay.nb] for j in range(width)], axis=1)


def _wf_blocks(m: int, lay: _Band, grid):
    """Band entries P[x, y] (rows renormalised), with their x and y, shape (nb, b, 5b).

    Built block by block (``lax.map``) so that the temporaries of the
    log-probabilities never exceed a few million elements.
    """
    width = 2 * _BLOCKS_PER_HALF_BAND + 1
    x = grid[: lay.rows].reshape(lay.nb, lay.b, 1)
    start = (grid[: lay.nb] * lay.b - lay.hb).reshape(lay.nb, 1, 1)
    y = start + grid[: width * lay.b].reshape(1, 1, -1)
    valid = (y >= 0) & (y <= m) & (x <= m)
    coef = _windows(_binom_log_coef(m, grid[: m + 1]), m, lay)

    def block(args):
        xb, yb, cb = args  # (b, 1), (1, 5b), (5b,)
        ok = (yb >= 0) & (yb <= m) & (xb <= m)
        logp = _log_binom(cb[None, :], jnp.clip(yb, 0, m), jnp.clip(xb, 0, m), m)
        mat = jnp.where(ok, jnp.exp(logp), 0.0)
        total = jnp.sum(mat, axis=-1, keepdims=True)
        return mat / jnp.where(total > 0, total, 1.0)

    batch = max(1, min(lay.nb, _MAP_ELEMENTS // (width * lay.b * lay.b)))
    mat = lax.map(block, (x, y, coef), batch_size=batch)
    return mat, x, y, valid


def _wf_dense(m: int, grid):
    """The full (m+1) x (m+1) Wright-Fisher matrix, for the small m without a band."""
    x = grid[: m + 1]
    mat = jnp.exp(_log_binom(_binom_log_coef(m, x)[None, :], x[None, :], x[:, None], m))
    return mat / jnp.sum(mat, axis=1, keepdims=True)


def _wf_operator(m: int, grid):
    """s -> P s for the binomial Wright-Fisher matrix P on {0..m}.

    Dense when the band covers everything (m <= about 150), otherwise stored
    in row blocks of size b with 5b columns each (the band of half-width
    B <= 2b), so that one product is a batched dense matrix-vector product.
    """
    lay = _band_layout(m)
    if lay is None:
        mat = _wf_dense(m, grid)
        return lambda s: mat @ s
    mat, _, _, _ = _wf_blocks(m, lay, grid)

    def apply(s):
        out = jnp.einsum("rij,rj->ri", mat, _windows(s, m, lay))
        return out.reshape(-1)[: m + 1]

    return apply


def _first_step(table, p_flat, m: int, grid):
    """sum_x Bin(x; m, p) table[:, x] for each p (windowed around m p)."""
    n_out = table.shape[0]
    half = _band_half_width(m)
    wd = min(2 * half + 1, m + 1)
    coef = _binom_log_coef(m, grid[: m + 1])
    offsets = grid[:wd]

    def one(pv):
        start = jnp.clip(jnp.floor(m * pv).astype(jnp.int32) - half, 0, m + 1 - wd)
        y = start.astype(table.dtype) + offsets
        c = lax.dynamic_slice_in_dim(coef, start, wd)
        w = jnp.exp(_log_binom(c, y, m * pv, m))
        w = w / jnp.sum(w)
        cols = lax.dynamic_slice_in_dim(table, start, wd, axis=1)
        return cols @ w

    batch = max(1, min(p_flat.shape[0], _MAP_ELEMENTS // (n_out * wd)))
    return lax.map(one, p_flat, batch_size=batch).T


@functools.partial(jax.jit, static_argnames=("m",))
def _survival_kernel(targets, p_flat, grid, *, m):
    """(len(targets), P) survival probabilities after targets + 1 fits."""
    dt = p_flat.dtype
    apply = _wf_operator(m, grid)
    s0 = (grid[: m + 1] > 0).astype(dt)
    table = _record_iterates(apply, s0, targets)
    return jnp.clip(_first_step(table, p_flat, m, grid), 0.0, 1.0)


def _survival(n_flat: np.ndarray, m: int, p):
    """Survival table of shape (len(n_flat),) + p.shape."""
    dt = p.dtype
    p_flat = p.reshape(-1)
    present = (p_flat > 0).astype(dt)
    pos = n_flat > 0
    rows = [present[None]]
    index = np.zeros(n_flat.shape, np.int64)
    if np.any(pos) and p_flat.shape[0] > 0:
        uniq, inverse = _unique_targets(n_flat[pos] - 1)
        grid = jnp.arange(_grid_size(m), dtype=dt)
        rows.append(_survival_kernel(jnp.asarray(uniq, jnp.int32), p_flat, grid, m=m))
        index[pos] = 1 + inverse
    table = jnp.concatenate(rows, axis=0)
    return table[jnp.asarray(index)].reshape(n_flat.shape + p.shape)


def survival_probability(n, sample_size, p):
    r"""Probability that a category of real probability ``p`` is still present in fit ``n`` (D3).

    The count :math:`X_n` of one category is the binomial Wright-Fisher chain
    on :math:`\{0, \dots, M\}` with transition matrix
    :math:`P_{xy} = \binom{M}{y}(x/M)^y(1 - x/M)^{M-y}` and first step
    :math:`X_1 \sim \mathrm{Bin}(M, p)`. Exactly,

    .. math::

        P(X_n > 0) = \sum_{x=0}^{M} \mathrm{Bin}(x; M, p)\, s_{n-1}(x),
        \qquad s_0 = \mathbf 1[x > 0], \quad s_{k+1} = P s_k,

    where :math:`s_k(x) = P(X_{t+k} > 0 \mid X_t = x)` is the backward
    survival vector (the complement of the extinction vector
    :math:`f_k = P^k \mathbf 1[x = 0]`; iterating :math:`s` rather than
    :math:`f` keeps the relative accuracy of small survival probabilities, a
    sum of non-negative terms). One :math:`(M+1)`-state matrix-vector product
    per generation serves every ``p`` at once; ``n = 0`` gives
    :math:`\mathbf 1[p > 0]`. :math:`s_{n-1}` is non-increasing in ``n`` and
    tends to the fixation probability :math:`x/M` (D2), so the survival tends
    to ``p``. A word seen ``c`` times in fit 1 survives to fit ``n`` with
    probability ``survival_probability(n - 1, M, c / M)`` (the chain
    restarted at :math:`X_1 = c`).

    Numerics. :math:`P` is built from log-probabilities in Loader's form
    (module docstring) and every row is renormalised. For :math:`M > 150`
    only the band :math:`|y - x| \le B = \lceil 5\sqrt M + 10\rceil` is kept
    (at least 10 standard deviations, :math:`\le \sqrt M/2`, on each side;
    the binomial mass outside it is below 3e-24 in every row, checked for M
    = 50..20000 with ``scipy.stats.binom``), stored as row blocks so that a
    product is a batched dense matrix-vector product of about
    :math:`12.5\,M^{3/2}` multiply-adds instead of :math:`M^2`. The first
    step sums over the same window around :math:`Mp`. Accuracy, against
    ``scipy.stats.binom`` matrices propagated in NumPy: 1.5e-15 absolute for
    M <= 6 (and against brute-force path enumeration), 1.2e-14 at M = 400
    (banded), 8e-14 relative at M = 3000 after 1000 fits (the reference's
    own rounding is of that order); small survival probabilities keep their
    relative accuracy (p = 1e-9 and 1e-6: within 7e-15 relative).

    Cost, measured (2 CPU cores, float64, once compiled; compiling takes
    about 1 s per ``sample_size`` and number of distinct ``n``; peak is the
    process's resident memory, about 300 MB of it JAX itself):

    ========  ===============  ===========  =======  ========
    M         per generation   band matrix  build    peak
    ========  ===============  ===========  =======  ========
    1000      0.03 ms          3.3 MB       0.01 s   0.33 GB
    3000      0.16 ms          17 MB        0.04 s   0.36 GB
    5000      0.75 ms          35 MB        0.1 s    0.46 GB
    20000     9.4 ms           275 MB       0.6 s    0.88 GB
    50000     29 ms            1.1 GB       2.9 s    2.5 GB
    ========  ===============  ===========  =======  ========

    The band matrix grows as about :math:`100\,M^{3/2}` bytes (a dense one
    would need :math:`8M^2`: 200 MB at M = 5000, 20 GB at M = 50000), so
    :math:`M` up to a few times 1e4 is practical on a laptop; time is
    linear in ``max(n)`` and independent of the number of ``p`` values
    except for the first step (:math:`\mathrm{len}(n) \cdot 10\sqrt M` per
    ``p`` value).

    ``n`` and ``sample_size`` must be concrete (they set the loop length and
    the matrix size); ``p`` may be traced, e.g.
    ``jax.jit(lambda p: survival_probability(50, 1000, p))``.

    Args:
        n: number of fits: a non-negative int, or a 1-D sequence of them.
        sample_size: tokens per fit, an integer ``M >= 2``.
        p: real probability of the category, any shape, values in [0, 1].

    Returns:
        Array of shape ``p.shape`` (scalar ``n``) or ``(len(n),) + p.shape``.

    References:
        THEORY.md D3; Ewens (2004) (Wright-Fisher model).

    Example:
        >>> from theory import categorical
        >>> round(float(categorical.survival_probability(1, 10, 0.1)), 6)  # 1 - 0.9**10
        0.651322
    """
    n_flat, scalar = _concrete_n(n, "survival_probability")
    m = _concrete_sample_size(sample_size, "survival_probability")
    _v.check_unit_interval("p", p)
    p = jnp.asarray(p, _dtype(p))
    out = _survival(n_flat, m, p)
    return out[0] if scalar else out


def expected_support_size(n, sample_size, p):
    r"""Expected number of categories present in fit ``n`` (D3).

    .. math::

        \mathbb{E}\,|\{i : X_n^{(i)} > 0\}| = \sum_i P(X_n^{(i)} > 0),

    linearity of expectation over the exact marginal survival probabilities
    of :func:`survival_probability` (each category's count is a binomial
    Wright-Fisher chain, whatever the others do). Tends to 1 as
    :math:`n \to \infty` (:math:`\sum_i p_{0,i}`). Same cost and
    concreteness rules as :func:`survival_probability` (one matrix pass for
    all categories and all ``n``).

    Args:
        n: number of fits: a non-negative int, or a 1-D sequence of them.
        sample_size: tokens per fit, an integer ``M >= 2``.
        p: real distribution(s), shape ``(..., K)``.

    Returns:
        Array of shape ``p.shape[:-1]`` (scalar ``n``) or
        ``(len(n),) + p.shape[:-1]``.

    References:
        THEORY.md D3.

    Example:
        >>> from theory import categorical
        >>> float(categorical.expected_support_size(0, 10, [0.5, 0.5, 0.0]))
        2.0
    """
    n_flat, scalar = _concrete_n(n, "expected_support_size")
    m = _concrete_sample_size(sample_size, "expected_support_size")
    _v.check_probability_vector("p", p)
    p = jnp.asarray(p, _dtype(p))
    out = jnp.sum(_survival(n_flat, m, p), axis=-1)
    return out[0] if scalar else out


# ---------------------------------------------------------------------------
# D4: mean absorption time.
# ---------------------------------------------------------------------------


def _transient_compositions(m: int, k: int) -> np.ndarray:
    """All compositions of m into k non-negative parts with >= 2 positive parts."""
    if k == 2:
        x = np.arange(1, m)
        return np.stack([x, m - x], axis=1)
    rows = []
    for bars in itertools.combinations(range(m + k - 1), k - 1):
        parts = np.diff(np.array((-1,) + bars + (m + k - 1,))) - 1
        if np.count_nonzero(parts) >= 2:
            rows.append(parts)
    return np.array(rows, dtype=np.int64).reshape(-1, k)


def _transient_count(m: int, k: int) -> int:
    return math.comb(m + k - 1, k - 1) - k


@functools.partial(jax.jit, static_argnames=("m",))
def _absorption_solve_two(grid, *, m):
    """Two categories: t on x = 1..m-1 from the (banded, Loader) Wright-Fisher matrix."""
    lay = _band_layout(m)
    if lay is None:
        a = jnp.eye(m - 1, dtype=grid.dtype) - _wf_dense(m, grid)[1:m, 1:m]
    else:  # scatter the band of -Q straight into the identity (saves full-size copies)
        mat, x, y, valid = _wf_blocks(m, lay, grid)
        inner = valid & (x >= 1) & (x <= m - 1) & (y >= 1) & (y <= m - 1)
        xi = jnp.where(inner, x - 1, m - 1).astype(jnp.int32)
        yi = jnp.where(inner, y - 1, m - 1).astype(jnp.int32)
        a = jnp.eye(m - 1, dtype=grid.dtype).at[xi, yi].add(-mat, mode="drop")
    return jnp.linalg.solve(a, jnp.ones(m - 1, a.dtype))


@functools.partial(jax.jit, static_argnames=("m",))
def _absorption_solve_many(states, *, m):
    """Three or more categories: t on the transient compositions (gammaln + one GEMM).

    log Q[x, y] = log m! - sum_i log y_i! + sum_i y_i log(x_i / m); with m small
    here (the default state cap keeps m <= 108 for three categories) gammaln is
    accurate to about 1e-13.
    """
    dt = states.dtype
    log_x = jnp.where(states > 0, jnp.log(jnp.where(states > 0, states, 1.0) / m), -1e5)
    log_q = jsp.gammaln(m + 1.0) - jnp.sum(jsp.gammaln(states + 1.0), axis=-1)[None, :]
    size = states.shape[0]
    a = jnp.eye(size, dtype=dt) - jnp.exp(log_q + log_x @ states.T)
    return jnp.linalg.solve(a, jnp.ones(size, dt))


@functools.partial(jax.jit, static_argnames=("m",))
def _absorption_average(states, t, p, *, m):
    """1 + sum over transient states of Mult(x; m, p) t(x)."""
    return 1.0 + jnp.exp(_log_mult_pmf(states, m * p[..., None, :], m)) @ t


@functools.lru_cache(maxsize=16)
def _absorption_table(m: int, k: int, dtype_name: str):
    """(transient states, t on them) as NumPy arrays (computed eagerly, cached)."""
    states = _transient_compositions(m, k)
    with jax.ensure_compile_time_eval():
        if k == 2:
            grid = jnp.arange(_grid_size(m), dtype=dtype_name)
            t = _absorption_solve_two(grid, m=m)
        else:
            t = _absorption_solve_many(jnp.asarray(states, dtype_name), m=m)
    return states, np.asarray(t)


def mean_absorption_time(sample_size, p, method="exact", *, max_states=MAX_EXACT_STATES):
    r"""Expected number of fits until the fit is a one-point distribution (D4).

    :math:`T = \min\{n \ge 0 : p_n \text{ has one category}\}`: :math:`T = 0`
    when :math:`p_0` already is a point mass, and the fit from real data
    counts, so

    .. math::

        \mathbb{E}[T] = \sum_{x} \mathrm{Mult}(x; M, p_0)\,\bigl(1 + t(x)\bigr),
        \qquad (I - Q)\,t = \mathbf 1,

    with :math:`t(x)` the expected number of further fits from a fit with
    counts :math:`x` (:math:`t = 0` at the absorbing vertices) and :math:`Q`
    the multinomial transition matrix restricted to the transient states.

    ``method="exact"``: the states are the compositions of :math:`M` into
    :math:`K'` parts with at least two positive parts, :math:`K'` the number
    of categories that can ever appear (those with :math:`p_{0,i} > 0` in
    some batch row when ``p`` is concrete, all :math:`K` when it is traced);
    there are :math:`\binom{M+K'-1}{K'-1} - K'` of them (:math:`M-1` for two
    categories, then :math:`Q` is the Wright-Fisher matrix of
    :func:`survival_probability`, Loader's form, band entries only; for
    :math:`K' \ge 3`, ``gammaln`` plus one matrix product, accurate to about
    1e-13 at the :math:`M \le 108` the cap allows). The system is solved by
    LU (``jnp.linalg.solve``) and the solution is cached per
    :math:`(M, K')`. Cost (2 CPU cores, once compiled; peak resident memory
    of the process): 1000 states 0.03 s, 0.4 GB; 3000 states 0.3 s, 0.7 GB;
    6000 states about 4 s, 1.7 GB (three categories, 5148 states: 2.4 s,
    1.3 GB); compiling adds 1-2 s per :math:`(M, K')`. More
    than ``max_states`` (default 6000) transient states raise
    ``ValueError`` (use ``method="diffusion"``, or raise ``max_states`` on a
    machine with memory for about five dense ``max_states**2`` float64
    matrices). Accuracy: against an independent NumPy solve (two categories)
    and against :math:`\sum_n P(T > n)` from propagating the composition
    chain (three categories), relative error below 1e-10.

    ``method="diffusion"``: Kimura's and Littler's diffusion approximation,

    .. math::

        \mathbb{E}[T] \approx -2M \sum_i (1 - p_i)\ln(1 - p_i)
        \quad\bigl(\text{two categories: } -2M[p\ln p + (1-p)\ln(1-p)]\bigr),

    the solution of :math:`\tfrac12 \sum_{ij} x_i(\delta_{ij} - x_j)/M\,
    \partial_i\partial_j t = -1` with :math:`t = 0` at the vertices (the
    neutral Wright-Fisher diffusion with :math:`M` gene copies). Relative
    error (diffusion minus exact, over exact), measured:

    =========  =======  =======  =======  =======  =======  ========
    p          M = 10   M = 30   M = 100  M = 300  M = 1000 M = 3000
    =========  =======  =======  =======  =======  =======  ========
    0.5        +0.101   +0.041   +0.015   +0.0058  +0.0020  +0.00076
    0.3        +0.108   +0.044   +0.016   +0.0063  +0.0022  +0.00084
    0.1        +0.130   +0.063   +0.025   +0.0100  +0.0036  +0.0014
    0.01       -0.28    +0.012   +0.063   +0.034   +0.014   +0.0056
    =========  =======  =======  =======  =======  =======  ========

    (two categories, :math:`p` and :math:`1-p`). Three categories: (1/3,
    1/3, 1/3) +0.092, +0.037, +0.013 and (0.8, 0.1, 0.1) +0.116, +0.049,
    +0.018 at M = 10, 30, 100. Trend: the diffusion is too long by an
    absolute amount that grows like :math:`\tfrac13\ln M` (p = 0.5: 1.27,
    1.63, 2.03, 2.39, 2.79, 3.16 fits over the M above), so the relative
    error is :math:`O(\log M / M)`, not :math:`O(1/M)`. It is largest when
    some :math:`p_i` is of order :math:`1/M` (4.3% at M = 1000 for
    :math:`Mp = 1`, 0.9% for :math:`Mp = 20`), and negative when
    :math:`Mp_i < 1` at small :math:`M` (:math:`\mathbb{E}[T] \ge 1` always,
    while the diffusion tends to 0 with :math:`p`). Bound tested in
    tests/test_theory_categorical.py: :math:`0 \le \text{diffusion} -
    \text{exact} \le \tfrac13\ln M + 1` fits for every :math:`p_i \ge 0.1`,
    :math:`10 \le M \le 1000` (two categories) and :math:`M \in \{10, 30\}`
    (three).

    ``sample_size`` must be concrete; ``p`` may be traced with
    ``method="diffusion"`` and with ``method="exact"`` (then all ``K``
    categories count in the state space).

    Args:
        sample_size: tokens per fit, an integer ``M >= 2``.
        p: real distribution(s), shape ``(..., K)``.
        method: ``"exact"`` or ``"diffusion"`` (static).
        max_states: cap on the number of transient states for
            ``method="exact"`` (keyword only).

    Returns:
        Array of shape ``p.shape[:-1]``.

    References:
        THEORY.md D4; Kimura & Ohta (1969); Littler (1975); Ewens (2004).

    Example:
        >>> from theory import categorical
        >>> round(float(categorical.mean_absorption_time(2, [0.5, 0.5])), 6)  # 1 + 1/2 * 2
        2.0
    """
    _v.check_choice("method", method, ABSORPTION_METHODS)
    m = _concrete_sample_size(sample_size, "mean_absorption_time")
    _v.check_probability_vector("p", p)
    dt = _dtype(p)
    if method == "diffusion":
        p = jnp.asarray(p, dt)
        return -2.0 * m * jnp.sum(jsp.xlog1py(1.0 - p, -p), axis=-1)
    if not isinstance(max_states, int) or max_states < 1:
        raise ValueError(f"max_states must be a positive int; got {max_states!r}")
    if _v.is_concrete(p):
        arr = np.asarray(p)
        keep = np.any(arr > 0, axis=tuple(range(arr.ndim - 1)))
        p = jnp.asarray(arr[..., keep], dt)
    else:
        p = jnp.asarray(p, dt)
    k = p.shape[-1]
    one_point = jnp.sum(p > 0, axis=-1) <= 1
    if k == 1:
        return jnp.zeros(p.shape[:-1], dt)
    count = _transient_count(m, k)
    if count > max_states:
        raise ValueError(
            f"mean_absorption_time(method='exact') would need {count} transient states for "
            f"sample_size={m} and {k} categories (cap max_states={max_states}); "
            "use method='diffusion'"
        )
    states, t = _absorption_table(m, k, jnp.dtype(dt).name)
    et = _absorption_average(jnp.asarray(states, dt), jnp.asarray(t, dt), p, m=m)
    return jnp.where(one_point, 0.0, et)


# ---------------------------------------------------------------------------
# D5: the Poisson / critical branching limit (Suresh et al.).
# ---------------------------------------------------------------------------


@jax.jit
def _g_kernel(k):
    """g_k = g^(k)(inf), g(x) = 1 - exp(-x), elementwise for k >= 1 (float array)."""
    kmax = jnp.max(k).astype(jnp.int32)

    def body(j, g):
        return jnp.where(j < k, -jnp.expm1(-g), g)

    return lax.fori_loop(jnp.int32(1), kmax, body, jnp.ones_like(k))


def suresh_g(k):
    r"""The iterates :math:`g_k = g^{(k)}(\infty)` of :math:`g(x) = 1 - e^{-x}` (D5).

    :math:`g_1 = g(\infty) = 1`, :math:`g_{k+1} = 1 - e^{-g_k}`
    (:math:`g_2 = 1 - 1/e`, ...). Meaning: :math:`g_k` is the probability
    that a critical Galton-Watson process with Poisson(1) offspring, started
    from one individual, still lives after :math:`k - 1` generations
    (:math:`1 - g_{k+1} = e^{-g_k}` is the generating function of Poisson(1)
    evaluated at the extinction probability :math:`1 - g_k`).

    Bounds, proved by induction with :math:`g` increasing:
    :math:`1/k \le g_k \le 2/k \le 3/k` for every :math:`k \ge 1`. Lower:
    :math:`g(1/k) = 1 - e^{-1/k} \ge 1/(k+1)` because
    :math:`e^{1/k} \ge 1 + 1/k`. Upper: :math:`g(x) \le x - x^2/2 + x^3/6`,
    and with :math:`x = 2/k` this is :math:`\le 2/(k+1)` iff
    :math:`k^2 \le k^2 + k/3 - 2/3`, i.e. :math:`k \ge 2`; :math:`g_1 = 1 \le
    2` and :math:`g_2 = 0.632 \le 1` start it. (Suresh et al. state
    :math:`g_k \in [1/k, 3/k]`; the same induction with 3 needs
    :math:`k \ge 2` as well.) Kolmogorov's estimate for critical processes
    (offspring variance :math:`\sigma^2 = 1`) gives
    :math:`g_k \sim 2/(\sigma^2 k) = 2/k`.

    Computed by the recursion (``expm1``), one vectorised step per
    :math:`k` up to ``max(k)``; against the same recursion in 50-digit
    ``mpmath`` the float64 result is within 3.3e-15 relative up to
    :math:`k = 10^4` (the map contracts, so rounding does not pile up).
    ``k`` may be traced (the loop is a while loop).

    Args:
        k: integer values ``>= 1``, array-like.

    Returns:
        Array of ``k``'s shape.

    References:
        THEORY.md D5; Suresh et al. (2024), arXiv:2412.17646; Athreya & Ney
        (1972) (Kolmogorov's estimate for critical processes).

    Example:
        >>> from theory import categorical
        >>> round(float(categorical.suresh_g(2)), 6)  # 1 - 1/e
        0.632121
    """
    _v.check_integer("k", k, 1)
    dt = _dtype(k)
    k = jnp.asarray(k, dt)
    if k.size == 0:
        return k
    return _g_kernel(k)


def poisson_survival_probability(n, count):
    r"""P(word still present in fit ``n`` | it has ``count`` tokens in fit 1), Poisson chain (D5).

    Poisson approximation of the count chain: :math:`X_{t+1} \sim
    \mathrm{Poisson}(X_t)` (the limit of :math:`\mathrm{Bin}(M, X_t/M)` as
    :math:`M \to \infty` with :math:`X_t` fixed), i.e. a critical
    Galton-Watson process with Poisson(1) offspring: each of the
    :math:`X_t` tokens of fit :math:`t` independently leaves a Poisson(1)
    number of tokens in fit :math:`t+1`. Starting from :math:`X_1 =` ``count``
    = :math:`c`, the :math:`c` lines are independent and each survives the
    :math:`n - 1` steps to fit :math:`n` with probability :math:`g_n`
    (:func:`suresh_g`), so, exactly for the Poisson chain,

    .. math::

        P(X_n > 0 \mid X_1 = c) = 1 - (1 - g_n)^c
        \in \bigl[1 - (1 - 1/n)^c,\ 1 - (1 - \min(2/n, 1))^c\bigr].

    Relation to the exact binomial chain (:func:`survival_probability`,
    whose value here is ``survival_probability(n - 1, M, c / M)``): as
    :math:`M \to \infty` with :math:`c, n` fixed the two agree. For every
    :math:`M` the Poisson value is a *lower bound*: :math:`\mathrm{Bin}(M,
    x/M)` is smaller than :math:`\mathrm{Poisson}(x)` in the convex order
    (Hoeffding 1956: a binomial is convex-smaller than any binomial with
    more trials and the same mean; let the number of trials grow), the
    Poisson survival :math:`s^{\mathrm{Poi}}_j(x) = 1 - (1 - g_{j+1})^x` is
    concave in :math:`x`, so :math:`s^{\mathrm{Bin}}_{j+1}(x) =
    \mathbb{E}\,s^{\mathrm{Bin}}_j(\mathrm{Bin}) \ge
    \mathbb{E}\,s^{\mathrm{Poi}}_j(\mathrm{Bin}) \ge
    \mathbb{E}\,s^{\mathrm{Poi}}_j(\mathrm{Poi}) = s^{\mathrm{Poi}}_{j+1}(x)`
    by induction on :math:`j`. (Binomial
    resampling has less variance, :math:`x(1 - x/M) < x`, so a word is lost
    more slowly.) Measured, binomial over Poisson minus 1, nearly the same
    for every :math:`c \le 20`: at M = 2000, 0.09% (n = 10), 1.7% (n = 200),
    9% (n = 1000), 19% (n = 2000); at M = 500, 7% (n = 200). Roughly
    :math:`0.18\,n/M` for :math:`n \le M`.

    Args:
        n: fit index, integer ``>= 1`` (array-like, may be traced).
        count: tokens of the word in fit 1, integer ``>= 0`` (array-like).

    Returns:
        Array of the broadcast shape of ``n`` and ``count``.

    References:
        THEORY.md D5; Suresh et al. (2024), arXiv:2412.17646 (Poisson model);
        Athreya & Ney (1972).

    Example:
        >>> from theory import categorical
        >>> round(float(categorical.poisson_survival_probability(2, 1)), 6)  # 1 - 1/e
        0.632121
    """
    _v.check_integer("n", n, 1)
    _v.check_integer("count", count, 0)
    dt = _dtype(n, count)
    n, count = jnp.broadcast_arrays(jnp.asarray(n, dt), jnp.asarray(count, dt))
    g = suresh_g(n)
    val = -jnp.expm1(count * jnp.log1p(-g))
    return jnp.where(count > 0, val, 0.0)


def poisson_survival_from_rate(n, rate):
    r"""P(word present in fit ``n``) when its real data count is Poisson(``rate``) (D5).

    This is Suresh et al.'s Poisson model: the real data hold
    :math:`X_1 \sim \mathrm{Poisson}(\lambda)` tokens of the word
    (:math:`\lambda = M p_0`, the expected count) and afterwards
    :math:`X_{t+1} \sim \mathrm{Poisson}(X_t)`. Averaging
    :func:`poisson_survival_probability` over :math:`X_1`,
    :math:`\mathbb{E}[(1 - g_n)^{X_1}] = e^{-\lambda g_n}`, so

    .. math::

        P(X_n > 0) = 1 - e^{-\lambda g_n}, \qquad
        1 - e^{-\lambda/n} \le P(X_n > 0) \le 1 - e^{-2\lambda/n}
        \le 1 - e^{-3\lambda/n},

    for :math:`n \ge 1`; :math:`n = 0` gives :math:`\mathbf 1[\lambda > 0]`.
    For the exact binomial chain from real probability :math:`p`
    (``survival_probability(n, M, p)``), :math:`1 - e^{-Mp\,g_n}` is a lower
    bound for every :math:`M` (same convex-order argument as in
    :func:`poisson_survival_probability`, applied to the first step
    :math:`\mathrm{Bin}(M, p)` against :math:`\mathrm{Poisson}(Mp)` too) and
    the limit as :math:`M \to \infty` with :math:`Mp` fixed.

    Args:
        n: fit index, integer ``>= 0`` (array-like, may be traced).
        rate: expected real count :math:`\lambda \ge 0` (array-like).

    Returns:
        Array of the broadcast shape of ``n`` and ``rate``.

    References:
        THEORY.md D5; Suresh et al. (2024), arXiv:2412.17646.

    Example:
        >>> from theory import categorical
        >>> round(float(categorical.poisson_survival_from_rate(1, 2.0)), 6)  # 1 - e^-2
        0.864665
    """
    _v.check_n(n)
    _v.check_nonnegative("rate", rate)
    dt = _dtype(n, rate)
    n, rate = jnp.broadcast_arrays(jnp.asarray(n, dt), jnp.asarray(rate, dt))
    g = jnp.where(n > 0, suresh_g(jnp.maximum(n, 1.0)), jnp.inf)
    val = -jnp.expm1(-rate * g)
    return jnp.where(rate > 0, val, 0.0)


def suresh_survival_bounds(n, count, upper_constant=3.0):
    r"""Suresh et al.-type bounds on the survival of a word with ``count`` tokens in fit 1 (D5).

    From :math:`1/n \le g_n \le C/n` (:func:`suresh_g`; the catalogue and
    Suresh et al. use :math:`C = 3`, :math:`C = 2` is proved there) and the
    Poisson-chain identity of :func:`poisson_survival_probability`:

    .. math::

        \underbrace{1 - (1 - 1/n)^c}_{\text{lower}}
        \le 1 - (1 - g_n)^c \le
        \underbrace{1 - (1 - \min(C/n, 1))^c}_{\text{upper}} .

    Both bracket the Poisson chain exactly. For the exact binomial chain
    (``survival_probability(n - 1, M, c / M)``) the lower bound holds for
    every :math:`M` (the binomial survival exceeds the Poisson one, see
    :func:`poisson_survival_probability`); the upper bound holds while the
    binomial chain is close to its Poisson limit, i.e. while :math:`n` is
    small against :math:`M` (as :math:`n \to \infty` the binomial survival
    tends to the fixation probability :math:`c/M > 0` while the bound tends
    to 0). Measured for :math:`c \in \{1, 5, 20\}` at :math:`M = 500` and
    :math:`M = 2000`: with :math:`C = 3` the upper bound holds for every
    :math:`n` up to about :math:`2.2M` and fails beyond (first failure at
    :math:`n/M` = 2.22 to 2.30); with :math:`C = 2` (valid for the Poisson
    chain) it fails for the binomial chain from :math:`n \approx 0.1M`
    (:math:`n/M` = 0.08 to 0.16), because the binomial survival exceeds
    the Poisson one by about :math:`0.18\,n/M`. In words (Suresh et al.'s
    "time to forget a word is about linear in its count"): for
    :math:`1 \ll n \ll M` the survival is about :math:`1 - e^{-c g_n}
    \approx 1 - e^{-2c/n}`, which falls to 1/2 near :math:`n = 2c/\ln 2
    \approx 2.9c` (the bounds place that point between :math:`1.4c` and
    :math:`4.3c`) and then decays like :math:`2c/n`.

    We could not read the text of the paper's theorem (only its summary:
    survival :math:`\ge 1 - e^{-\lambda/k}` in the Poisson model, and the
    catalogue's :math:`g_k \in [1/k, 3/k]`); these bounds are derived here
    from the branching-process identity and are exact consequences of it.
    The version for a real expected count :math:`\lambda` is
    :func:`suresh_survival_bounds_from_rate`.

    Args:
        n: fit index, integer ``>= 1`` (array-like, may be traced).
        count: tokens in fit 1, integer ``>= 0`` (array-like).
        upper_constant: :math:`C \ge 2` (default 3, the paper's).

    Returns:
        ``(lower, upper)``, arrays of the broadcast shape of ``n`` and
        ``count``.

    References:
        THEORY.md D5; Suresh et al. (2024), arXiv:2412.17646.

    Example:
        >>> from theory import categorical
        >>> lo, hi = categorical.suresh_survival_bounds(4, 1)
        >>> float(lo), float(hi)
        (0.25, 0.75)
    """
    _v.check_integer("n", n, 1)
    _v.check_integer("count", count, 0)
    _check_upper_constant(upper_constant)
    dt = _dtype(n, count, upper_constant)
    n, count = jnp.broadcast_arrays(jnp.asarray(n, dt), jnp.asarray(count, dt))
    c = jnp.asarray(upper_constant, dt)

    def surv(g):
        return jnp.where(count > 0, -jnp.expm1(count * jnp.log1p(-g)), 0.0)

    return surv(1.0 / n), surv(jnp.minimum(c / n, 1.0))


def suresh_survival_bounds_from_rate(n, rate, upper_constant=3.0):
    r"""Bounds on the survival of a word of real expected count ``rate`` (D5, Poisson model).

    .. math::

        1 - e^{-\lambda/n} \le 1 - e^{-\lambda g_n} \le 1 - e^{-C\lambda/n},
        \qquad n \ge 1,

    from :math:`1/n \le g_n \le C/n` and
    :func:`poisson_survival_from_rate`. The lower bound is the form quoted
    from Suresh et al.'s theorem (:math:`\Pr(\Theta_{k,i} \ne 0) \ge 1 -
    e^{-\lambda_i/k}`, :math:`\lambda_i` = sample size times
    probability); it is also a lower bound for the exact binomial chain
    ``survival_probability(n, M, rate / M)`` at every :math:`M`. The upper
    bound holds for the binomial chain while :math:`n \ll M` (see
    :func:`suresh_survival_bounds`).

    Args:
        n: fit index, integer ``>= 1``.
        rate: :math:`\lambda \ge 0`, finite.
        upper_constant: :math:`C \ge 2` (default 3).

    Returns:
        ``(lower, upper)``, arrays of the broadcast shape of ``n`` and
        ``rate``.

    References:
        THEORY.md D5; Suresh et al. (2024), arXiv:2412.17646.

    Example:
        >>> from theory import categorical
        >>> lo, hi = categorical.suresh_survival_bounds_from_rate(1, 1.0)
        >>> round(float(lo), 4), round(float(hi), 4)
        (0.6321, 0.9502)
    """
    _v.check_integer("n", n, 1)
    _v.check_nonnegative("rate", rate)
    _check_upper_constant(upper_constant)
    dt = _dtype(n, rate, upper_constant)
    n, rate = jnp.broadcast_arrays(jnp.asarray(n, dt), jnp.asarray(rate, dt))
    c = jnp.asarray(upper_constant, dt)
    return -jnp.expm1(-rate / n), -jnp.expm1(-c * rate / n)


def _check_upper_constant(c) -> None:
    arr = _v._as_array("upper_constant", c)
    if arr is not None and (arr.ndim != 0 or not float(arr) >= 2.0 or not np.isfinite(arr)):
        raise ValueError(f"upper_constant must be a finite number >= 2; got {c!r}")


# ---------------------------------------------------------------------------
# Sampling bias: the infinite-M drift under temperature, top-k and top-p.
# ---------------------------------------------------------------------------


def _log_normalize(logp):
    return logp - jax.nn.logsumexp(logp, axis=-1, keepdims=True)


def _descending_order(logp):
    """Stable descending order (ties: lower index first) and each entry's rank in it."""
    order = jnp.argsort(-logp, axis=-1, stable=True)
    rank = jnp.argsort(order, axis=-1, stable=True)
    return order, rank


def _transform_log(logp, temperature, top_k, top_p):
    """One application of the sampling transform to normalised log-probabilities.

    ``temperature``, ``top_k`` and ``top_p`` are arrays or None (skipped).
    """
    if temperature is not None:
        logp = _log_normalize(logp / temperature[..., None])
    if top_k is not None:
        _, rank = _descending_order(logp)
        logp = _log_normalize(jnp.where(rank < top_k[..., None], logp, -jnp.inf))
    if top_p is not None:
        order, rank = _descending_order(logp)
        q = jnp.exp(jnp.take_along_axis(logp, order, axis=-1))
        csum = jnp.cumsum(q, axis=-1)
        before = jnp.concatenate([jnp.zeros_like(q[..., :1]), csum[..., :-1]], axis=-1)
        keep_sorted = before < top_p[..., None]
        keep = jnp.take_along_axis(keep_sorted, rank, axis=-1)
        logp = _log_normalize(jnp.where(keep, logp, -jnp.inf))
    return logp


def _sampling_args(p, temperature, top_k, top_p):
    """Validate and convert; return (dtype, log p0, temperature, top_k, top_p)."""
    _v.check_probability_vector("p", p)
    if temperature is not None:
        _v.check_positive("temperature", temperature)
    if top_k is not None:
        _v.check_integer("top_k", top_k, 1)
    if top_p is not None:
        _v.check_half_open_unit("top_p", top_p)
    dt = _dtype(p, *(a for a in (temperature, top_p) if a is not None))
    p = jnp.asarray(p, dt)
    logp = jnp.where(p > 0, jnp.log(jnp.where(p > 0, p, 1.0)), -jnp.inf)
    batch = p.shape[:-1]

    def arg(a, kind):
        return None if a is None else jnp.broadcast_to(jnp.asarray(a, kind), batch)

    if isinstance(temperature, (int, float)) and temperature == 1.0:
        temperature = None
    return dt, _log_normalize(logp), arg(temperature, dt), arg(top_k, jnp.int32), arg(top_p, dt)


def sampling_transform(p, temperature=1.0, top_k=None, top_p=None):
    r"""The distribution a model with fit ``p`` samples from under biased decoding.

    :math:`T(p)`, in the Hugging Face order (temperature, then top-k, then
    top-p), each step renormalised:

    1. temperature :math:`\tau`: :math:`p_i \propto p_i^{1/\tau}`, computed
       in log space (:math:`\log p_i / \tau` minus its log-sum-exp), so tiny
       probabilities do not underflow; :math:`p_i = 0` stays 0;
    2. top-k: keep the ``top_k`` largest probabilities (ties broken in favour
       of the lower index);
    3. top-p (nucleus): sort descending (stable, so ties go to the lower
       index) and keep a category iff the mass strictly before it is
       ``< top_p`` (so the first is always kept and the kept set is the
       smallest prefix of mass ``>= top_p``).

    ``None`` (and ``temperature=1.0``) skips a step. Pure elementwise/sort
    arithmetic: every argument may be traced; ``top_k`` larger than the
    number of categories keeps everything.

    Args:
        p: distribution(s), shape ``(..., K)``.
        temperature: :math:`\tau > 0` (scalar or batch-shaped).
        top_k: integer ``>= 1`` or None.
        top_p: in ``(0, 1]`` or None.

    Returns:
        :math:`T(p)`, same shape as ``p``.

    References:
        Holtzman et al. (2020); Hugging Face ``transformers``
        (TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper).

    Example:
        >>> from theory import categorical
        >>> q = categorical.sampling_transform([0.5, 0.3, 0.2], top_p=0.6)
        >>> [round(v, 12) for v in q.tolist()]
        [0.625, 0.375, 0.0]
    """
    _, logp, tau, k, tp = _sampling_args(p, temperature, top_k, top_p)
    return jnp.exp(_transform_log(logp, tau, k, tp))


@functools.partial(jax.jit, static_argnames=("flags",))
def _trajectory_kernel(targets, logp, tau, k, tp, *, flags):
    use_t, use_k, use_p = flags
    step = functools.partial(
        _transform_log,
        temperature=tau if use_t else None,
        top_k=k if use_k else None,
        top_p=tp if use_p else None,
    )
    return jnp.exp(_record_iterates(step, logp, targets))


def deterministic_trajectory(n, p, temperature=1.0, top_k=None, top_p=None):
    r"""Fit ``n`` in the infinite-sample limit when the model samples with a biased decoder.

    The model generates its training data from :math:`T(p_n)`
    (:func:`sampling_transform`: temperature, top-k, top-p). Fit 1 uses real
    data, so as :math:`M \to \infty` (empirical frequencies equal the
    sampling distribution)

    .. math::

        p_1 = p_0, \qquad p_{n+1} = T(p_n), \qquad\text{i.e.}\quad
        p_n = T^{\,n-1}(p_0)\ (n \ge 1).

    This is the deterministic drift only: at finite :math:`M` the
    Wright-Fisher noise of the other functions acts on top of it.

    Closed forms:

    * temperature alone: :math:`p_n \propto p_0^{\tau^{-(n-1)}}`
      (:math:`(p^{1/\tau})^{1/\tau} = p^{1/\tau^2}`, renormalising commutes
      with powers). For :math:`\tau < 1` it converges to the uniform
      distribution on the argmax set of :math:`p_0`, for :math:`\tau > 1`
      to the uniform distribution on the support of :math:`p_0`; the log
      ratio of two categories grows or shrinks geometrically,
      :math:`\log(p_{n,i}/p_{n,j}) = \tau^{-(n-1)} \log(p_{0,i}/p_{0,j})`.
    * top-k alone: :math:`p_n = p_0` restricted to its ``top_k`` largest
      entries and renormalised, for every :math:`n \ge 2` (the truncated
      vector has at most ``top_k`` positive entries, all kept again).
    * top-p alone: :math:`p_n` is :math:`p_0` restricted to a support
      :math:`S_n` and renormalised, with :math:`S_1 = \mathrm{supp}\,p_0`
      and :math:`S_{n+1}` the nucleus of :math:`p_0|_{S_n}`. The support
      shrinks until the smallest kept mass exceeds :math:`1 - ` ``top_p`` of
      the nucleus mass (the last category of a renormalised nucleus is kept
      again iff the mass before it, :math:`1 - q_{\min}`, is ``< top_p``),
      so at most :math:`K - 1` generations change it. If ``top_p <= 1/2``
      every support with two or more categories shrinks (its smallest
      renormalised mass is at most 1/2), so the limit is a point mass on the
      first argmax; for ``top_p > 1/2`` it can stop earlier (e.g. uniform
      :math:`p_0` with ``top_p > (K-1)/K`` never changes). See
      :func:`nucleus_fixed_point` for the generation at which it stops.

    ``n`` must be concrete (loop length); ``p``, ``temperature``, ``top_k``
    and ``top_p`` may be traced. Iterated in log space, so e.g.
    :math:`\tau = 0.5` for 60 generations (exponents :math:`2^{59}`) is
    handled: the non-maximal entries become exactly 0.

    Args:
        n: fit index, a non-negative int or a 1-D sequence of them.
        p: real distribution(s) :math:`p_0`, shape ``(..., K)``.
        temperature: :math:`\tau > 0` (scalar or batch-shaped).
        top_k: integer ``>= 1`` or None.
        top_p: in ``(0, 1]`` or None.

    Returns:
        :math:`p_n`, shape ``p.shape`` (scalar ``n``) or
        ``(len(n),) + p.shape``.

    References:
        Holtzman et al. (2020); Hugging Face ``transformers`` logits warpers.

    Example:
        >>> from theory import categorical
        >>> [round(v, 4) for v in categorical.deterministic_trajectory(3, [0.2, 0.8], 0.5).tolist()]
        [0.0039, 0.9961]
    """
    n_flat, scalar = _concrete_n(n, "deterministic_trajectory")
    _, logp, tau, k, tp = _sampling_args(p, temperature, top_k, top_p)
    if n_flat.size == 0:
        return jnp.zeros((0,) + logp.shape, logp.dtype)
    uniq, inverse = _unique_targets(np.maximum(n_flat - 1, 0))
    flags = (tau is not None, k is not None, tp is not None)
    zeros = jnp.zeros(logp.shape[:-1], logp.dtype)
    table = _trajectory_kernel(
        jnp.asarray(uniq, jnp.int32),
        logp,
        zeros if tau is None else tau,
        jnp.zeros(logp.shape[:-1], jnp.int32) if k is None else k,
        zeros if tp is None else tp,
        flags=flags,
    )
    out = table[jnp.asarray(inverse)]
    return out[0] if scalar else out


class NucleusFixedPoint(NamedTuple):
    """Result of :func:`nucleus_fixed_point` (arrays of the batch shape, and ``(..., K)``)."""

    generation: jax.Array  # first fit index n >= 1 with p_n = p_{n+1} = ...
    support_size: jax.Array  # categories in the limit (1 = collapsed to a point mass)
    probabilities: jax.Array  # the limit distribution


@jax.jit
def _nucleus_kernel(logp, tp):
    kdim = logp.shape[-1]

    def body(_, carry):
        lp, changes = carry
        new = _transform_log(lp, None, None, tp)
        changed = jnp.any(jnp.isfinite(new) != jnp.isfinite(lp), axis=-1)
        return new, changes + changed.astype(jnp.int32)

    zero = jnp.zeros(logp.shape[:-1], jnp.int32)
    lp, changes = lax.fori_loop(0, kdim, body, (logp, zero))
    return changes + 1, jnp.sum(jnp.isfinite(lp), axis=-1, dtype=jnp.int32), jnp.exp(lp)


def nucleus_fixed_point(p, top_p):
    r"""Where and when top-p sampling alone stops changing the fit (infinite :math:`M`).

    With top-p alone, :math:`p_n = T^{n-1}(p_0)` is :math:`p_0` restricted
    to a shrinking support (see :func:`deterministic_trajectory`). Each
    application either removes at least one category or leaves the
    distribution unchanged for ever, so after at most :math:`K - 1` changes
    the trajectory is constant. Computed by iterating :math:`T` :math:`K`
    times and counting the support changes :math:`c`: the fit is constant
    from fit ``generation`` :math:`= c + 1` on (fit 1 is :math:`p_0`; fit
    :math:`c + 1 = T^c(p_0)`). ``support_size == 1`` means collapse to a
    point mass (always the case when ``top_p <= 1/2``).

    Example: :math:`p_0 = (0.5, 0.3, 0.2)`. With ``top_p = 0.6``, fit 2 is
    :math:`(0.625, 0.375, 0)` (mass before the second category 0.5 < 0.6,
    before the third 0.8) and fit 3 the point mass (mass before the second
    is now 0.625): ``generation = 3``, ``support_size = 1``. With
    ``top_p = 0.7`` fit 3 keeps both (0.625 < 0.7): ``generation = 2``,
    ``support_size = 2``. With ``top_p = 0.5`` fit 2 is already the point
    mass: ``generation = 2``, ``support_size = 1``.

    Args:
        p: real distribution(s), shape ``(..., K)``; may be traced.
        top_p: in ``(0, 1]`` (scalar or batch-shaped); may be traced.

    Returns:
        :class:`NucleusFixedPoint` ``(generation, support_size,
        probabilities)``.

    Example:
        >>> from theory import categorical
        >>> r = categorical.nucleus_fixed_point([0.5, 0.3, 0.2], 0.7)
        >>> int(r.generation), int(r.support_size)
        (2, 2)
    """
    _, logp, _, _, tp = _sampling_args(p, 1.0, None, top_p)
    return NucleusFixedPoint(*_nucleus_kernel(logp, tp))
