r"""Remedies for the recursively refitted 1-D Gaussian: real data in the loop, growing samples.

Setting (THEORY.md G1-G6, L3, F1, F3). The real distribution is
:math:`N(\mu_0, \sigma_0^2)`; generation 0 is the real distribution and fit
:math:`n = 1, 2, \dots` is fitted to data built from fit :math:`n-1` (fit 1
sees real data only). Fitted parameters are :math:`(\mu_n, \sigma_n^2)`:
:math:`\mu_n` the sample mean, :math:`\sigma_n^2 = SS/c` the sum of squared
deviations over the divisor :math:`c` = number of points (``"mle"``) or that
number minus one (``"unbiased"``). Notation used throughout:

.. math::

    E_n = \mathbb{E}[\sigma_n^2], \qquad v_n = \operatorname{Var}(\mu_n)
        = \mathbb{E}[(\mu_n - \mu_0)^2]

(:math:`\mathbb{E}[\mu_n] = \mu_0` in every model here, by the symmetry
:math:`x \mapsto 2\mu_0 - x`), :math:`M` = ``sample_size``. Contents:

* :func:`fresh_fraction_variance`, :func:`fresh_fraction_fixed_point`
  (F1): every generation mixes :math:`R = \alpha M` fresh real samples with
  :math:`S = M - R` samples of the previous fit;
* :func:`accumulate_mean_variance` (L3, mean refitted with known
  :math:`\sigma`) and :func:`accumulate_moments` (mean and variance
  refitted): each fit pools all data so far;
* :func:`anchored_mean` (F3): a fixed real set reused every generation plus
  fresh synthetic samples, known :math:`\sigma`;
* :func:`schedule_w2`, :func:`power_schedule` (G6 with a sample-size
  schedule :math:`M_t`).

The one identity behind most derivations: for a sample pooled from two
groups of sizes :math:`R` (mean :math:`\bar x`) and :math:`S` (mean
:math:`\bar y`), with :math:`M = R + S`,

.. math::

    SS = SS_x + SS_y + \frac{RS}{M} (\bar x - \bar y)^2 .

Conventions of this module (those of :mod:`theory.gaussian`):

* Pure ``jax.numpy``; no randomness. Arguments that only enter arithmetic
  may be traced by ``jax.jit`` / ``jax.vmap``; arguments that set array
  sizes or loop lengths must be concrete and each function says which
  (passing a tracer there raises ``ValueError``).
* Array arguments broadcast against each other.
* ``estimator`` (``"mle"`` / ``"unbiased"``) and ``mixing`` (``"fixed"`` /
  ``"binomial"``) are static Python strings.
* Uniform keywords: every closed form takes ``estimator`` and ``sigma0``
  (``accumulate_mean_variance`` and ``anchored_mean`` model a known variance:
  ``estimator`` is validated and has no effect). ``power_schedule`` builds
  an input (a schedule) and takes neither.
* Float64 without ``jax_enable_x64``: concrete calls answer in float64 (NumPy
  arrays); traced calls under a user's ``jit``/``grad``/``vmap`` compute in the
  tracer's dtype. The rule, once: :mod:`theory._precision`.
* Arguments (``theory._validate``, one rule for every theory module): Python
  numbers, lists and tuples, NumPy and JAX arrays are accepted;
  integer-valued arguments must hold integers of magnitude at most ``2**53``
  (``2.5`` and ``10**20`` are refused by name); shapes that do not broadcast
  are refused in one line naming both arguments and the shape. Concrete
  inputs are validated (``ValueError`` naming the argument and the first bad
  value); traced inputs are not checked.

References:
    Shumailov, I. et al. (2024). AI models collapse when trained on
    recursively generated data. *Nature* 631, 755-759.

    Bertrand, Q., Bose, A. J., Duplessis, A., Jiralerspong, M. & Gidel, G.
    (2024). On the Stability of Iterative Retraining of Generative Models on
    their own Data. ICLR; arXiv:2310.00429.

    Alemohammad, S. et al. (2023). Self-Consuming Generative Models Go MAD.
    arXiv:2307.01850 (fresh-data loops).

    Gerstgrasser, M. et al. (2024). Is Model Collapse Inevitable? Breaking the
    Curse of Recursion by Accumulating Real and Synthetic Data.
    arXiv:2404.01413.

    Kazdan, J. et al. (2024). Collapse or Thrive? Perils and Promises of
    Synthetic Data in a Self-Generating World. arXiv:2410.16713.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theory import _validate as _v
from theory.gaussian import _B, _log_c4_h, _params

__all__ = [
    "ESTIMATORS",
    "MIXINGS",
    "ChainMoments",
    "MeanMoments",
    "ScheduleW2",
    "fresh_fraction_variance",
    "fresh_fraction_fixed_point",
    "accumulate_mean_variance",
    "accumulate_moments",
    "anchored_mean",
    "schedule_w2",
    "power_schedule",
]

ESTIMATORS = ("mle", "unbiased")
MIXINGS = ("fixed", "binomial")


class ChainMoments(NamedTuple):
    """Mean fitted variance and variance of the fitted mean (arrays of the broadcast shape)."""

    expected_variance: jax.Array  # E[sigma_n^2]
    mean_variance: jax.Array  # Var(mu_n) = E[(mu_n - mu_0)^2]


class MeanMoments(NamedTuple):
    """Mean and variance of the fitted mean :math:`\\mu_n` (arrays of the broadcast shape)."""

    mean: jax.Array
    variance: jax.Array


class ScheduleW2(NamedTuple):
    """E[W2^2] of fit n to the real law and its two parts (arrays of the broadcast shape)."""

    total: jax.Array  # mean_part + std_part
    mean_part: jax.Array  # E[(mu_n - mu_0)^2]
    std_part: jax.Array  # E[(sigma_n - sigma_0)^2]


# ---------------------------------------------------------------------------
# Helpers.
# ---------------------------------------------------------------------------


def _dtype(*xs):
    """Promotion of the inputs with Python float (lists and tuples via NumPy)."""
    scalars = (jax.Array, np.ndarray, np.generic, int, float, bool)
    return jnp.result_type(float, *(x if isinstance(x, scalars) else np.asarray(x) for x in xs))


def _int_dtype(dt):
    return jnp.int64 if jnp.dtype(dt) == jnp.dtype(jnp.float64) else jnp.int32


def _geom_sum(log_q, n):
    """sum_{k=0}^{n-1} q^k for q = exp(log_q) in [0, 1] (log_q <= 0; -inf means q = 0).

    Evaluated as expm1(n log q) / expm1(log q) (no cancellation for q near 1),
    n at q = 1 and [n > 0] at q = 0.
    """
    inner = jnp.isfinite(log_q) & (log_q < 0)
    lq = jnp.where(inner, log_q, -1.0)
    ratio = jnp.expm1(n * lq) / jnp.expm1(lq)
    at_zero = jnp.where(n > 0, 1.0, 0.0)
    return jnp.where(inner, ratio, jnp.where(log_q == 0, n, at_zero))


def _one_minus_pow(log_q, n):
    """1 - q^n for q = exp(log_q) in [0, 1], without cancellation (-expm1)."""
    finite = jnp.isfinite(log_q)
    lq = jnp.where(finite, log_q, -1.0)
    return jnp.where(finite, -jnp.expm1(n * lq), jnp.where(n > 0, 1.0, 0.0))


def _pow(log_q, n):
    """q^n for q = exp(log_q) in [0, 1] (0^0 = 1)."""
    finite = jnp.isfinite(log_q)
    lq = jnp.where(finite, log_q, -1.0)
    return jnp.where(finite, jnp.exp(n * lq), jnp.where(n > 0, 0.0, 1.0))


# Hurwitz zeta differences by the Euler-Maclaurin (asymptotic) series:
#   zeta(s, x) ~ x^(1-s)/(s-1) + x^(-s)/2 + sum_k B_2k/(2k)! (s)_(2k-1) x^(-s-2k+1),
# valid to < 1e-17 relative for x >= _ZETA_SHIFT and the s used here (<= 14).
_ZETA_SHIFT = 16
_ZETA_TERMS = 8


def _zeta_coef(s: int) -> list[float]:
    out = []
    for k in range(1, _ZETA_TERMS + 1):
        rising = math.prod(range(s, s + 2 * k - 1))
        out.append(float(_B[2 * k] / math.factorial(2 * k) * Fraction(rising)))
    return out


def _zeta_diff(s: int, x, y):
    """zeta(s, x) - zeta(s, y) = sum_j [(x+j)^-s - (y+j)^-s], x >= 16, y >= x (y may be inf).

    Every power difference x^-p - y^-p is evaluated as x^-p (-expm1(-p log(y/x)))
    with log(y/x) = log1p((y - x)/x): no cancellation when y is close to x.
    """
    log_x = jnp.log(x)
    log_ratio = jnp.log1p((y - x) / x)

    def diff(p):
        return jnp.exp(-p * log_x) * -jnp.expm1(-p * log_ratio)

    total = diff(s - 1) / (s - 1) + 0.5 * diff(s)
    for k, coef in enumerate(_zeta_coef(s), start=1):
        total = total + coef * diff(s + 2 * k - 1)
    return total


def _power_sum(s: int, a, n):
    r"""sum_{j=0}^{n-1} (a + j)^{-s} for a > 0, integer-valued n >= 0 (may be traced), s >= 2.

    The first 16 terms directly (masked by j < n), the rest as a Hurwitz zeta
    difference :math:`\zeta(s, a+16) - \zeta(s, a+n)` (:func:`_zeta_diff`).
    Every piece is a sum of positive terms: relative accuracy near machine
    precision for every n, including n = inf.
    """
    j = jnp.arange(_ZETA_SHIFT, dtype=a.dtype)
    a_ = a[..., None]
    head = jnp.sum(jnp.where(j < n[..., None], (a_ + j) ** (-s), 0.0), axis=-1)
    x = a + _ZETA_SHIFT
    y = jnp.where(n > _ZETA_SHIFT, a + n, x)
    return head + _zeta_diff(s, x, y)


def _check_whole(name: str, frac, total, total_name: str) -> None:
    """Raise unless frac * total is a whole number, for concrete inputs.

    Tolerance: 1e-9 relative (1e-5 when an input is float32), so that e.g.
    alpha = 0.1 with M = 30 passes.
    """
    if not (_v.is_concrete(frac) and _v.is_concrete(total)):
        return
    single = any(np.asarray(x).dtype == np.float32 for x in (frac, total))
    tol = 1e-5 if single else 1e-9
    f = np.asarray(frac, np.float64)
    t = np.asarray(total, np.float64)
    prod = f * t
    with np.errstate(invalid="ignore"):
        bad = np.abs(prod - np.round(prod)) > tol * np.maximum(1.0, np.abs(prod))
    if np.any(bad):
        fb, pb = np.broadcast_arrays(f, prod)
        raise ValueError(
            f"{name} must make {name} * {total_name} a whole number of samples "
            f"(here {name} * {total_name} = {float(pb[bad].reshape(-1)[0])!r}); "
            f"got {float(fb[bad].reshape(-1)[0])!r}"
        )


def _concrete_n(n, func: str):
    """Concrete generation counts as an int64 array (any shape)."""
    if not _v.is_concrete(n):
        raise ValueError(
            f"{func} needs a concrete n (it sets the number of generations summed over); "
            "got a traced value: pass n as a Python int or a concrete array"
        )
    _v.check_n(n)
    return np.asarray(n).astype(np.int64)


def _take_last(table, idx, shape):
    """table[..., idx] with the leading axes of table and idx broadcast to ``shape``."""
    tb = jnp.broadcast_to(table, shape + table.shape[-1:])
    ib = jnp.broadcast_to(idx, shape)[..., None]
    return jnp.take_along_axis(tb, ib, axis=-1)[..., 0]


# ---------------------------------------------------------------------------
# F1: a fraction of fresh real data every generation.
# ---------------------------------------------------------------------------


def _check_fresh(n, sample_size, alpha, estimator, sigma0, mixing):
    _v.check_choice("estimator", estimator, ESTIMATORS)
    _v.check_choice("mixing", mixing, MIXINGS)
    if n is not None:
        _v.check_n(n)
    _v.check_integer("sample_size", sample_size, 2)
    _v.check_unit_interval("alpha", alpha)
    if mixing == "fixed":
        _check_whole("alpha", alpha, sample_size, "sample_size")
    _v.check_positive("sigma0", sigma0)


def _count_moments(m, alpha, mixing):
    """E[R], E[S], E[S^2], E[R S], E[S (S-1)] for the number R of real samples, S = M - R."""
    if mixing == "fixed":
        r = jnp.round(alpha * m)
        s = m - r
        return r, s, s * s, r * s, s * (s - 1.0)
    r = alpha * m
    s = (1.0 - alpha) * m
    es2 = s * (alpha + s)  # M(1-a) a + M^2 (1-a)^2
    return r, s, es2, m * (m - 1.0) * alpha * (1.0 - alpha), (m - 1.0) * (1.0 - alpha) * s


def _mle_terms(m, alpha, mixing):
    """(D - 1, log q) of the MLE closed form: v_n = (1 - q^n)/D, E_n = (D - 1 + q^n)/D."""
    if mixing == "fixed":
        r = jnp.round(alpha * m)
        s = m - r
        d_minus_1 = r * (m + s - 1.0) / m
        two = s >= 2
        r_safe = jnp.where(two, r, 0.0)
        log_q = jnp.log1p(-r_safe / m) + jnp.log1p(-(r_safe + 1.0) / m)
        return d_minus_1, jnp.where(two, log_q, -jnp.inf)
    d_minus_1 = (m - 1.0) * alpha * (2.0 - alpha)
    log_q = 2.0 * jnp.log1p(-alpha) + jnp.log1p(-1.0 / m)
    return d_minus_1, log_q


def _affine_power(coefs, n, nbits: int):
    """T^n (1, 0) for the affine map T(e, v) = (a11 e + a12 v + b1, a21 e + a22 v + b2).

    Binary powering (T^(2^k) composed with itself); every coefficient is
    non-negative, so every product and sum is of non-negative terms (no
    cancellation). ``n`` integer-valued, shape broadcastable with the coefs.
    """
    a11, a12, b1, a21, a22, b2 = coefs
    n_int = n.astype(_int_dtype(n.dtype))
    e = jnp.ones_like(a11 * n)
    v = jnp.zeros_like(e)
    for k in range(nbits):
        bit = jnp.bitwise_and(jnp.right_shift(n_int, k), 1) == 1
        e_new = a11 * e + a12 * v + b1
        v_new = a21 * e + a22 * v + b2
        e = jnp.where(bit, e_new, e)
        v = jnp.where(bit, v_new, v)
        if k + 1 < nbits:  # T <- T o T
            n11 = a11 * a11 + a12 * a21
            n12 = a11 * a12 + a12 * a22
            n21 = a21 * a11 + a22 * a21
            n22 = a21 * a12 + a22 * a22
            nb1 = a11 * b1 + a12 * b2 + b1
            nb2 = a21 * b1 + a22 * b2 + b2
            a11, a12, a21, a22, b1, b2 = n11, n12, n21, n22, nb1, nb2
    return e, v


@_v.closed_form(
    integers=("n", "sample_size"),
    reals=("alpha", "sigma0"),
    broadcast=[("n", "sample_size", "alpha", "sigma0")],
)
def fresh_fraction_variance(n, sample_size, alpha, estimator="mle", sigma0=1.0, mixing="fixed"):
    r"""Mean fitted variance and variance of the fitted mean with fresh real data (F1).

    Model. Every fit uses :math:`M` points: :math:`R` fresh samples from the
    real :math:`N(\mu_0, \sigma_0^2)` and :math:`S = M - R` samples from the
    previous fit :math:`N(\mu_t, \sigma_t^2)`; fit 1 uses :math:`M` real
    samples (the "previous fit" of generation 0 is the real law). With
    ``mixing="fixed"`` (default) :math:`R = \alpha M` exactly, which must be a
    whole number (validated; ``alpha`` is rounded to ``round(alpha * M) / M``
    when traced). With ``mixing="binomial"`` every sample is real
    independently with probability :math:`\alpha`, :math:`R \sim
    \mathrm{Bin}(M, \alpha)` (any :math:`\alpha \in [0, 1]`).

    Derivation (exact). Take :math:`\mu_0 = 0`, :math:`\sigma_0 = 1` (the
    results scale with :math:`\sigma_0^2`). Given the previous fit
    :math:`(m, s^2)` and :math:`R`, the pooled mean is
    :math:`\mu' = (R\bar x + S\bar y)/M` with :math:`R\bar x \sim N(0, R)` and
    :math:`S\bar y \sim N(Sm, Ss^2)`, so
    :math:`\mathbb{E}[\mu'^2 \mid m, s, R] = (R + Ss^2 + S^2 m^2)/M^2`. With the
    pooled-sum-of-squares identity and :math:`\mathbb{E}[SS_x] = (R-1)`,
    :math:`\mathbb{E}[SS_y] = (S-1)s^2`,
    :math:`\mathbb{E}(\bar x - \bar y)^2 = 1/R + s^2/S + m^2`,

    .. math::

        \mathbb{E}[SS \mid m, s, R] = \frac{M-1}{M}\,(R + S s^2) + \frac{RS}{M}\, m^2,

    which also holds for :math:`R = 0` or :math:`S = 0`. Everything is
    linear in :math:`(s^2, m^2)`, so taking expectations (:math:`R`
    independent of the past) gives the exact affine recursion

    .. math::

        v_{t+1} &= \frac{\mathbb{E}R + \mathbb{E}S\, E_t + \mathbb{E}S^2\, v_t}{M^2},\\
        E_{t+1} &= \frac{(M-1)(\mathbb{E}R + \mathbb{E}S\, E_t)
                    + \mathbb{E}[RS]\, v_t}{M\,c},

    :math:`c = M` (MLE) or :math:`M - 1` (unbiased), from :math:`E_0 = 1`,
    :math:`v_0 = 0`. For a fixed count this is THEORY.md F1 exactly (MLE:
    :math:`E_{t+1} = \alpha c' + (1-\alpha) c' E_t + \alpha(1-\alpha) v_t`,
    :math:`v_{t+1} = \alpha/M + (1-\alpha)E_t/M + (1-\alpha)^2 v_t`,
    :math:`c' = (M-1)/M`): **F1 is verified for a deterministic count**
    :math:`R = \alpha M`. It is *not* the recursion for a random
    (binomial) count, where :math:`\mathbb{E}[RS] = M(M-1)\alpha(1-\alpha)`
    and :math:`\mathbb{E}S^2 = M^2(1-\alpha)^2 + M\alpha(1-\alpha)`.

    MLE closed form. Adding the two recursions (MLE),
    :math:`E_{t+1} + v_{t+1} = \alpha + (1-\alpha)(E_t + v_t)`: the expected
    second moment about the real mean is conserved,
    :math:`E_t + v_t = \sigma_0^2` for every :math:`t`. Then
    :math:`v_{t+1} = 1/M + q\, v_t` with :math:`q = \mathbb{E}[S(S-1)]/M^2`,
    so

    .. math::

        \operatorname{Var}(\mu_n) = \frac{\sigma_0^2}{D}(1 - q^n), \qquad
        \mathbb{E}[\sigma_n^2] = \frac{\sigma_0^2}{D}\,(D - 1 + q^n), \qquad
        D = M(1 - q),

    fixed: :math:`q = S(S-1)/M^2`, :math:`D = 1 - \alpha + \alpha M(2-\alpha)`
    (:math:`D - 1 = R(M + S - 1)/M`); binomial:
    :math:`q = (1-\alpha)^2 (M-1)/M`, :math:`D = 1 + (M-1)\alpha(2-\alpha)`.
    Both forms are sums of non-negative terms (:math:`1 - q^n` via
    ``expm1``). :math:`\alpha = 0` gives G2/G5
    (:math:`E_n = \sigma_0^2 (1-1/M)^n`).

    Unbiased. No conserved quantity; the recursion is evaluated as
    :math:`T^n(1, 0)` for the affine map :math:`T` by binary powering
    (all coefficients are non-negative, so there is no cancellation; about
    :math:`\log_2 n` compositions). :math:`\alpha = 0` gives the martingale
    :math:`E_n = \sigma_0^2`, :math:`v_n = n\sigma_0^2/M` (G2, G5).

    Args:
        n: number of fits (non-negative integer values); may be traced (then
            it must be below 2^53 in float64, 2^31 in float32).
        sample_size: points per fit, integer ``M >= 2``; may be traced.
        alpha: real fraction in ``[0, 1]``; ``alpha * M`` must be a whole
            number for ``mixing="fixed"``; may be traced.
        estimator: ``"mle"`` or ``"unbiased"`` (static).
        sigma0: real standard deviation ``> 0``.
        mixing: ``"fixed"`` (exactly :math:`\alpha M` real samples) or
            ``"binomial"`` (static).

    Returns:
        :class:`ChainMoments` ``(expected_variance, mean_variance)``, arrays of
        the broadcast shape of the inputs.

    References:
        THEORY.md F1; Bertrand et al. (2024); Alemohammad et al. (2023);
        Shumailov et al. (2024) (the :math:`\alpha = 0` chain).

    Example:
        >>> from theory import mixing
        >>> res = mixing.fresh_fraction_variance(1000, 10, 0.2)  # near the fixed point
        >>> round(float(res.mean_variance), 6)  # 1/D, D = 1 - 0.2 + 0.2*10*1.8 = 4.4
        0.227273
    """
    _check_fresh(n, sample_size, alpha, estimator, sigma0, mixing)
    dt = _dtype(n, sample_size, alpha, sigma0)
    n = jnp.asarray(n, dt)
    m = jnp.asarray(sample_size, dt)
    alpha = jnp.asarray(alpha, dt)
    s2 = jnp.asarray(sigma0, dt) ** 2
    if estimator == "mle":
        d_minus_1, log_q = _mle_terms(m, alpha, mixing)
        d = 1.0 + d_minus_1
        var_mu = s2 * _one_minus_pow(log_q, n) / d
        e_var = s2 * (d_minus_1 + _pow(log_q, n)) / d
        return ChainMoments(e_var, var_mu)
    er, es, es2, ers, _ = _count_moments(m, alpha, mixing)
    coefs = (es / m, ers / (m * (m - 1.0)), er / m, es / (m * m), es2 / (m * m), er / (m * m))
    if _v.is_concrete(n):
        nmax = int(np.max(np.asarray(n))) if n.size else 0
        nbits = max(1, nmax.bit_length())
    else:
        nbits = 53 if jnp.dtype(dt) == jnp.dtype(jnp.float64) else 31
    e, v = _affine_power(coefs, n, nbits)
    return ChainMoments(s2 * e, s2 * v)


@_v.closed_form(
    integers=("sample_size",),
    reals=("alpha", "sigma0"),
    broadcast=[("sample_size", "alpha", "sigma0")],
)
def fresh_fraction_fixed_point(sample_size, alpha, estimator="mle", sigma0=1.0, mixing="fixed"):
    r"""Long-run mean fitted variance and variance of the fitted mean with fresh data (F1).

    The limits as :math:`n \to \infty` of :func:`fresh_fraction_variance`
    (same model and arguments). MLE (from the closed form there):

    .. math::

        E_\infty = \sigma_0^2\left(1 - \frac1D\right), \qquad
        v_\infty = \frac{\sigma_0^2}{D}, \qquad
        D = \begin{cases} 1 - \alpha + \alpha M (2 - \alpha) & \text{fixed count}\\
            1 + (M-1)\alpha(2-\alpha) & \text{binomial count,}\end{cases}

    which **verifies THEORY.md F1's fixed point** (fixed count). For
    :math:`\alpha = 0`, :math:`D = 1`: :math:`E_\infty = 0`,
    :math:`v_\infty = \sigma_0^2` (collapse, G2/G5).

    Unbiased (solve the affine recursion's fixed point;
    :math:`\kappa = \mathbb{E}[RS]/((M-1)\mathbb{E}R)`):
    :math:`E_\infty = \sigma_0^2 + \kappa v_\infty`,
    :math:`v_\infty = \sigma_0^2 M / (M^2 - \mathbb{E}S^2 - \kappa\, \mathbb{E}S)`,
    i.e.

    .. math::

        \text{fixed: } v_\infty = \frac{\sigma_0^2 (M-1)}{M(M-1) - S^2},\quad
        E_\infty = \sigma_0^2 + \frac{S\, v_\infty}{M-1}; \qquad
        \text{binomial: } v_\infty = \frac{\sigma_0^2}{M\alpha(2-\alpha) - (1-\alpha)},\quad
        E_\infty = \sigma_0^2 + (1-\alpha) v_\infty .

    The unbiased chain settles *above* :math:`\sigma_0^2`. The fixed point
    exists when the affine map is a contraction: always for a fixed count
    with :math:`R \ge 1`; for a binomial count only when
    :math:`M\alpha(2-\alpha) > 1 - \alpha` (otherwise, with probability
    :math:`(1-\alpha)^M` per generation no real sample arrives, and both
    moments grow without bound: ``inf`` is returned). :math:`\alpha = 0`:
    :math:`E = \sigma_0^2` for ever and :math:`v_\infty = \infty`.

    Args:
        sample_size: points per fit, integer ``M >= 2``; may be traced.
        alpha: real fraction in ``[0, 1]`` (``alpha * M`` whole for
            ``mixing="fixed"``); may be traced.
        estimator: ``"mle"`` or ``"unbiased"`` (static).
        sigma0: real standard deviation ``> 0``.
        mixing: ``"fixed"`` or ``"binomial"`` (static).

    Returns:
        :class:`ChainMoments` ``(expected_variance, mean_variance)``.

    References:
        THEORY.md F1; Bertrand et al. (2024).

    Example:
        >>> from theory import mixing
        >>> res = mixing.fresh_fraction_fixed_point(10, 0.2)  # D = 4.4
        >>> round(float(res.expected_variance), 6), round(float(res.mean_variance), 6)
        (0.772727, 0.227273)
    """
    _check_fresh(None, sample_size, alpha, estimator, sigma0, mixing)
    dt = _dtype(sample_size, alpha, sigma0)
    m = jnp.asarray(sample_size, dt)
    alpha = jnp.asarray(alpha, dt)
    s2 = jnp.asarray(sigma0, dt) ** 2
    if estimator == "mle":
        d_minus_1, _ = _mle_terms(m, alpha, mixing)
        d = 1.0 + d_minus_1
        return ChainMoments(s2 * d_minus_1 / d, s2 / d)
    if mixing == "fixed":
        s = m - jnp.round(alpha * m)
        denom = m * (m - 1.0) - s * s
        v = (m - 1.0) / denom
        e = 1.0 + s * v / (m - 1.0)
        live = s < m
    else:
        denom = m * alpha * (2.0 - alpha) - (1.0 - alpha)
        v = 1.0 / denom
        e = 1.0 + (1.0 - alpha) * v
        live = denom > 0
    inf = jnp.asarray(jnp.inf, dt)
    no_real = alpha == 0
    e = jnp.where(live, e, jnp.where(no_real, 1.0, inf))
    v = jnp.where(live, v, inf)
    return ChainMoments(s2 * e, s2 * v)


# ---------------------------------------------------------------------------
# L3: accumulate all data.
# ---------------------------------------------------------------------------


@_v.closed_form(
    integers=("n", "sample_size"), reals=("sigma0",), broadcast=[("n", "sample_size", "sigma0")]
)
def accumulate_mean_variance(n, sample_size, sigma0=1.0, estimator="mle"):
    r"""Variance of the fitted mean when all data accumulate, :math:`\sigma` known (L3).

    Model (Gerstgrasser et al. 2024, accumulate). Fit 1 is the mean of
    :math:`M` real samples; generation :math:`t \ge 1` adds :math:`M`
    samples from :math:`N(\mu_t, \sigma_0^2)` (the variance is known and not
    refitted) and fit :math:`t+1` is the mean of all :math:`(t+1)M` points so
    far.

    Derivation. With :math:`\bar y_{t}` the mean of batch :math:`t`,
    :math:`\mu_{t+1} = (t\mu_t + \bar y_{t+1})/(t+1)
    = \mu_t + (\bar y_{t+1} - \mu_t)/(t+1)`, and
    :math:`\bar y_{t+1} - \mu_t \sim N(0, \sigma_0^2/M)` independently of the
    past. So :math:`\mu_n - \mu_0` is a sum of independent increments,

    .. math::

        \operatorname{Var}(\mu_n) = \frac{\sigma_0^2}{M}\sum_{i=1}^{n}\frac1{i^2}
        \;\uparrow\; \frac{\pi^2}{6}\frac{\sigma_0^2}{M} .

    **Index**: with fit 1 on real data and :math:`n` = number of fits, the
    sum runs to :math:`n` (fit 1 alone gives :math:`\sigma_0^2/M`);
    THEORY.md L3's :math:`\sum_{i=1}^{n+1}` is the same result with
    :math:`n` counting synthetic generations (fits after the first).

    The sum is :math:`\psi'(1) - \psi'(n+1)`, evaluated as 16 direct terms
    plus an asymptotic Hurwitz-zeta tail in stable differences (relative
    error near machine precision for every ``n``).

    Args:
        n: number of fits (non-negative integer values); may be traced.
        sample_size: points per batch, ``M >= 1`` (integer); may be traced.
        sigma0: real (and known) standard deviation ``> 0``.
        estimator: ``"mle"`` or ``"unbiased"`` (static; no effect: the
            variance is known, not refitted; accepted for a uniform signature
            and validated).

    Returns:
        Array of the broadcast shape of the inputs.

    References:
        THEORY.md L3; Gerstgrasser et al. (2024), arXiv:2404.01413.

    Example:
        >>> from theory import mixing
        >>> float(mixing.accumulate_mean_variance(2, 4))  # (1 + 1/4) / 4
        0.3125
    """
    _v.check_choice("estimator", estimator, ESTIMATORS)
    _v.check_n(n)
    _v.check_integer("sample_size", sample_size, 1)
    _v.check_positive("sigma0", sigma0)
    dt = _dtype(n, sample_size, sigma0)
    n = jnp.asarray(n, dt)
    m = jnp.asarray(sample_size, dt)
    s2 = jnp.asarray(sigma0, dt) ** 2
    return s2 / m * _power_sum(2, jnp.ones_like(n), n)


@_v.closed_form(
    integers=("n", "sample_size"), reals=("sigma0",), broadcast=[("n", "sample_size", "sigma0")]
)
def accumulate_moments(n, sample_size, estimator="mle", sigma0=1.0):
    r"""Mean fitted variance and variance of the fitted mean when data accumulate (both refitted).

    Model. Batch 1 is :math:`M` real samples; fit :math:`t` fits mean and
    variance to the pooled :math:`tM` points of batches :math:`1..t`
    (:math:`\sigma_t^2 = SS_t/c_t`, :math:`c_t = tM` for the MLE, :math:`tM - 1`
    unbiased); batch :math:`t+1` is :math:`M` samples from
    :math:`N(\mu_t, \sigma_t^2)`.

    Derivation (exact). Pooling the old :math:`tM` points (mean
    :math:`\mu_t`) with the new batch (mean :math:`\bar y`, within sum of
    squares :math:`W`):
    :math:`SS_{t+1} = SS_t + W + \frac{tM}{t+1}(\bar y - \mu_t)^2`, and given
    fit :math:`t`, :math:`\mathbb{E}W = (M-1)\sigma_t^2`,
    :math:`\mathbb{E}(\bar y - \mu_t)^2 = \sigma_t^2/M`. Hence
    :math:`\mathbb{E}[SS_{t+1} \mid \mathcal F_t] = SS_t + \sigma_t^2 (M - \frac1{t+1})`,
    linear in :math:`SS_t`, so with :math:`e_t = \mathbb{E}[\sigma_t^2]`:

    .. math::

        \text{MLE: } e_n = \sigma_0^2 \prod_{i=1}^{n}\left(1 - \frac{1}{M i^2}\right)
        \;\downarrow\; \sigma_0^2\, \frac{\sin(\pi/\sqrt M)}{\pi/\sqrt M}; \qquad
        \text{unbiased: } e_n = \sigma_0^2 \prod_{i=2}^{n}\left(1 - \frac{1}{i(iM - 1)}\right),

    both bounded away from 0 (Euler's product
    :math:`\prod_i (1 - z^2/i^2) = \sin(\pi z)/(\pi z)`): no collapse. The
    mean moves by the martingale increments
    :math:`\mu_{t+1} - \mu_t = (\bar y - \mu_t)/(t+1)`, of conditional
    variance :math:`\sigma_t^2/(M(t+1)^2)`, so (with :math:`e_0 = \sigma_0^2`)

    .. math::

        \operatorname{Var}(\mu_n) = \frac1M \sum_{i=1}^{n} \frac{e_{i-1}}{i^2}
        \;<\; \frac{\pi^2}{6}\frac{\sigma_0^2}{M}

    (both estimators have :math:`e_t \le \sigma_0^2`).

    For the MLE the pooled mean of :math:`x^2` is a martingale (a new batch
    has expected mean square :math:`\sigma_t^2 + \mu_t^2`, the pooled mean
    square of the old data), so :math:`e_n + \operatorname{Var}(\mu_n) =
    \sigma_0^2` exactly and :math:`\operatorname{Var}(\mu_n) \to
    \sigma_0^2[1 - \sin(\pi z)/(\pi z)]`, :math:`z = 1/\sqrt M` (telescoping the sum
    confirms it: :math:`e_{i-1}/(Mi^2) = e_{i-1} - e_i`).

    Both estimators are evaluated by cumulative sums
    over :math:`i = 1..\max n` (the products by cumulative sums of
    ``log1p``), so ``n`` must be concrete. With :math:`\sigma` known
    (:math:`e_t \equiv \sigma_0^2`) this reduces to
    :func:`accumulate_mean_variance`.

    Args:
        n: number of fits, concrete non-negative integers (array-like).
        sample_size: points per batch, integer ``M >= 2``; may be traced.
        estimator: ``"mle"`` or ``"unbiased"`` (static).
        sigma0: real standard deviation ``> 0``.

    Returns:
        :class:`ChainMoments` ``(expected_variance, mean_variance)``, arrays of
        the broadcast shape of ``n``, ``sample_size`` and ``sigma0``.

    References:
        Gerstgrasser et al. (2024), arXiv:2404.01413 (accumulate regime);
        Kazdan et al. (2024), arXiv:2410.16713.

    Example:
        >>> from theory import mixing
        >>> res = mixing.accumulate_moments(1, 10)  # fit 1: the real-data MLE
        >>> round(float(res.expected_variance), 6), round(float(res.mean_variance), 6)
        (0.9, 0.1)
    """
    n_np = _concrete_n(n, "accumulate_moments")
    _v.check_choice("estimator", estimator, ESTIMATORS)
    _v.check_integer("sample_size", sample_size, 2)
    _v.check_positive("sigma0", sigma0)
    dt = _dtype(sample_size, sigma0)
    m = jnp.asarray(sample_size, dt)
    s2 = jnp.asarray(sigma0, dt) ** 2
    shape = jnp.broadcast_shapes(n_np.shape, m.shape, s2.shape)
    nmax = int(n_np.max()) if n_np.size else 0
    i = jnp.arange(1, nmax + 1, dtype=dt)
    mm = m[..., None]
    if estimator == "mle":
        log_f = jnp.log1p(-1.0 / (mm * i * i))
    else:
        log_f = jnp.where(i >= 2, jnp.log1p(-1.0 / (i * (i * mm - 1.0))), 0.0)
    zero = jnp.zeros(m.shape + (1,), dt)
    e_table = jnp.exp(jnp.concatenate([zero, jnp.cumsum(log_f, axis=-1)], axis=-1))
    increments = e_table[..., :-1] / (i * i) / mm
    v_table = jnp.concatenate([zero, jnp.cumsum(increments, axis=-1)], axis=-1)
    idx = jnp.asarray(n_np)
    e = _take_last(e_table, idx, shape)
    v = _take_last(v_table, idx, shape)
    return ChainMoments(s2 * e, s2 * v)


# ---------------------------------------------------------------------------
# F3: a fixed real set reused every generation.
# ---------------------------------------------------------------------------


@_v.closed_form(
    integers=("n", "sample_size"),
    reals=("lam", "sigma0", "mu0", "real_mean"),
    broadcast=[("n", "sample_size", "lam", "sigma0", "mu0", "real_mean")],
)
def anchored_mean(n, sample_size, lam, sigma0=1.0, mu0=0.0, real_mean=None, estimator="mle"):
    r"""Mean and variance of :math:`\mu_n` anchored by a fixed real set (F3).

    Model (known :math:`\sigma_0`, only the mean is refitted). A real set of
    :math:`R` points is drawn once from :math:`N(\mu_0, \sigma_0^2)`; its
    mean is :math:`\bar x`. Every fit uses :math:`M` = ``sample_size``
    points: the same :math:`R = (1-\lambda)M` real points plus
    :math:`S = \lambda M` fresh samples from the previous fit
    :math:`N(\mu_t, \sigma_0^2)` (fit 1: from the real law, generation 0), so
    :math:`\lambda = S/(R+S)` is the synthetic fraction and
    :math:`\lambda M` must be a whole number. (Bertrand et al. weigh the
    synthetic part by the ratio :math:`\lambda_B = S/R`; here
    :math:`\lambda = \lambda_B/(1+\lambda_B)`.)

    Derivation. :math:`\mu_{t+1} = (R\bar x + S\bar y_t)/M` with
    :math:`\bar y_t \sim N(\mu_t, \sigma_0^2/S)`, i.e. the AR(1)

    .. math::

        \mu_{t+1} - \bar x = \lambda(\mu_t - \bar x) + \lambda\sigma_0 Z_t/\sqrt S,
        \qquad \text{started at the real mean } \mu_0 \text{ (generation 0)},

    toward the real-set mean with coefficient :math:`\lambda`. Conditional on
    the real set (:math:`\lambda^2/S = \lambda/M`):

    .. math::

        \mathbb{E}[\mu_n \mid \bar x] = \bar x + \lambda^n(\mu_0 - \bar x), \qquad
        \operatorname{Var}(\mu_n \mid \bar x) = \frac{\sigma_0^2\lambda}{M}
            \frac{1 - \lambda^{2n}}{1 - \lambda^2}.

    Unconditionally (:math:`\bar x - \mu_0 \sim N(0, \sigma_0^2/R)`,
    independent of the :math:`Z_t`): :math:`\mathbb{E}[\mu_n] = \mu_0` and

    .. math::

        \operatorname{Var}(\mu_n) = \frac{\sigma_0^2}{M}\left[
            (1 - \lambda^n)\,\frac{1 - \lambda^n}{1 - \lambda}
            + \lambda\,\frac{1 - \lambda^{2n}}{1 - \lambda^2}\right]
        \;\to\; \frac{\sigma_0^2}{R}\,\frac{R + 3S}{R + 2S},

    bounded: at most :math:`1.5\,\sigma_0^2/R` however many generations.
    :math:`\lambda = 1` (no real set) gives the replace chain
    :math:`n\sigma_0^2/M` (G5 with known :math:`\sigma`); :math:`\lambda = 0`
    gives :math:`\sigma_0^2/M` (every fit is the real-set mean). The geometric
    sums are evaluated with ``expm1`` (exact limits at :math:`\lambda = 0, 1`).

    Args:
        n: number of fits (non-negative integer values); may be traced.
        sample_size: points per fit ``M = R + S`` (integer ``>= 1``); may be
            traced.
        lam: synthetic fraction :math:`\lambda \in [0, 1]` with
            ``lam * sample_size`` whole; may be traced.
        sigma0: real (known) standard deviation ``> 0``.
        mu0: real mean.
        real_mean: if given, the realised real-set mean :math:`\bar x`: the
            moments are then conditional on the real set.
        estimator: ``"mle"`` or ``"unbiased"`` (static; no effect: the
            variance is known, not refitted; accepted for a uniform signature
            and validated).

    Returns:
        :class:`MeanMoments` ``(mean, variance)`` of :math:`\mu_n`, arrays of
        the broadcast shape of the inputs.

    References:
        THEORY.md F3; Bertrand et al. (2024), arXiv:2310.00429.

    Example:
        >>> from theory import mixing
        >>> round(float(mixing.anchored_mean(1, 10, 0.5).variance), 6)  # fit 1: all real
        0.1
    """
    _v.check_choice("estimator", estimator, ESTIMATORS)
    _v.check_n(n)
    _v.check_integer("sample_size", sample_size, 1)
    _v.check_unit_interval("lam", lam)
    _check_whole("lam", lam, sample_size, "sample_size")
    _v.check_positive("sigma0", sigma0)
    _v.check_not_nan("mu0", mu0)
    if real_mean is not None:
        _v.check_not_nan("real_mean", real_mean)
    extra = () if real_mean is None else (real_mean,)
    dt = _dtype(n, sample_size, lam, sigma0, mu0, *extra)
    n = jnp.asarray(n, dt)
    m = jnp.asarray(sample_size, dt)
    lam = jnp.asarray(lam, dt)
    s2 = jnp.asarray(sigma0, dt) ** 2
    mu0 = jnp.asarray(mu0, dt)
    pos = lam > 0
    log_lam = jnp.where(pos, jnp.log(jnp.where(pos, lam, 1.0)), -jnp.inf)
    noise = s2 / m * lam * _geom_sum(2.0 * log_lam, n)
    if real_mean is not None:
        xbar = jnp.asarray(real_mean, dt)
        mean = xbar + _pow(log_lam, n) * (mu0 - xbar)
        shape = jnp.broadcast_shapes(mean.shape, noise.shape)
        return MeanMoments(jnp.broadcast_to(mean, shape), jnp.broadcast_to(noise, shape))
    anchor = s2 / m * _one_minus_pow(log_lam, n) * _geom_sum(log_lam, n)
    var = anchor + noise
    shape = jnp.broadcast_shapes(var.shape, mu0.shape)
    return MeanMoments(jnp.broadcast_to(mu0, shape), jnp.broadcast_to(var, shape))


# ---------------------------------------------------------------------------
# G6 with a sample-size schedule.
# ---------------------------------------------------------------------------


@_v.closed_form(
    integers=("n", "sample_sizes"),
    reals=("sigma0",),
    broadcast=[("n", ("sample_sizes", 1), "sigma0")],
)
def schedule_w2(n, sample_sizes, estimator="unbiased", sigma0=1.0):
    r"""Expected squared W2 distance to the real law with a sample-size schedule :math:`M_t` (G6).

    Model: the replace chain of :mod:`theory.gaussian` with fit :math:`t`
    fitted to :math:`M_t` samples of fit :math:`t-1`. The chain G1 becomes
    :math:`\sigma_n^2 = \sigma_0^2\prod_{t\le n} G_t`,
    :math:`G_t \sim \chi^2_{M_t-1}/c_t` independent, and
    :math:`\mu_t = \mu_{t-1} + \sigma_{t-1}Z_t/\sqrt{M_t}`. With
    :math:`r_t = (M_t-1)/c_t`, :math:`a_t = c_4(M_t)\sqrt{r_t}` (G4),
    :math:`P_n = \prod_{t\le n} r_t` and :math:`A_n = \prod_{t\le n} a_t`:

    .. math::

        \mathbb{E}[W_2^2] = \underbrace{\sigma_0^2\sum_{t=1}^{n}\frac{P_{t-1}}{M_t}}_{
            \mathbb{E}(\mu_n-\mu_0)^2}
        + \underbrace{\sigma_0^2\left[(1 - A_n)^2 + P_n - A_n^2\right]}_{
            \mathbb{E}(\sigma_n-\sigma_0)^2},

    (:math:`W_2^2 = (\mu_n-\mu_0)^2 + (\sigma_n-\sigma_0)^2` for Gaussians);
    :math:`P_n - A_n^2 = A_n^2(\prod_t c_4(M_t)^{-2} - 1)` is evaluated with
    ``expm1``. A constant schedule gives
    :func:`theory.gaussian.expected_w2_squared`.

    When it stays bounded. Unbiased (:math:`r_t = 1`): the mean part is
    :math:`\sigma_0^2\sum_t 1/M_t` and the scale part is
    :math:`2\sigma_0^2(1 - A_n) \le 2\sigma_0^2`, so :math:`\mathbb{E}[W_2^2]`
    stays bounded **iff** :math:`\sum_t 1/M_t < \infty` (Shumailov's
    divergence, G8, is the constant schedule). For
    :math:`M_t = \lceil M_0 t^p\rceil`: bounded for :math:`p > 1`; for
    :math:`p = 1` it grows like :math:`(\sigma_0^2/M_0)\ln n`, for
    :math:`p < 1` like :math:`\sigma_0^2 n^{1-p}/(M_0(1-p))`. Since
    :math:`\log c_4(M) \approx -1/(4M)`, :math:`A_n` tends to a positive limit
    (and :math:`\sigma_n` to a non-degenerate limit: :math:`\log\sigma_n^2`
    is then an :math:`L^2`-bounded martingale plus a convergent drift) iff
    the same sum converges; otherwise :math:`\sigma_n \to 0` almost surely.
    MLE: the mean part telescopes to :math:`\sigma_0^2(1 - P_n)` and
    :math:`\mathbb{E}[W_2^2] \le 2\sigma_0^2` always; it tends to
    :math:`2\sigma_0^2` (collapse) iff :math:`\sum_t 1/M_t = \infty`.

    Args:
        n: number of fits (non-negative integers, at most the schedule
            length); may be traced (then out-of-range values are clamped by
            the gather, unchecked).
        sample_sizes: the schedule :math:`M_1, M_2, \dots` on the last axis
            (each ``>= 2``), shape ``(..., L)``; leading axes are batch axes.
            May be traced (its length is static).
        estimator: ``"mle"`` or ``"unbiased"`` (static).
        sigma0: real standard deviation ``> 0``.

    Returns:
        :class:`ScheduleW2` ``(total, mean_part, std_part)``, arrays of the
        broadcast shape of ``n``, ``sample_sizes.shape[:-1]`` and ``sigma0``.

    References:
        THEORY.md G6, G8; Shumailov et al. (2024); Kazdan et al. (2024) and
        Gerstgrasser et al. (2024) (growing data).

    Example:
        >>> from theory import mixing
        >>> res = mixing.schedule_w2(2, [2, 2], "unbiased")  # M_t = 2: 2/2 + 2(1 - 2/pi)
        >>> round(float(res.total), 4)
        1.7268
    """
    _v.check_choice("estimator", estimator, ESTIMATORS)
    _v.check_n(n)
    _v.check_positive("sigma0", sigma0)
    if _v.is_concrete(sample_sizes):
        arr = np.asarray(sample_sizes)
        if arr.ndim == 0:
            raise ValueError(
                "sample_sizes must hold the schedule M_1..M_L on its last axis; got shape ()"
            )
        _v.check_sample_size(arr, "sample_sizes")
        length = arr.shape[-1]
    else:
        length = sample_sizes.shape[-1]
    if _v.is_concrete(n):
        n_arr = np.asarray(n)
        if n_arr.size and int(n_arr.max()) > length:
            raise ValueError(
                f"n must be at most the schedule length {length}; got {int(n_arr.max())}"
            )
    dt = _dtype(n, sample_sizes, sigma0)
    ms = jnp.asarray(sample_sizes, dt)
    s2 = jnp.asarray(sigma0, dt) ** 2
    m, h, _, log_r = _params(ms, estimator, dt)
    zero = jnp.zeros(ms.shape[:-1] + (1,), dt)
    cum_log_r = jnp.concatenate([zero, jnp.cumsum(log_r, axis=-1)], axis=-1)
    cum_log_c4 = jnp.concatenate([zero, jnp.cumsum(_log_c4_h(h), axis=-1)], axis=-1)
    mean_terms = jnp.exp(cum_log_r[..., :-1]) / m
    mean_table = jnp.concatenate([zero, jnp.cumsum(mean_terms, axis=-1)], axis=-1)
    idx = jnp.asarray(n).astype(_int_dtype(dt))
    shape = jnp.broadcast_shapes(idx.shape, ms.shape[:-1], s2.shape)
    lr = _take_last(cum_log_r, idx, shape)
    lc = _take_last(cum_log_c4, idx, shape)
    mean_part = s2 * _take_last(mean_table, idx, shape)
    bias = jnp.expm1(lc + 0.5 * lr)  # A_n - 1
    var_sigma = -jnp.exp(lr) * jnp.expm1(2.0 * lc)  # P_n - A_n^2
    std_part = s2 * (bias * bias + var_sigma)
    return ScheduleW2(mean_part + std_part, mean_part, std_part)


@_v.closed_form(integers=("n",), reals=("m0", "power"), broadcast=[("m0", "power")])
def power_schedule(n, m0, power):
    r"""The sample-size schedule :math:`M_t = \lceil M_0 t^p \rceil`, :math:`t = 1..n`.

    :math:`p > 1` keeps :math:`\sum_t 1/M_t` finite (bounded
    :math:`\mathbb{E}[W_2^2]`, no collapse); :math:`p \le 1` does not (see
    :func:`schedule_w2`). To absorb the rounding of :math:`t^p`, a value
    within 16 machine epsilons (relative) above an integer counts as that
    integer (so :math:`M_0 t^p` that is mathematically an integer is not
    rounded up).

    Args:
        n: schedule length, a concrete integer ``>= 0``.
        m0: :math:`M_0 > 1` (so that every :math:`M_t \ge 2`); may be traced.
        power: :math:`p \ge 0`; may be traced.

    Returns:
        Array of shape ``(n,)`` (float dtype, integer values), or
        ``m0/power``'s broadcast shape ``+ (n,)``.

    Example:
        >>> from theory import mixing
        >>> [int(x) for x in mixing.power_schedule(4, 10, 2)]
        [10, 40, 90, 160]
    """
    if not _v.is_concrete(n):
        raise ValueError("power_schedule needs a concrete n (the schedule length); got a tracer")
    _v.check_integer("n", n, 0)
    if np.ndim(n) != 0:
        raise ValueError(
            f"n must be a single integer (the schedule length); got shape {np.shape(n)}"
        )
    if _v.is_concrete(m0):
        arr = np.asarray(m0, np.float64)
        bad = ~(arr > 1) | ~np.isfinite(arr)
        if np.any(bad):
            raise ValueError(
                f"m0 must be a finite number > 1 (so that every M_t >= 2); "
                f"got {float(arr[bad].reshape(-1)[0])!r}"
            )
    _v.check_finite_nonnegative("power", power)
    dt = _dtype(m0, power)
    m0 = jnp.asarray(m0, dt)[..., None]
    power = jnp.asarray(power, dt)[..., None]
    t = jnp.arange(1, int(n) + 1, dtype=dt)
    x = m0 * t**power
    tol = 16.0 * jnp.finfo(dt).eps
    return jnp.ceil(x * (1.0 - tol))
