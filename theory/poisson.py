r"""Exact theory for the recursively refitted Poisson distribution.

Setting. Generation 0 is the real distribution :math:`\mathrm{Poisson}(\lambda_0)`.
Fit :math:`n = 1, 2, \dots` is the maximum-likelihood estimate (the sample
mean) from :math:`M` = ``sample_size`` draws of fit :math:`n-1`; fit 1 uses
real data:

.. math::

    \lambda_1 = \frac1M \sum_{i=1}^M X_i,\ X_i \overset{iid}{\sim}
    \mathrm{Poisson}(\lambda_0), \qquad
    \lambda_{n+1} = \frac1M \sum_{i=1}^M X_i,\ X_i \overset{iid}{\sim}
    \mathrm{Poisson}(\lambda_n).

A sum of :math:`M` independent :math:`\mathrm{Poisson}(\lambda)` is
:math:`\mathrm{Poisson}(M\lambda)`, so the integer count
:math:`S_n = M\lambda_n` (:math:`n \ge 1`) is the Markov chain

.. math::

    S_1 \sim \mathrm{Poisson}(M\lambda_0), \qquad
    S_{n+1} \mid S_n \sim \mathrm{Poisson}(S_n),

a critical Galton-Watson branching process with Poisson(1) offspring (each of
the :math:`S_n` units of fit :math:`n` leaves an independent Poisson(1)
number of units in fit :math:`n+1`), started from a Poisson number of
ancestors. 0 is absorbing: once a fit has rate 0 every later sample is all
zeros. :math:`\lambda_n` is a martingale, yet it is absorbed at 0 with
probability 1 ("model collapse"); the survivors carry the mean,
:math:`\mathbb{E}[\lambda_n \mid \lambda_n \ne 0] = \lambda_0 / P(\lambda_n
\ne 0) \approx n/(2M)` for large :math:`n`. The expected extinction
generation is infinite (:math:`P(\lambda_n \ne 0) \sim 2M\lambda_0/n` is not
summable), so this module gives the survival law instead of a mean time.

Contents: :func:`expected_rate`, :func:`rate_variance`,
:func:`zero_probability`, :func:`survival_probability`, its large-:math:`n`
form :func:`survival_asymptote`, and the Suresh et al. iterates
:func:`suresh_g` (THEORY.md D5).

Conventions (those of every ``theory`` module; see :mod:`theory.mixing`):

* ``n`` is the number of fits, ``n = 0`` meaning the real distribution
  (:math:`\lambda_0` itself).
* Uniform keywords: every closed form of the chain takes ``n``,
  ``sample_size`` and ``lam0`` (in that order, by position or keyword);
  :func:`suresh_g` is the chain-free sequence :math:`g_k` and takes ``k`` only.
* Pure ``jax.numpy``; no randomness; every argument may be traced by
  ``jax.jit`` / ``jax.vmap`` (nothing sets a shape or a loop length), and the
  functions are differentiable in ``lam0`` (``jax.grad``).
* Arguments broadcast together; the computation dtype is the promotion of the
  inputs with Python ``float``.
* Float64 without ``jax_enable_x64`` (``theory._precision``): with x64 off
  and every argument concrete, the function is evaluated in float64 and
  returns NumPy arrays, the values of an x64 session bit for bit; traced
  arguments without x64 compute in the tracer's dtype (float32).
* Arguments (``theory._validate``, one rule for every theory module): Python
  numbers, lists and tuples, NumPy and JAX arrays are accepted;
  integer-valued arguments (``n``, ``sample_size``, ``k``) must hold integers
  of magnitude at most ``2**53``; shapes that do not broadcast are refused in
  one line naming both arguments. Concrete inputs are validated
  (``ValueError`` naming the argument and the bad value): ``n`` a
  non-negative integer, ``sample_size`` an integer :math:`\ge 1`, ``lam0``
  finite and :math:`\ge 0` (``lam0 = 0`` is the chain that stays at 0).
  Traced inputs are not checked.

References:
    Suresh, A. T., Thangaraj, A. & Khandavally, A. N. K. (2024). Rate of
    Model Collapse in Recursive Training. arXiv:2412.17646 (AISTATS 2025).

    Athreya, K. B. & Ney, P. E. (1972). *Branching Processes*, Springer
    (generating functions of Galton-Watson processes, Kolmogorov's estimate
    for critical processes).

    Harris, T. E. (1963). *The Theory of Branching Processes*, Springer
    (moments of Galton-Watson processes).
"""

