r"""Exact moments of a Gaussian kernel density estimate refitted to its own samples (THEORY.md K1).

Setting. Generation 0 is the real distribution :math:`N(\mu_0, \sigma_0^2)`.
Fit :math:`n \ge 1` stores the :math:`M` = ``sample_size`` points it was trained
on, :math:`x_1..x_M` drawn from fit :math:`n-1` (fit 1: real data), and a
bandwidth :math:`h_n`; the fitted distribution is the Gaussian KDE
:math:`\hat f_n = \frac1M \sum_i N(x_i, h_n^2)`. Its mean is the points' mean
:math:`\bar x_n` and its variance is

.. math::

    V_n = S_n + h_n^2, \qquad S_n = \frac1M \sum_i (x_i - \bar x_n)^2
    \quad(\text{the points' MLE variance}), \qquad V_0 = \sigma_0^2 .

The one fact everything here rests on: given fit :math:`n-1`, the :math:`M`
new points are i.i.d. with mean :math:`\bar x_{n-1}` and variance
:math:`V_{n-1}` (whatever the shape of :math:`\hat f_{n-1}`), so

.. math::

    \mathbb{E}[S_n \mid \hat f_{n-1}] = \frac{M-1}{M} V_{n-1}, \qquad
    \mathbb{E}[\bar x_n \mid \hat f_{n-1}] = \bar x_{n-1}, \qquad
    \operatorname{Var}(\bar x_n \mid \hat f_{n-1}) = V_{n-1} / M .

Bandwidths. ``bandwidth`` is a fixed :math:`h`; the rules of thumb are
:math:`h_n = c\, s_n M^{-1/5}` with :math:`s_n^2 = \frac{M}{M-1} S_n` the
points' sample variance (divisor :math:`M-1`) and :math:`c = 1` (Scott) or
:math:`c = (4/3)^{1/5}` (Silverman), the one-dimensional factors of
``scipy.stats.gaussian_kde``.

Results (the fixed-bandwidth recursion is THEORY.md K1 and the setting of
Kazdan et al. 2024; the closed forms, the rule-of-thumb factor, the mean's
variance and the accumulate moments are derived here, in each docstring):

* fixed :math:`h`: :math:`\mathbb{E}V_n = r^n\sigma_0^2 + Mh^2(1 - r^n)`,
  :math:`r = (M-1)/M`, growing (when :math:`Mh^2 > \sigma_0^2`) to the fixed
  point :math:`Mh^2` (:func:`expected_variance`, :func:`variance_fixed_point`);
* a rule of thumb: :math:`\mathbb{E}V_n = g^n\sigma_0^2`,
  :math:`g = (M-1)/M + c^2 M^{-2/5} > 1`: geometric growth
  (:func:`growth_factor`, :func:`rule_expected_variance`);
* the mean is a martingale whose variance adds :math:`\mathbb{E}V_{n-1}/M`
  per fit (:func:`mean_variance`, :func:`rule_mean_variance`): a random walk;
* a fresh real fraction :math:`\alpha` every fit, fixed :math:`h`: a fixed point
  :math:`\sigma_0^2 + h^2/\alpha - \operatorname{Var}\bar x_\infty`
  (:func:`fresh_moments`, :func:`fresh_fixed_point`);
* accumulate (every point so far stored), fixed :math:`h`:
  :math:`\mathbb{E}V_n = \sigma_0^2 + h^2 H_n - \operatorname{Var}(\bar x_n)`,
  :math:`H_n` the harmonic number: logarithmic growth without a fixed point
  (:func:`accumulate_moments`).

The opposite of collapse: the kernel noise adds :math:`h^2` each generation,
more than the :math:`V/M` the refit loses once :math:`V < Mh^2`.

Conventions: those of every ``theory`` module (see :mod:`theory.poisson`):
``n`` is the number of fits (``n = 0`` the real distribution); pure
``jax.numpy``; arguments broadcast; float64 without ``jax_enable_x64``
(:mod:`theory._precision`); the argument rule of :mod:`theory._validate`:
``n`` a non-negative integer, ``sample_size`` an integer :math:`\ge 2`,
``bandwidth`` finite and :math:`\ge 0` (:math:`h = 0` is the empirical
distribution resampled, i.e. the Gaussian MLE collapse :math:`r^n\sigma_0^2`),
``sigma0`` finite and :math:`> 0`, ``rule`` one of ``"scott"``,
``"silverman"`` (static). Every function but :func:`accumulate_moments` (which
needs a concrete ``n``) may be traced.

References:
    Kazdan, J., Schaeffer, R., Dey, A., Gerstgrasser, M., Rafailov, R.,
    Donoho, D. L. & Koyejo, S. (2024). Collapse or Thrive? Perils and Promises
    of Synthetic Data in a Self-Generating World. arXiv:2410.16713 (KDE chains).

    THEORY.md, K1 (this project's catalogue).

    Scott, D. W. (1992). *Multivariate Density Estimation*, Wiley;
    Silverman, B. W. (1986). *Density Estimation for Statistics and Data
    Analysis*, Chapman & Hall (the rules of thumb).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theory import _validate as _v

__all__ = [
    "RULE_FACTORS",
    "KDEMoments",
    "expected_variance",
    "variance_fixed_point",
    "mean_variance",
    "growth_factor",
    "rule_expected_variance",
    "rule_mean_variance",
    "accumulate_moments",
    "fresh_moments",
    "fresh_fixed_point",
]

RULES = ("scott", "silverman")
# h = c s M^(-1/5), s the sample sd (divisor M - 1): scipy.stats.gaussian_kde in 1-D
RULE_FACTORS = {"scott": 1.0, "silverman": (4.0 / 3.0) ** 0.2}


class KDEMoments(NamedTuple):
    """Mean fitted variance and variance of the fitted mean (arrays of the broadcast shape)."""

    expected_variance: jax.Array  # E[V_n] = E[S_n + h^2]
    mean_variance: jax.Array  # Var(mean_n)


def _fixed_args(n, sample_size, bandwidth, sigma0):
    _v.check_n(n)
    _v.check_integer("sample_size", sample_size, 2)
    _v.check_finite_nonnegative("bandwidth", bandwidth)
    _v.check_positive("sigma0", sigma0)
    dt = _v.result_dtype(n, sample_size, bandwidth, sigma0)
    return jnp.broadcast_arrays(*(jnp.asarray(x, dt) for x in (n, sample_size, bandwidth, sigma0)))


def _rule_args(n, sample_size, sigma0, rule):
    _v.check_choice("rule", rule, RULES)
    _v.check_n(n)
    _v.check_integer("sample_size", sample_size, 2)
    _v.check_positive("sigma0", sigma0)
    dt = _v.result_dtype(n, sample_size, sigma0)
    return jnp.broadcast_arrays(*(jnp.asarray(x, dt) for x in (n, sample_size, sigma0)))


_FIXED = dict(
    integers=("n", "sample_size"),
    reals=("bandwidth", "sigma0"),
    broadcast=[("n", "sample_size", "bandwidth", "sigma0")],
)
_RULE = dict(
    integers=("n", "sample_size"), reals=("sigma0",), broadcast=[("n", "sample_size", "sigma0")]
)


@_v.closed_form(**_FIXED)
def expected_variance(n, sample_size, bandwidth, sigma0=1.0):
    r""":math:`\mathbb{E}[V_n]`, the expected variance of fit :math:`n` with a fixed bandwidth.

    Derivation. :math:`V_n = S_n + h^2` and
    :math:`\mathbb{E}[S_n \mid \hat f_{n-1}] = r V_{n-1}` (module docstring),
    :math:`r = (M-1)/M`, so

    .. math::

        \mathbb{E}V_n = r\,\mathbb{E}V_{n-1} + h^2,\quad V_0 = \sigma_0^2
        \;\Rightarrow\;
        \mathbb{E}V_n = r^n\sigma_0^2 + \frac{1 - r^n}{1 - r} h^2
                    = r^n\sigma_0^2 + M h^2 (1 - r^n),

    tending to the fixed point :math:`Mh^2` (:func:`variance_fixed_point`;
    the stored points' :math:`\mathbb{E}S_n \to (M-1)h^2`, THEORY.md K1).
    Fit 1 stores real samples: :math:`\mathbb{E}V_1 = r\sigma_0^2 + h^2`.
    :math:`h = 0` is the Gaussian MLE collapse :math:`r^n\sigma_0^2` (G2).
    The recursion is K1's; the closed form is derived here.

    Args:
        n: number of fits, integer ``>= 0`` (array-like).
        sample_size: points per fit :math:`M`, integer ``>= 2``.
        bandwidth: the fixed bandwidth :math:`h \ge 0`.
        sigma0: real standard deviation :math:`> 0`.

    Returns:
        Array of the broadcast shape of the arguments.

    References:
        THEORY.md K1; Kazdan et al. (2024), arXiv:2410.16713.

    Example:
        >>> from theory import kde
        >>> [round(float(v), 6) for v in kde.expected_variance([0, 1, 2], 10, 0.5)]
        [1.0, 1.15, 1.285]
    """
    n, m, h, s0 = _fixed_args(n, sample_size, bandwidth, sigma0)
    log_r = jnp.log1p(-1.0 / m)
    rn = jnp.exp(n * log_r)
    return rn * s0 * s0 - m * h * h * jnp.expm1(n * log_r)


@_v.closed_form(
    integers=("sample_size",),
    reals=("bandwidth",),
    broadcast=[("sample_size", "bandwidth")],
)
def variance_fixed_point(sample_size, bandwidth):
    r"""The fixed point :math:`\lim_n \mathbb{E}V_n = M h^2` of the fixed-bandwidth chain.

    From :math:`\mathbb{E}V_n = r\,\mathbb{E}V_{n-1} + h^2`: :math:`V^* = h^2/(1-r) = Mh^2`
    (the stored points' part :math:`rV^* = (M-1)h^2`, THEORY.md K1).

    Args:
        sample_size: :math:`M`, integer ``>= 2``.
        bandwidth: :math:`h \ge 0`.

    Returns:
        Array of the broadcast shape of the arguments.

    References:
        THEORY.md K1.

    Example:
        >>> from theory import kde
        >>> float(kde.variance_fixed_point(10, 0.5))
        2.5
    """
    _v.check_integer("sample_size", sample_size, 2)
    _v.check_finite_nonnegative("bandwidth", bandwidth)
    dt = _v.result_dtype(sample_size, bandwidth)
    m, h = jnp.broadcast_arrays(jnp.asarray(sample_size, dt), jnp.asarray(bandwidth, dt))
    return m * h * h


@_v.closed_form(**_FIXED)
def mean_variance(n, sample_size, bandwidth, sigma0=1.0):
    r"""The variance of fit n's mean, fixed bandwidth: :math:`\operatorname{Var}(\bar x_n)`.

    Derivation (here). The mean is a martingale with
    :math:`\operatorname{Var}(\bar x_n \mid \hat f_{n-1}) = V_{n-1}/M`, so by
    total variance :math:`\operatorname{Var}\bar x_n = \operatorname{Var}\bar
    x_{n-1} + \mathbb{E}V_{n-1}/M` and, with :func:`expected_variance`,

    .. math::

        \operatorname{Var}\bar x_n = \frac1M \sum_{t=0}^{n-1} \mathbb{E}V_t
        = \sigma_0^2(1 - r^n) + h^2\left(n - M(1 - r^n)\right),

    a random walk of eventual step variance :math:`h^2` per fit.

    Args:
        n, sample_size, bandwidth, sigma0: as for :func:`expected_variance`.

    Returns:
        Array of the broadcast shape of the arguments.

    References:
        THEORY.md K1 (the variance recursion it sums).

    Example:
        >>> from theory import kde
        >>> [round(float(v), 6) for v in kde.mean_variance([0, 1, 2], 10, 0.5)]
        [0.0, 0.1, 0.215]
    """
    n, m, h, s0 = _fixed_args(n, sample_size, bandwidth, sigma0)
    one_minus_rn = -jnp.expm1(n * jnp.log1p(-1.0 / m))
    return s0 * s0 * one_minus_rn + h * h * (n - m * one_minus_rn)


@_v.closed_form(integers=("sample_size",))
def growth_factor(sample_size, rule="scott"):
    r"""The factor :math:`g` of :math:`\mathbb{E}V` per fit under a rule-of-thumb bandwidth.

    Derivation (here). With :math:`h_n^2 = c^2 s_n^2 M^{-2/5}` and
    :math:`s_n^2 = \frac{M}{M-1}S_n`, :math:`V_n = S_n\left(1 + c^2
    \frac{M^{3/5}}{M-1}\right)` is proportional to :math:`S_n`, and
    :math:`\mathbb{E}[S_n \mid \hat f_{n-1}] = \frac{M-1}{M}V_{n-1}`, so

    .. math::

        \mathbb{E}V_n = g\,\mathbb{E}V_{n-1}, \qquad
        g = \frac{M-1}{M} + c^2 M^{-2/5},

    :math:`c = 1` (Scott), :math:`(4/3)^{1/5}` (Silverman). :math:`g > 1` for
    every :math:`M \ge 2` (:math:`c^2 M^{3/5} > 1`): the variance grows
    geometrically (THEORY.md K1), at about :math:`c^2 M^{-2/5}` per fit.

    Args:
        sample_size: :math:`M`, integer ``>= 2``.
        rule: ``"scott"`` or ``"silverman"`` (static).

    Returns:
        Array of the shape of ``sample_size``.

    References:
        THEORY.md K1; Scott (1992); Silverman (1986).

    Example:
        >>> from theory import kde
        >>> round(float(kde.growth_factor(32, "scott")), 6)
        1.21875
    """
    _v.check_choice("rule", rule, RULES)
    _v.check_integer("sample_size", sample_size, 2)
    m = jnp.asarray(sample_size, _v.result_dtype(sample_size))
    c2 = RULE_FACTORS[rule] ** 2
    return (m - 1.0) / m + c2 * jnp.power(m, -0.4)


@_v.closed_form(**_RULE)
def rule_expected_variance(n, sample_size, sigma0=1.0, rule="scott"):
    r""":math:`\mathbb{E}V_n = g^n\sigma_0^2` under a rule of thumb (:func:`growth_factor`).

    Fit 1 stores real samples and takes its bandwidth from them, so the
    recursion holds from :math:`V_0 = \sigma_0^2`. Derived here.

    Args:
        n: number of fits, integer ``>= 0``.
        sample_size: :math:`M`, integer ``>= 2``.
        sigma0: real standard deviation :math:`> 0`.
        rule: ``"scott"`` or ``"silverman"`` (static).

    Returns:
        Array of the broadcast shape of ``n``, ``sample_size`` and ``sigma0``.

    References:
        THEORY.md K1.

    Example:
        >>> from theory import kde
        >>> round(float(kde.rule_expected_variance(2, 32, 1.0, "scott")), 6)
        1.485352
    """
    n, m, s0 = _rule_args(n, sample_size, sigma0, rule)
    g = growth_factor(m, rule)
    return jnp.exp(n * jnp.log(g)) * s0 * s0


@_v.closed_form(**_RULE)
def rule_mean_variance(n, sample_size, sigma0=1.0, rule="scott"):
    r"""The variance of fit n's mean under a rule of thumb.

    .. math::

        \operatorname{Var}\bar x_n = \frac{\sigma_0^2}{M}\frac{g^n - 1}{g - 1}.

    The martingale argument of :func:`mean_variance` with
    :math:`\mathbb{E}V_t = g^t\sigma_0^2` (:func:`rule_expected_variance`).
    Derived here.

    Args:
        n, sample_size, sigma0, rule: as for :func:`rule_expected_variance`.

    Returns:
        Array of the broadcast shape of ``n``, ``sample_size`` and ``sigma0``.

    References:
        THEORY.md K1.

    Example:
        >>> from theory import kde
        >>> round(float(kde.rule_mean_variance(2, 32, 1.0, "scott")), 6)
        0.069336
    """
    n, m, s0 = _rule_args(n, sample_size, sigma0, rule)
    g = growth_factor(m, rule)
    return s0 * s0 / m * jnp.expm1(n * jnp.log(g)) / (g - 1.0)


@_v.closed_form(**_FIXED)
def accumulate_moments(n, sample_size, bandwidth, sigma0=1.0):
    r"""Mean fitted variance and variance of the fitted mean when every point so far is stored.

    Model. Fit :math:`t` stores the pool of :math:`N_t = tM` points: the
    :math:`M` real ones and :math:`M` samples of each fit :math:`1..t-1`;
    bandwidth :math:`h` fixed. Fit :math:`t+1` adds :math:`M` samples of
    :math:`\hat f_t`, whose mean and variance are the pool's mean :math:`m_t`
    and :math:`V_t = S_t + h^2`.

    Derivation (here; :math:`\mu_0 = 0` without loss). The pool's mean square
    :math:`Q_t = \frac1{N_t}\sum x_i^2` gains a batch of expected mean square
    :math:`Q_t + h^2`, so
    :math:`\mathbb{E}[Q_{t+1} \mid \hat f_t] = Q_t + \frac{h^2}{t+1}` and
    :math:`\mathbb{E}Q_n = \sigma_0^2 + h^2 (H_n - 1)`, :math:`H_n = \sum_{i \le n} 1/i`.
    The pool mean is a martingale with increments
    :math:`m_{t+1} - m_t = (\bar y - m_t)/(t+1)`, so
    :math:`P_t = \operatorname{Var} m_t` obeys
    :math:`P_{t+1} = P_t + \mathbb{E}V_t / (M (t+1)^2)`, :math:`P_0 = 0`,
    :math:`V_0 = \sigma_0^2`. With :math:`S = Q - m^2`:

    .. math::

        \mathbb{E}V_n = \sigma_0^2 + h^2 H_n - P_n, \qquad
        P_n = \sum_{i=1}^{n} \frac{\sigma_0^2 + h^2 H_{i-1}}{M i^2}
              \prod_{j=i+1}^{n}\left(1 - \frac{1}{M j^2}\right),

    (:math:`P_n < \frac{\pi^2}{6}\frac{\sigma_0^2 + h^2 H_n}{M}`): the variance
    grows like :math:`h^2 \ln n`, without a fixed point, while the mean's
    variance stays bounded. At :math:`h = 0` this is the Gaussian MLE
    accumulate chain (:func:`theory.mixing.accumulate_moments`, whose
    :math:`e_n + \operatorname{Var}\mu_n = \sigma_0^2`). Evaluated by cumulative
    sums over :math:`i = 1..\max n` (the product by cumulative sums of
    ``log1p``), so ``n`` must be concrete.

    Args:
        n: number of fits, concrete non-negative integers (array-like).
        sample_size, bandwidth, sigma0: as for :func:`expected_variance`.

    Returns:
        :class:`KDEMoments` ``(expected_variance, mean_variance)``, arrays of the
        broadcast shape of the arguments.

    References:
        Kazdan et al. (2024), arXiv:2410.16713 (accumulating data);
        Gerstgrasser et al. (2024), arXiv:2404.01413.

    Example:
        >>> from theory import kde
        >>> res = kde.accumulate_moments(1, 10, 0.5)  # fit 1: the real-data KDE
        >>> round(float(res.expected_variance), 6), round(float(res.mean_variance), 6)
        (1.15, 0.1)
    """
    if not _v.is_concrete(n):
        raise ValueError(
            "accumulate_moments needs a concrete n (it sets the number of generations "
            "summed over); got a traced value: pass n as a Python int or a concrete array"
        )
    n_arr, m, h, s0 = _fixed_args(n, sample_size, bandwidth, sigma0)
    n_np = np.asarray(n).astype(np.int64)
    nmax = int(n_np.max()) if n_np.size else 0
    dt = m.dtype
    i = jnp.arange(1, nmax + 1, dtype=dt)
    mm, hh, ss = m[..., None], (h * h)[..., None], (s0 * s0)[..., None]
    zero = jnp.zeros(m.shape + (1,), dt)
    harmonic = jnp.concatenate([zero, jnp.cumsum(1.0 / i) + zero], axis=-1)  # H_0..H_nmax
    log_c = jnp.log1p(-1.0 / (mm * i * i))
    big_l = jnp.concatenate([zero, jnp.cumsum(log_c, axis=-1)], axis=-1)  # L_0..L_nmax
    b = (ss + hh * harmonic[..., :-1]) / (mm * i * i)  # b_1..b_nmax
    acc = jnp.concatenate([zero, jnp.cumsum(b * jnp.exp(-big_l[..., 1:]), axis=-1)], axis=-1)
    p_table = jnp.exp(big_l) * acc
    idx = jnp.asarray(n_np)
    shape = n_arr.shape

    def take(table):
        tb = jnp.broadcast_to(table, shape + table.shape[-1:])
        ib = jnp.broadcast_to(idx, shape)[..., None]
        return jnp.take_along_axis(tb, ib, axis=-1)[..., 0]

    p = take(p_table)
    hn = take(jnp.broadcast_to(harmonic, p_table.shape))
    return KDEMoments(s0 * s0 + h * h * hn - p, p)


def _fresh_args(n, sample_size, bandwidth, alpha, sigma0):
    _v.check_integer("sample_size", sample_size, 2)
    _v.check_finite_nonnegative("bandwidth", bandwidth)
    _v.check_half_open_unit("alpha", alpha)
    _v.check_positive("sigma0", sigma0)
    if _v.is_concrete(alpha) and _v.is_concrete(sample_size):
        real = np.asarray(alpha, np.float64) * np.asarray(sample_size, np.float64)
        off = np.abs(real - np.round(real)) > 1e-9 * np.maximum(real, 1.0)
        if np.any(off):
            first = np.broadcast_to(np.asarray(alpha, np.float64), off.shape)[off].reshape(-1)[0]
            raise ValueError(
                f"alpha must make alpha * sample_size a whole number (the real count); "
                f"got {float(first)!r}"
            )
    dt = _v.result_dtype(n, sample_size, bandwidth, alpha, sigma0)
    return jnp.broadcast_arrays(
        *(jnp.asarray(x, dt) for x in (n, sample_size, bandwidth, alpha, sigma0))
    )


def _fresh_terms(n, m, h, a, s0):
    """(W_n, v_n): the second moment about mu0 and the mean's variance (fresh_moments)."""
    s2, h2 = s0 * s0, h * h
    p = 1.0 - a
    q = jnp.maximum(p * (p - 1.0 / m), 0.0)  # S (S - 1) / M^2 >= 0
    pn = jnp.where(n == 0, 1.0, jnp.where(p > 0, jnp.exp(n * jnp.log(jnp.where(p > 0, p, 1))), 0))
    qn = jnp.where(n == 0, 1.0, jnp.where(q > 0, jnp.exp(n * jnp.log(jnp.where(q > 0, q, 1))), 0))
    d = 1.0 - a + a * m * (2.0 - a)
    w = s2 + h2 / a * (1.0 - pn)
    v = (s2 + p * h2 / a) * (1.0 - qn) / d - h2 / a * (pn - qn) / (1.0 + a * m)
    return w, v


_FRESH = dict(
    integers=("n", "sample_size"),
    reals=("bandwidth", "alpha", "sigma0"),
    broadcast=[("n", "sample_size", "bandwidth", "alpha", "sigma0")],
)


@_v.closed_form(**_FRESH)
def fresh_moments(n, sample_size, bandwidth, alpha, sigma0=1.0):
    r"""Mean fitted variance and variance of the fitted mean with a fresh real fraction.

    Model. Fit :math:`t+1` stores :math:`M` points: :math:`R = \alpha M` new
    real ones (a whole number) and :math:`M - R` samples of :math:`\hat f_t`
    (mean :math:`\bar x_t`, variance :math:`V_t`); bandwidth :math:`h` fixed;
    fit 1 stores :math:`M` real points.

    Derivation (here). The Gaussian F1 recursion (THEORY.md F1, verified in
    :func:`theory.mixing.fresh_fraction_variance`) only uses the synthetic
    points' mean and variance, so it holds with :math:`V_t` in place of the
    Gaussian's :math:`\sigma_t^2`: with :math:`c = (M-1)/M`,
    :math:`v_t = \operatorname{Var}\bar x_t`,

    .. math::

        \mathbb{E}S_{t+1} = c(\alpha\sigma_0^2 + (1-\alpha)\mathbb{E}V_t) + \alpha(1-\alpha)v_t,
        \quad v_{t+1} = \frac{\alpha\sigma_0^2 + (1-\alpha)\mathbb{E}V_t}{M} + (1-\alpha)^2 v_t,

    and :math:`V = S + h^2`. Adding them, the second moment about the real mean
    :math:`W_t = \mathbb{E}V_t + v_t` obeys
    :math:`W_{t+1} = \alpha\sigma_0^2 + (1-\alpha)W_t + h^2`, so
    :math:`W_n = \sigma_0^2 + \frac{h^2}{\alpha}(1 - p^n)`, :math:`p = 1-\alpha`;
    then :math:`v_{t+1} = (\alpha\sigma_0^2 + (1-\alpha)W_t)/M + q v_t`,
    :math:`q = p(p - 1/M)`, sums to

    .. math::

        v_n = \Big(\sigma_0^2 + \frac{(1-\alpha)h^2}{\alpha}\Big)\frac{1 - q^n}{D}
              - \frac{h^2}{\alpha}\frac{p^n - q^n}{1 + \alpha M}, \qquad
        \mathbb{E}V_n = W_n - v_n, \qquad D = 1 - \alpha + \alpha M(2-\alpha).

    At :math:`h = 0` this is :func:`theory.mixing.fresh_fraction_variance` (MLE,
    fixed count). The terms of size :math:`h^2/\alpha` cancel to
    :math:`O(n h^2)` at small :math:`\alpha n`: relative rounding error about
    :math:`u/(\alpha n)` there. :math:`\alpha = 0` is the replace chain
    (:func:`expected_variance`, :func:`mean_variance`), not a limit of this form.

    Args:
        n: number of fits, integer ``>= 0``.
        sample_size: :math:`M`, integer ``>= 2``.
        bandwidth: :math:`h \ge 0`.
        alpha: the real fraction in ``(0, 1]``, with :math:`\alpha M` a whole number.
        sigma0: real standard deviation :math:`> 0`.

    Returns:
        :class:`KDEMoments` ``(expected_variance, mean_variance)``, arrays of the
        broadcast shape of the arguments.

    References:
        THEORY.md F1 and K1; Bertrand et al. (2024); Kazdan et al. (2024),
        arXiv:2410.16713.

    Example:
        >>> from theory import kde
        >>> res = kde.fresh_moments(1, 10, 0.5, 0.2)  # fit 1: the real-data KDE
        >>> round(float(res.expected_variance), 6), round(float(res.mean_variance), 6)
        (1.15, 0.1)
    """
    n, m, h, a, s0 = _fresh_args(n, sample_size, bandwidth, alpha, sigma0)
    _v.check_n(n)
    w, v = _fresh_terms(n, m, h, a, s0)
    return KDEMoments(w - v, v)


@_v.closed_form(
    integers=("sample_size",),
    reals=("bandwidth", "alpha", "sigma0"),
    broadcast=[("sample_size", "bandwidth", "alpha", "sigma0")],
)
def fresh_fixed_point(sample_size, bandwidth, alpha, sigma0=1.0):
    r"""The limits of :func:`fresh_moments` as :math:`n \to \infty`.

    .. math::

        v_\infty = \frac{\sigma_0^2 + (1-\alpha)h^2/\alpha}{D}, \qquad
        \mathbb{E}V_\infty = \sigma_0^2 + \frac{h^2}{\alpha} - v_\infty,
        \qquad D = 1 - \alpha + \alpha M(2-\alpha).

    Derived here (see :func:`fresh_moments`).

    Args:
        sample_size, bandwidth, alpha, sigma0: as for :func:`fresh_moments`.

    Returns:
        :class:`KDEMoments` of the broadcast shape of the arguments.

    References:
        THEORY.md F1 and K1.

    Example:
        >>> from theory import kde
        >>> res = kde.fresh_fixed_point(10, 0.5, 0.2)
        >>> round(float(res.expected_variance), 6)
        1.795455
    """
    _, m, h, a, s0 = _fresh_args(0, sample_size, bandwidth, alpha, sigma0)
    d = 1.0 - a + a * m * (2.0 - a)
    v = (s0 * s0 + (1.0 - a) * h * h / a) / d
    return KDEMoments(s0 * s0 + h * h / a - v, v)
