"""Constants and numerical helpers shared by the Gaussian theory (branch-free, grad-safe)."""

from __future__ import annotations

import math
from fractions import Fraction

import jax.numpy as jnp
import numpy as np
from jax.scipy import special as jsp

from theory import _validate as _v

ESTIMATORS = ("mle", "unbiased")
CDF_METHODS = ("saddlepoint", "normal")

# ---------------------------------------------------------------------------
# Constants: Bernoulli numbers and the asymptotic series built from them.
# ---------------------------------------------------------------------------


def _bernoulli(count: int) -> list[Fraction]:
    """B_0..B_{count-1} (B_1 = -1/2), exact."""
    b = [Fraction(1)]
    for m in range(1, count):
        b.append(-sum(math.comb(m + 1, j) * b[j] for j in range(m)) / (m + 1))
    return b


_B = _bernoulli(40)
_N_ASYM = 8  # terms of the large-argument series, used for x >= _X_ASYM
_X_ASYM = 10.0  # first omitted term is below 4e-18 relative there
# psi(x) - log(x) ~ -1/(2x) - sum_j B_{2j} / (2j x^{2j})
_PSI_COEF = [float(-_B[2 * j] / (2 * j)) for j in range(1, _N_ASYM + 1)]
# log Gamma(x) - [(x - 1/2) log x - x + log(2 pi)/2] ~ sum_j B_{2j} / (2j (2j-1) x^{2j-1})
_STIRLING_COEF = [float(_B[2 * j] / (2 * j * (2 * j - 1))) for j in range(1, _N_ASYM + 1)]
# log c4 = lgamma(h + 1/2) - lgamma(h) - log(h)/2 ~ sum_{k odd} (2^-k - 2) B_{k+1} / (k (k+1) h^k)
_LOGC4_COEF = [
    float((Fraction(1, 2**k) - 2) * _B[k + 1] / (k * (k + 1))) for k in range(1, 2 * _N_ASYM, 2)
]
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_EULER_GAMMA = 0.5772156649015329

# Normalised polygamma coefficients (see _norm_polygamma).
_PG_SHIFT = 30
_PG_NBERN = 8
_MAX_PG_ORDER = 27


def _pg_asym_table() -> np.ndarray:
    """T[m-1, j-1] = B_{2j}/(2j)! * (m+1)(m+2)...(m+2j-1) for the zeta tail."""
    table = np.zeros((_MAX_PG_ORDER, _PG_NBERN))
    for m in range(1, _MAX_PG_ORDER + 1):
        for j in range(1, _PG_NBERN + 1):
            rising = math.prod(range(m + 1, m + 2 * j))
            table[m - 1, j - 1] = float(_B[2 * j] / math.factorial(2 * j)) * rising
    return table


_PG_ASYM = _pg_asym_table()

# Saddlepoint numerics.
# |u| below rho: Taylor series around the mean (n_terms terms); above: closed
# forms. float32 uses a wider series region: the closed forms lose about
# eps / rho^2 relative accuracy at its edge.
_SP_CONFIG = {"float64": (0.1, 17), "float32": (0.4, 26)}
_NEWTON_STEPS = 8
_Z_FLOOR = 1e-6  # smallest Gamma argument h + s the saddlepoint solver visits

# expected_tail_mass: each of the two grid truncations holds at most
# exp(-_TAIL_LOG_MASS) (about 2.3e-16) of probability per generation.
_TAIL_LOG_MASS = 36.0


# ---------------------------------------------------------------------------
# Small numerical helpers (branch-free; safe under grad).
# ---------------------------------------------------------------------------


def _dtype(*xs):
    return jnp.result_type(float, *xs)


def _is_f64(dtype) -> bool:
    return jnp.dtype(dtype) == jnp.dtype(jnp.float64)


def _poly(coefs, x):
    """sum_i coefs[i] * x**i for constant coefficients (small |x|)."""
    return jnp.sum(_powers(x, len(coefs)) * jnp.asarray(coefs, x.dtype), axis=-1)


def _powers(u, count):
    """u**0 .. u**(count-1) stacked on a new last axis (grad-safe at u = 0)."""
    reps = jnp.broadcast_to(u[..., None], u.shape + (count - 1,))
    return jnp.concatenate([jnp.ones_like(u)[..., None], jnp.cumprod(reps, axis=-1)], axis=-1)