from __future__ import annotations

import functools
import math
from decimal import Decimal, localcontext
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np

from theory import _validate as _v

__all__ = [
    "expected_rate",
    "rate_variance",
    "zero_probability",
    "survival_probability",
    "survival_asymptote",
    "suresh_g",
]

# ---------------------------------------------------------------------------
# The iterates g_k = 1/y_k: a table up to _TABLE_SIZE, an asymptotic series above.
# ---------------------------------------------------------------------------

_TABLE_SIZE = 4096  # g_1..g_K0 tabulated; the series is used for k > K0
_DECIMAL_DIGITS = 40

# y_k = k/2 + ln(k)/6 + C + sum_{j=1..3} P_j(ln k, C) / k^j; entries (j, a, b): L^a C^b.
# Obtained by substituting this ansatz into y_{k+1} = y_k + 1/2 + phi(1/y_k)
# (phi below) and matching the coefficients of k^-(j+1) (ln k)^a, order by order:
# at order j the unknown P_j enters as dP_j/dL - j P_j. The fourth term, omitted,
# is about -(2/3) ln(k)^4 / k^4: relative error < 4e-18 for k > 4096 (measured
# against a 40-digit iteration).
_SERIES = {
    (1, 0, 0): Fraction(-1, 36),
    (1, 0, 1): Fraction(1, 3),
    (1, 1, 0): Fraction(1, 18),
    (2, 0, 0): Fraction(-7, 540),
    (2, 0, 1): Fraction(1, 6),
    (2, 0, 2): Fraction(-1, 3),
    (2, 1, 0): Fraction(1, 36),
    (2, 1, 1): Fraction(-1, 9),
    (2, 2, 0): Fraction(-1, 108),
    (3, 0, 0): Fraction(-13, 2430),
    (3, 0, 1): Fraction(29, 270),
    (3, 0, 2): Fraction(-4, 9),
    (3, 0, 3): Fraction(4, 9),
    (3, 1, 0): Fraction(29, 1620),
    (3, 1, 1): Fraction(-4, 27),
    (3, 1, 2): Fraction(2, 9),
    (3, 2, 0): Fraction(-1, 81),
    (3, 2, 1): Fraction(1, 27),
    (3, 3, 0): Fraction(1, 486),
}
_SERIES_ORDER = 3


def _series_tail(k, log_k, c, one):
    """sum_j P_j(log k, c) / k^j, in whatever number type ``one`` is (Decimal, float, array)."""
    total = 0 * one
    for (j, a, b), r in _SERIES.items():
        coef = (one * r.numerator) / r.denominator
        total = total + coef * log_k**a * c**b / k**j
    return total


@functools.cache
def _g_constants():
    """(table of g_0..g_K0 as float64, C, coefficients of P_j(L) with C substituted).

    The table is the recursion y_{k+1} = 1 / (1 - exp(-1/y_k)), y_1 = 1, in
    40-digit decimal arithmetic (the ``decimal`` module's exp is correctly
    rounded), rounded to float64 once: each entry is within half an ulp
    (the 40-digit rounding errors, about 1e-40 y_k per step, cannot reach the
    17th digit in 4096 steps). C solves y_K0 = K0/2 + ln(K0)/6 + C + tail(C)
    by fixed-point iteration (the tail depends on C through O(1/K0) terms).
    Plain Python: safe to call while jax is tracing.
    """
    with localcontext() as ctx:
        ctx.prec = _DECIMAL_DIGITS
        one = Decimal(1)
        y = one
        table = [math.inf, 1.0]
        for _ in range(_TABLE_SIZE - 1):
            y = one / (one - (-one / y).exp())
            table.append(float(one / y))
        k = Decimal(_TABLE_SIZE)
        log_k = k.ln()
        base = y - k / 2 - log_k / 6
        c = base
        for _ in range(20):
            c = base - _series_tail(k, log_k, c, one)
        c_float = float(c)
    # P_j(L) = sum_a coef[j-1][a] L^a with C substituted, for Horner in float
    coef = np.zeros((_SERIES_ORDER, _SERIES_ORDER + 1))
    for (j, a, b), r in _SERIES.items():
        coef[j - 1, a] += float(Fraction(r) * Fraction(c) ** b)
    return np.asarray(table, np.float64), c_float, coef


