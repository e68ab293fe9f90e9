r"""Heterozygosity (D1) and fixation (D2) of the Wright-Fisher chain.

See :mod:`theory.categorical`."""

from __future__ import annotations

import jax.numpy as jnp

from theory import _validate as _v
from theory.categorical._numerics import _dtype

# ---------------------------------------------------------------------------
# D1: heterozygosity.
# ---------------------------------------------------------------------------


@_v.closed_form(
    integers=("n", "sample_size"),
    reals=("p", "smoothing"),
    broadcast=[("n", "sample_size", "smoothing", ("p", 1))],
)
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


@_v.closed_form(integers=("sample_size",), reals=("p",))
def fixation_probability(p, sample_size=None):
    r"""Probability that the chain is absorbed at each category: :math:`p_0` itself (D2).

    *Derivation*: the frequency :math:`X_n^{(i)}/M` of category :math:`i` is
    a martingale (:math:`\mathbb{E}[X_{n+1} \mid X_n] = X_n`) bounded in
    :math:`[0, 1]`, and the chain is absorbed in finite time, almost surely,
    at a one-point distribution (every non-absorbing state reaches one in a
    single step with positive probability). Optional stopping at the
    absorption time :math:`T` gives :math:`P(\text{fixed at } i) =
    \mathbb{E}[X_T^{(i)}/M] = p_{0,i}`. Exact for every ``sample_size``:
    the argument is accepted for a uniform signature with the other
    Wright-Fisher functions and validated, but the answer does not depend on
    it.

    Args:
        p: real distribution(s), shape ``(..., K)``; may be traced.
        sample_size: tokens per fit, an integer ``M >= 2``, or None (no
            effect).

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
    if sample_size is not None:
        _v.check_integer("sample_size", sample_size, 2)
    return jnp.asarray(p, _dtype(p))
