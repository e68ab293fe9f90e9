r"""Constants and numerical helpers of the categorical theory (Loader's binomial form, loops)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from theory import _validate as _v
from theory.gaussian._numerics import _stirling_rem

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
    _v.check_at_most("n", arr, 2**31 - 1, "(the loop counter is int32)")
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