def _g(n):
    """g_n for n >= 1 (float array of integer values); 1.0 where n < 1 (a safe placeholder)."""
    table, c, coef = _g_constants()
    k0 = float(_TABLE_SIZE)
    idx = jnp.clip(n, 1, k0).astype(jnp.int32)
    small = jnp.asarray(table, n.dtype)[idx]
    big_n = jnp.maximum(n, k0 + 1.0)
    log_k = jnp.log(big_n)
    inv = 1.0 / big_n
    tail = jnp.zeros_like(big_n)
    for j in range(_SERIES_ORDER, 0, -1):  # sum_j P_j(L) inv^j, Horner in inv
        p = jnp.zeros_like(big_n)
        for a in range(_SERIES_ORDER, -1, -1):
            p = p * log_k + coef[j - 1, a]
        tail = (tail + p) * inv
    y = 0.5 * big_n + (log_k / 6.0 + c + tail)
    return jnp.where(n <= k0, small, 1.0 / y)


@jax.custom_jvp
def _one_minus_exp_neg(x):
    """1 - exp(-x) = -expm1(-x), with the derivative exp(-x) evaluated directly.

    (jax differentiates expm1 as ``expm1(x) + 1``, which cancels for x << 0: at
    x = -20 it keeps 7 digits, at x = -40 none.)
    """
    return -jnp.expm1(-x)


@_one_minus_exp_neg.defjvp
def _one_minus_exp_neg_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return _one_minus_exp_neg(x), jnp.exp(-x) * t


def _chain_args(n, sample_size, lam0):
    _v.check_n(n)
    _v.check_integer("sample_size", sample_size, 1)
    _v.check_finite_nonnegative("lam0", lam0)
    dt = _v.result_dtype(n, sample_size, lam0)
    return jnp.broadcast_arrays(*(jnp.asarray(x, dt) for x in (n, sample_size, lam0)))


@_v.closed_form(integers=("k",))
def suresh_g(k):
    r"""The iterates :math:`g_k` of :math:`g(x) = 1 - e^{-x}` from :math:`g(\infty) = 1` (D5).

    .. math::

        g_1 = 1, \qquad g_{k+1} = 1 - e^{-g_k}, \qquad
        \frac{1}{k} \le g_k \le \frac{2}{k} \le \frac{3}{k} \quad (k \ge 1),

    :math:`g_k = 1 - q_{k-1}`, where :math:`q_j` is the probability that a
    Galton-Watson process with Poisson(1) offspring started from one
    individual is extinct after :math:`j` generations (:math:`q_0 = 0`,
    :math:`q_{j+1} = f(q_j)`, :math:`f(s) = e^{s-1}` the offspring
    generating function, so :math:`1 - q_{j+1} = 1 - e^{-(1 - q_j)}`).

    *Bounds* (THEORY.md D5 quotes :math:`[1/k, 3/k]`), by induction with
    :math:`g` increasing: :math:`g(1/k) = 1 - e^{-1/k} \ge 1/(k+1)` since
    :math:`e^{1/k} \ge 1 + 1/k`; :math:`g(x) \le x - x^2/2 + x^3/6` gives
    :math:`g(2/k) \le 2/(k+1)` for :math:`k \ge 2`, and :math:`g_1 = 1`,
    :math:`g_2 = 0.632` start it.

    *Asymptotics* (Kolmogorov's :math:`g_k \sim 2/(\sigma^2 k)`, here
    :math:`\sigma^2 = 1`, refined). In :math:`y_k = 1/g_k` the recursion is
    :math:`y_{k+1} = y_k + \tfrac12 + \varphi(1/y_k)` with
    :math:`\varphi(x) = \tfrac12\coth(x/2) - 1/x = x/12 - x^3/720 + \dots`
    (Bernoulli numbers), whence

    .. math::

        \frac{1}{g_k} = \frac k2 + \frac{\ln k}{6} + C
            + \frac{\ln(k)/18 + C/3 - 1/36}{k}
            + O\!\left(\frac{\ln^2 k}{k^2}\right),
        \qquad C = 0.39912407711569383\dots

    (:math:`C = \lim_k (y_k - k/2 - \ln(k)/6)`; the digits shown come from a
    40-digit iteration to :math:`k = 20000` with three more series terms.
    The code fits :math:`C` to the 40-digit :math:`y_{4096}` through the
    series below, giving 0.3991240771156858, 8e-15 off: that moves
    :math:`y_k` by 8e-15 absolutely, under 4e-18 relative for
    :math:`k > 4096`).

    *Computation*: exact table for :math:`k \le 4096` (the recursion in
    40-digit decimal arithmetic, rounded once to float64), the series above
    through :math:`k^{-3}` beyond (truncation below 4e-18 relative). Each
    value is within a few ulps of the true :math:`g_k`, for every :math:`k`
    (the float64 recursion ``-expm1(-g)`` itself would accumulate rounding:
    the map is nearly neutral, :math:`g'(g_k) \approx 1 - 1/k`, so errors
    decay only like :math:`j/k` and pile up to :math:`\sim u\sqrt{k}`
    typically and :math:`u k/2` at worst). O(1) work per element; ``k`` may
    be traced; a non-integer float ``k`` gives the series' interpolation.

    Args:
        k: integer values ``>= 1``, array-like (float or int).

    Returns:
        Array of ``k``'s shape.

    References:
        THEORY.md D5; Suresh et al. (2024), arXiv:2412.17646; Athreya & Ney
        (1972), Sec. I.9 (Kolmogorov's estimate).

    Example:
        >>> from theory import poisson
        >>> round(float(poisson.suresh_g(2)), 6)  # 1 - 1/e
        0.632121
        >>> round(1e6 * float(poisson.suresh_g(10**6)), 6)  # about 2
        1.999989
    """
    _v.check_integer("k", k, 1)
    k = jnp.asarray(k, _v.result_dtype(k))
    return _g(k)


