r"""The Poisson (critical Galton-Watson) limit of Suresh et al. (D5).

See :mod:`theory.categorical`."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from theory import _validate as _v
from theory import poisson as _poisson
from theory.categorical._numerics import _dtype

# ---------------------------------------------------------------------------
# D5: the Poisson / critical branching limit (Suresh et al.).
# ---------------------------------------------------------------------------


@_v.closed_form(integers=("k",))
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

    Computed by :func:`theory.poisson.suresh_g` (the same sequence): a table
    of the recursion in 40-digit arithmetic up to :math:`k = 4096`, rounded
    once to float64, and an asymptotic series beyond; O(1) work per element
    and within about one ulp of the exact :math:`g_k` (measured against a
    40-digit ``mpmath`` recursion to :math:`k = 20000`: 2.2e-16 relative,
    where the float64 recursion this function used before drifted to 1e-14).
    ``k`` may be traced.

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
    return _poisson.suresh_g(k)


@_v.closed_form(integers=("n", "count"), broadcast=[("n", "count")])
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


@_v.closed_form(integers=("n",), reals=("rate",), broadcast=[("n", "rate")])
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
    # theory.poisson.survival_probability(n, 1, rate) is this law (M = 1, lam0 = rate);
    # it takes finite rates only, and an infinite rate survives surely.
    infinite = jnp.isinf(rate)
    val = _poisson.survival_probability(n, 1, jnp.where(infinite, 0.0, rate))
    return jnp.where(infinite, 1.0, val)


@_v.closed_form(integers=("n", "count"), reals=("upper_constant",), broadcast=[("n", "count")])
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


@_v.closed_form(integers=("n",), reals=("rate", "upper_constant"), broadcast=[("n", "rate")])
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