def _psi_minus_log(x):
    """digamma(x) - log(x), accurate for large x (no cancellation)."""
    big = x >= _X_ASYM
    xb = jnp.where(big, x, _X_ASYM)
    xs = jnp.where(big, 1.0, x)
    y = 1.0 / (xb * xb)
    series = -0.5 / xb + y * _poly(_PSI_COEF, y)
    return jnp.where(big, series, jsp.digamma(xs) - jnp.log(xs))


def _stirling_rem(x):
    """lgamma(x) - [(x - 1/2) log x - x + log(2 pi)/2]."""
    big = x >= _X_ASYM
    xb = jnp.where(big, x, _X_ASYM)
    xs = jnp.where(big, 1.0, x)
    y = 1.0 / (xb * xb)
    series = _poly(_STIRLING_COEF, y) / xb
    direct = jsp.gammaln(xs) - (xs - 0.5) * jnp.log(xs) + xs - _HALF_LOG_2PI
    return jnp.where(big, series, direct)


def _log_c4_h(h):
    """log c4(M) with h = (M-1)/2: lgamma(h+1/2) - lgamma(h) - log(h)/2."""
    big = h >= _X_ASYM
    hb = jnp.where(big, h, _X_ASYM)
    hs = jnp.where(big, 1.0, h)
    y = 1.0 / (hb * hb)
    series = _poly(_LOGC4_COEF, y) / hb
    direct = jsp.gammaln(hs + 0.5) - jsp.gammaln(hs) - 0.5 * jnp.log(hs)
    return jnp.where(big, series, direct)


def _log1pmx(u):
    """log(1 + u) - u for u > -1, accurate near 0."""
    small = jnp.abs(u) < 0.1
    us = jnp.where(small, u, 0.0)
    ud = jnp.where(small, 0.5, u)
    coefs = [(-1.0) ** (j + 1) / j for j in range(2, 19)]  # u^2 * (c2 + c3 u + ...)
    series = us * us * _poly(coefs, us)
    return jnp.where(small, series, jnp.log1p(ud) - ud)


def _expm1mx(e):
    """exp(e) - 1 - e, accurate near 0."""
    small = jnp.abs(e) < 0.1
    es = jnp.where(small, e, 0.0)
    ed = jnp.where(small, 0.5, e)
    coefs = [1.0 / math.factorial(j) for j in range(2, 16)]
    series = es * es * _poly(coefs, es)
    return jnp.where(small, series, jnp.expm1(ed) - ed)


def _mills(t):
    """Mills ratio (1 - Phi(t)) / phi(t) for t >= 0, stable for large t."""
    return math.sqrt(0.5 * math.pi) * jsp.erfcx(t * (1.0 / math.sqrt(2.0)))


def _params(sample_size, estimator, dtype):
    """(M, h, c, log r) for the given estimator, in `dtype`."""
    m = jnp.asarray(sample_size, dtype)
    nu = m - 1.0
    if estimator == "mle":
        c = m
        log_r = jnp.log1p(-1.0 / m)
    else:
        c = nu
        log_r = jnp.zeros_like(m)
    return m, 0.5 * nu, c, log_r


def _drift(h, log_r):
    """E[log G] = psi(h) + log(2/c) = [psi(h) - log h] + log r."""
    return _psi_minus_log(h) + log_r


def _cgf(h, log_r, s):
    """k(s) = log E[G^s] = s log(2/c) + lgamma(h+s) - lgamma(h), stable, s > -h."""
    u = s / h
    l1p = jnp.log1p(u)
    return (
        s * log_r
        + h * (u * l1p + _log1pmx(u))
        - 0.5 * l1p
        + _stirling_rem(h + s)
        - _stirling_rem(h)
    )


def _check_common(n=None, sample_size=None, estimator=None, sigma0=None):
    if estimator is not None:
        _v.check_choice("estimator", estimator, ESTIMATORS)
    if n is not None:
        _v.check_n(n)
    if sample_size is not None:
        _v.check_sample_size(sample_size)
    if sigma0 is not None:
        _v.check_positive("sigma0", sigma0)


def _with_unused(out, *unused):
    """``out`` broadcast against arguments accepted for a uniform signature but without effect."""
    shape = jnp.broadcast_shapes(jnp.shape(out), *(jnp.shape(u) for u in unused))
    return jnp.broadcast_to(out, shape)


# The argument rule of every public function (theory._validate.closed_form).
_INTEGERS = ("n", "sample_size")
_COMMON = ("n", "sample_size", "sigma0")