@_v.closed_form(
    integers=("n", "sample_size"), reals=("lam0",), broadcast=[("n", "sample_size", "lam0")]
)
def expected_rate(n, sample_size, lam0):
    r""":math:`\mathbb{E}[\lambda_n] = \lambda_0`: the fitted rate is a martingale.

    .. math::

        \mathbb{E}[\lambda_{n+1} \mid \lambda_n]
        = \frac1M \sum_{i=1}^M \mathbb{E}[X_i] = \lambda_n
        \quad\Rightarrow\quad \mathbb{E}[\lambda_n] = \lambda_0 \ (n \ge 0).

    Args:
        n: number of fits, integer ``>= 0`` (array-like).
        sample_size: draws per fit :math:`M`, integer ``>= 1`` (array-like).
        lam0: real rate :math:`\lambda_0 \ge 0` (array-like).

    Returns:
        ``lam0`` broadcast to the shape of the three arguments.

    References:
        Harris (1963), Ch. I (the mean of a Galton-Watson process).

    Example:
        >>> from theory import poisson
        >>> poisson.expected_rate([0, 1, 50], 10, 2.5).tolist()
        [2.5, 2.5, 2.5]
    """
    n, _, lam = _chain_args(n, sample_size, lam0)
    return lam + 0.0 * n


@_v.closed_form(
    integers=("n", "sample_size"), reals=("lam0",), broadcast=[("n", "sample_size", "lam0")]
)
def rate_variance(n, sample_size, lam0):
    r""":math:`\mathrm{Var}(\lambda_n) = n\lambda_0/M`: linear growth, by total variance.

    With :math:`S_n = M\lambda_n`, :math:`S_{n+1} \mid S_n \sim
    \mathrm{Poisson}(S_n)` has conditional mean and variance :math:`S_n`, so

    .. math::

        \mathrm{Var}(S_{n+1}) = \mathbb{E}[\mathrm{Var}(S_{n+1}\mid S_n)]
            + \mathrm{Var}(\mathbb{E}[S_{n+1}\mid S_n])
            = \mathbb{E}[S_n] + \mathrm{Var}(S_n) = M\lambda_0 + \mathrm{Var}(S_n).

    Indexing: :math:`S_0 = M\lambda_0` is a constant (:math:`\mathrm{Var} = 0`)
    and :math:`S_1 \sim \mathrm{Poisson}(M\lambda_0)` has variance
    :math:`M\lambda_0`, which the same step gives, so
    :math:`\mathrm{Var}(S_n) = nM\lambda_0` and

    .. math::

        \mathrm{Var}(\lambda_n) = \frac{n \lambda_0}{M}, \qquad n \ge 0 .

    Args:
        n: number of fits, integer ``>= 0`` (array-like).
        sample_size: draws per fit :math:`M`, integer ``>= 1`` (array-like).
        lam0: real rate :math:`\lambda_0 \ge 0` (array-like).

    Returns:
        Array of the broadcast shape of the arguments.

    References:
        Harris (1963), Ch. I, Sec. 5 (variance of a Galton-Watson process,
        :math:`n\sigma^2` at criticality).

    Example:
        >>> from theory import poisson
        >>> poisson.rate_variance([0, 1, 10], 4, 2.0).tolist()
        [0.0, 0.5, 5.0]
    """
    n, m, lam = _chain_args(n, sample_size, lam0)
    return n * lam / m


@_v.closed_form(
    integers=("n", "sample_size"), reals=("lam0",), broadcast=[("n", "sample_size", "lam0")]
)
def zero_probability(n, sample_size, lam0):
    r""":math:`P(\lambda_n = 0) = \exp(-M\lambda_0 g_n)`: absorption at 0 by fit ``n``.

    *Derivation.* :math:`S_n = M\lambda_n` is a Galton-Watson process with
    Poisson(1) offspring, generating function :math:`f(s) = e^{s-1}`. Started
    from one unit at fit 1, it is extinct at fit :math:`n` (after
    :math:`n - 1` steps) with probability :math:`q_{n-1}`, :math:`q_0 = 0`,
    :math:`q_{j+1} = f(q_j)`; the :math:`S_1` lines are independent, so
    :math:`P(S_n = 0 \mid S_1 = s) = q_{n-1}^s`. Averaging over
    :math:`S_1 \sim \mathrm{Poisson}(M\lambda_0)`,
    :math:`\mathbb{E}[q^{S_1}] = e^{-M\lambda_0(1 - q)}`, and with
    :math:`g_n = 1 - q_{n-1}` (:func:`suresh_g`: :math:`g_1 = 1`,
    :math:`g_{n+1} = 1 - e^{-g_n}`)

    .. math::

        P(\lambda_n = 0) = e^{-M\lambda_0 g_n} \quad (n \ge 1), \qquad
        P(\lambda_0 = 0) = \mathbf 1[\lambda_0 = 0],

    e.g. :math:`n = 1`: :math:`e^{-M\lambda_0}`, the chance that all
    :math:`M` real draws are 0; :math:`n = 2`:
    :math:`\exp(-M\lambda_0(1 - e^{-1}))`. Bounds from :math:`1/n \le g_n \le
    2/n`: :math:`e^{-2M\lambda_0/n} \le P(\lambda_n = 0) \le
    e^{-M\lambda_0/n}`; it tends to 1 (collapse almost surely).

    Args:
        n: number of fits, integer ``>= 0`` (array-like).
        sample_size: draws per fit :math:`M`, integer ``>= 1`` (array-like).
        lam0: real rate :math:`\lambda_0 \ge 0` (array-like).

    Returns:
        Array of the broadcast shape of the arguments.

    References:
        THEORY.md D5; Suresh et al. (2024), arXiv:2412.17646 (Poisson model);
        Athreya & Ney (1972), Ch. I (extinction probabilities by iterating
        the generating function).

    Example:
        >>> import math
        >>> from theory import poisson
        >>> math.isclose(float(poisson.zero_probability(1, 10, 0.1)), math.exp(-1.0))
        True
    """
    n, m, lam = _chain_args(n, sample_size, lam0)
    val = jnp.exp(-(m * lam) * _g(n))
    return jnp.where(n == 0, (lam == 0).astype(val.dtype), val)


@_v.closed_form(
    integers=("n", "sample_size"), reals=("lam0",), broadcast=[("n", "sample_size", "lam0")]
)
def survival_probability(n, sample_size, lam0):
    r""":math:`P(\lambda_n \ne 0) = 1 - \exp(-M\lambda_0 g_n)`: the fit has not collapsed to 0.

    The complement of :func:`zero_probability` (derivation there), evaluated
    with ``expm1`` so that small survival probabilities keep full relative
    accuracy:

    .. math::

        P(\lambda_n \ne 0) = 1 - e^{-M\lambda_0 g_n} \ (n \ge 1), \qquad
        1 - e^{-M\lambda_0/n} \le P(\lambda_n \ne 0) \le 1 - e^{-2M\lambda_0/n},

    with :math:`g_1 = 1`, :math:`g_{n+1} = 1 - e^{-g_n}` (:func:`suresh_g`).
    Indexing (fit 1 uses real data): :math:`n = 0` gives
    :math:`\mathbf 1[\lambda_0 > 0]`; :math:`n = 1` gives
    :math:`1 - e^{-M\lambda_0}` (not all :math:`M` real draws are 0);
    fit :math:`n` has gone through :math:`n - 1` branching steps after the
    Poisson first step. This is Suresh et al.'s Poisson-model survival with
    :math:`\lambda = M\lambda_0` (THEORY.md D5), the same value as
    ``theory.categorical.poisson_survival_from_rate(n, M * lam0)``; their
    lower bound is the left one above (the catalogue's :math:`3/n` upper
    constant also holds). For large :math:`n` see
    :func:`survival_asymptote`.

    Derivative (what ``jax.grad`` returns): :math:`\partial/\partial\lambda_0
    = M g_n e^{-M\lambda_0 g_n}` for :math:`n \ge 1`, and 0 for :math:`n = 0`.

    Args:
        n: number of fits, integer ``>= 0`` (array-like).
        sample_size: draws per fit :math:`M`, integer ``>= 1`` (array-like).
        lam0: real rate :math:`\lambda_0 \ge 0` (array-like).

    Returns:
        Array of the broadcast shape of the arguments.

    References:
        THEORY.md D5; Suresh et al. (2024), arXiv:2412.17646; Athreya & Ney
        (1972).

    Example:
        >>> from theory import poisson
        >>> [round(v, 6) for v in poisson.survival_probability([0, 1, 2], 5, 0.2).tolist()]
        [1.0, 0.632121, 0.468536]
    """
    n, m, lam = _chain_args(n, sample_size, lam0)
    val = _one_minus_exp_neg((m * lam) * _g(n))
    return jnp.where(n == 0, (lam > 0).astype(val.dtype), val)


@_v.closed_form(
    integers=("n", "sample_size"), reals=("lam0",), broadcast=[("n", "sample_size", "lam0")]
)
def survival_asymptote(n, sample_size, lam0):
    r"""Large-:math:`n` form :math:`1 - \exp(-2M\lambda_0/n)` of :func:`survival_probability`.

    From Kolmogorov's estimate :math:`g_n \sim 2/n` (:func:`suresh_g`):

    .. math::

        P(\lambda_n \ne 0) \approx 1 - e^{-2M\lambda_0/n}
        \ \ge\ P(\lambda_n \ne 0) \quad (n \ge 1),

    an upper bound for every :math:`n \ge 1` (:math:`g_n \le 2/n`). Its
    exponent is too large by the factor
    :math:`2/(n g_n) = 1 + (\ln(n)/3 + 2C)/n + O(\ln n/n^2)`,
    :math:`C = 0.399\dots` (:func:`suresh_g`), e.g. 2.3% at :math:`n = 100`
    and 0.04% at :math:`n = 10^4`; for :math:`M\lambda_0 \ll n` the
    survival itself is :math:`\approx 2M\lambda_0/n`, with the same relative
    error. ``n = 0`` gives :math:`\mathbf 1[\lambda_0 > 0]` (the limit of
    the formula as :math:`n \to 0^+`).

    Args:
        n: number of fits, integer ``>= 0`` (array-like).
        sample_size: draws per fit :math:`M`, integer ``>= 1`` (array-like).
        lam0: real rate :math:`\lambda_0 \ge 0` (array-like).

    Returns:
        Array of the broadcast shape of the arguments.

    References:
        Athreya & Ney (1972), Sec. I.9 (Kolmogorov's estimate
        :math:`P(Z_n > 0) \sim 2/(\sigma^2 n)`); Suresh et al. (2024).

    Example:
        >>> from theory import poisson
        >>> round(float(poisson.survival_asymptote(100, 10, 0.05)), 6)
        0.00995
    """
    n, m, lam = _chain_args(n, sample_size, lam0)
    safe = jnp.where(n == 0, 1.0, n)
    val = _one_minus_exp_neg(2.0 * m * lam / safe)
    return jnp.where(n == 0, (lam > 0).astype(val.dtype), val)
