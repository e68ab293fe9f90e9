r"""Moments of the refitted Gaussian chain: G2-G6 and the G9 bound (see :mod:`theory.gaussian`)."""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy import special as jsp

from theory import _validate as _v
from theory.gaussian._numerics import (
    _COMMON,
    _INTEGERS,
    _check_common,
    _drift,
    _dtype,
    _log_c4_h,
    _params,
    _with_unused,
)

# ---------------------------------------------------------------------------
# Moments (G2-G6).
# ---------------------------------------------------------------------------


@_v.closed_form(integers=_INTEGERS, reals=("sigma0",), broadcast=[_COMMON])
def expected_variance(n, sample_size, estimator="unbiased", sigma0=1.0):
    r"""Mean fitted variance after ``n`` fits (catalogue G2).

    .. math::

        \mathbb{E}[\sigma_n^2] = \sigma_0^2\, r^n, \qquad r = \nu / c.

    Exact: :math:`\sigma_n^2 = \sigma_0^2 \prod_t G_t` with independent
    :math:`G_t \sim \chi^2_\nu / c` of mean :math:`r`. The unbiased estimator
    gives a martingale (:math:`r = 1`); the MLE shrinks by
    :math:`(M-1)/M` per fit. :math:`\log r` is evaluated with ``log1p`` so the
    result stays accurate for large ``sample_size`` in float32.

    Args:
        n: number of fits (non-negative integer values), array-like.
        sample_size: samples per fit ``M >= 2``, array-like.
        estimator: ``"mle"`` or ``"unbiased"`` (static).
        sigma0: real standard deviation ``> 0``.

    Returns:
        Array of the broadcast shape of the inputs.

    References:
        Shumailov et al. (2024), Nature 631 (Gaussian model, Theorem 3.1 and
        its proof); THEORY.md G2.

    Example:
        >>> from theory import gaussian
        >>> float(gaussian.expected_variance(10, 20, "mle"))  # (19/20)**10
        0.598...
    """
    _check_common(n, sample_size, estimator, sigma0)
    dt = _dtype(n, sample_size, sigma0)
    _, _, _, log_r = _params(sample_size, estimator, dt)
    n = jnp.asarray(n, dt)
    sigma0 = jnp.asarray(sigma0, dt)
    return sigma0**2 * jnp.exp(n * log_r)


@_v.closed_form(integers=_INTEGERS, reals=("sigma0",), broadcast=[_COMMON])
def expected_std(n, sample_size, estimator="unbiased", sigma0=1.0):
    r"""Mean fitted standard deviation after ``n`` fits (catalogue G4).

    .. math::

        \mathbb{E}[\sigma_n] = \sigma_0\, a^n, \qquad
        a = c_4(M)\sqrt{r} = \sqrt{\tfrac{2}{c}}
            \frac{\Gamma(M/2)}{\Gamma((M-1)/2)}.

    Exact (product of independent :math:`\sqrt{G_t}`, each of mean
    :math:`a`). :math:`\log c_4` uses ``gammaln`` for :math:`M < 21` and the
    asymptotic series
    :math:`\log c_4 = \sum_{k\,\mathrm{odd}} (2^{-k}-2) B_{k+1} / (k(k+1)h^k)`,
    :math:`h = (M-1)/2`, above (error below 1e-17), so it is accurate for
    :math:`M` up to 1e6 and beyond in float32 and float64.

    Args:
        n: number of fits (non-negative integer values), array-like.
        sample_size: samples per fit ``M >= 2``.
        estimator: ``"mle"`` or ``"unbiased"`` (static).
        sigma0: real standard deviation ``> 0``.

    Returns:
        Array of the broadcast shape of the inputs.

    References:
        THEORY.md G4; Suresh et al. (2024), arXiv:2412.17646 (c4 factor).

    Example:
        >>> from theory import gaussian
        >>> float(gaussian.expected_std(1, 2))  # sqrt(2/pi) for M = 2
        0.797...
    """
    _check_common(n, sample_size, estimator, sigma0)
    dt = _dtype(n, sample_size, sigma0)
    _, h, _, log_r = _params(sample_size, estimator, dt)
    n = jnp.asarray(n, dt)
    sigma0 = jnp.asarray(sigma0, dt)
    return sigma0 * jnp.exp(n * (_log_c4_h(h) + 0.5 * log_r))


@_v.closed_form(integers=_INTEGERS, reals=("sigma0",), broadcast=[_COMMON])
def variance_cv2(n, sample_size, estimator="unbiased", sigma0=1.0):
    r"""Squared coefficient of variation of :math:`\sigma_n^2` across chains (G2).

    .. math::

        \frac{\operatorname{Var}[\sigma_n^2]}{\mathbb{E}[\sigma_n^2]^2}
        = \left(\frac{\mathbb{E}[G^2]}{\mathbb{E}[G]^2}\right)^n - 1
        = \left(\frac{M+1}{M-1}\right)^n - 1,

    the same for both estimators (the divisor cancels) and free of
    :math:`\sigma_0` (``estimator`` and ``sigma0`` are accepted for a uniform
    signature, validated, and change only the broadcast shape). Use it to decide
    whether a cross-chain mean of :math:`\sigma_n^2` is measurable with a
    given number of chains: its relative standard error is
    :math:`\sqrt{\mathrm{cv}^2 / \mathrm{chains}}`.

    Args:
        n: number of fits (non-negative integer values).
        sample_size: samples per fit ``M >= 2``.
        estimator: ``"mle"`` or ``"unbiased"`` (static; no effect).
        sigma0: real standard deviation ``> 0`` (no effect).

    Returns:
        Array of the broadcast shape of the inputs (computed with ``expm1``).

    References:
        THEORY.md G2.

    Example:
        >>> from theory import gaussian
        >>> round(float(gaussian.variance_cv2(1, 11)), 6)  # 12/10 - 1
        0.2
    """
    _check_common(n, sample_size, estimator, sigma0)
    dt = _dtype(n, sample_size)
    m = jnp.asarray(sample_size, dt)
    n = jnp.asarray(n, dt)
    return _with_unused(jnp.expm1(n * jnp.log1p(2.0 / (m - 1.0))), sigma0)


@_v.closed_form(integers=_INTEGERS, reals=("sigma0",), broadcast=[_COMMON])
def std_cv2(n, sample_size, estimator="unbiased", sigma0=1.0):
    r"""Squared coefficient of variation of :math:`\sigma_n` across chains (G4).

    .. math::

        \frac{\mathbb{E}[\sigma_n^2]}{\mathbb{E}[\sigma_n]^2} - 1
        = \left(\frac{r}{a^2}\right)^n - 1 = c_4(M)^{-2n} - 1,

    which depends on neither the estimator nor :math:`\sigma_0` (both are
    accepted for a uniform signature, validated, and change only the
    broadcast shape).

    Args:
        n: number of fits (non-negative integer values).
        sample_size: samples per fit ``M >= 2``.
        estimator: ``"mle"`` or ``"unbiased"`` (static; no effect).
        sigma0: real standard deviation ``> 0`` (no effect).

    Returns:
        Array of the broadcast shape of the inputs.

    References:
        THEORY.md G2, G4.

    Example:
        >>> from theory import gaussian
        >>> round(float(gaussian.std_cv2(1, 2)), 4)  # pi/2 - 1
        0.5708
    """
    _check_common(n, sample_size, estimator, sigma0)
    dt = _dtype(n, sample_size)
    h = 0.5 * (jnp.asarray(sample_size, dt) - 1.0)
    n = jnp.asarray(n, dt)
    return _with_unused(jnp.expm1(-2.0 * n * _log_c4_h(h)), sigma0)


@_v.closed_form(integers=_INTEGERS, reals=("sigma0",), broadcast=[_COMMON])
def log_variance_mean(n, sample_size, estimator="unbiased", sigma0=1.0):
    r"""Mean of :math:`\log \sigma_n^2` (catalogue G3).

    .. math::

        \mathbb{E}[\log\sigma_n^2] = \log\sigma_0^2
            + n\left[\psi(\nu/2) + \log(2/c)\right].

    Exact (sum of independent :math:`\log G_t`). The per-fit drift is
    evaluated as :math:`[\psi(h) - \log h] + \log r` (asymptotic series for
    :math:`h \ge 10`), free of cancellation for large ``sample_size``. It is
    negative for both estimators (about :math:`-1/(M-1)` unbiased and
    :math:`-2/M` MLE per fit): both collapse almost surely.

    Args:
        n: number of fits (non-negative integer values).
        sample_size: samples per fit ``M >= 2``.
        estimator: ``"mle"`` or ``"unbiased"`` (static).
        sigma0: real standard deviation ``> 0``.

    Returns:
        Array of the broadcast shape of the inputs.

    References:
        THEORY.md G3.

    Example:
        >>> from theory import gaussian
        >>> float(gaussian.log_variance_mean(1, 3, "unbiased"))  # psi(1) + log 1
        -0.577...
    """
    _check_common(n, sample_size, estimator, sigma0)
    dt = _dtype(n, sample_size, sigma0)
    _, h, _, log_r = _params(sample_size, estimator, dt)
    n = jnp.asarray(n, dt)
    sigma0 = jnp.asarray(sigma0, dt)
    return 2.0 * jnp.log(sigma0) + n * _drift(h, log_r)


@_v.closed_form(integers=_INTEGERS, reals=("sigma0",), broadcast=[_COMMON])
def log_variance_var(n, sample_size, estimator="unbiased", sigma0=1.0):
    r"""Variance of :math:`\log\sigma_n^2` (catalogue G3).

    .. math::

        \operatorname{Var}[\log\sigma_n^2] = n\, \psi'(\nu/2),

    the same for both estimators (the divisor only shifts the logarithm) and
    for every :math:`\sigma_0` (``estimator`` and ``sigma0`` are accepted for
    a uniform signature, validated, and change only the broadcast shape).

    Args:
        n: number of fits (non-negative integer values).
        sample_size: samples per fit ``M >= 2``.
        estimator: ``"mle"`` or ``"unbiased"`` (static; no effect).
        sigma0: real standard deviation ``> 0`` (no effect).

    Returns:
        Array of the broadcast shape of the inputs.

    References:
        THEORY.md G3.

    Example:
        >>> from theory import gaussian
        >>> round(float(gaussian.log_variance_var(1, 3)), 6)  # psi'(1) = pi^2/6
        1.644934
    """
    _check_common(n, sample_size, estimator, sigma0)
    dt = _dtype(n, sample_size)
    h = 0.5 * (jnp.asarray(sample_size, dt) - 1.0)
    n = jnp.asarray(n, dt)
    return _with_unused(n * jsp.polygamma(1, h), sigma0)


@_v.closed_form(integers=_INTEGERS, reals=("sigma0",), broadcast=[_COMMON])
def mean_variance(n, sample_size, estimator="unbiased", sigma0=1.0):
    r"""Variance of the fitted mean across chains, :math:`\operatorname{Var}(\mu_n)` (G5).

    .. math::

        \operatorname{Var}(\mu_n) = \frac{\sigma_0^2}{M} \sum_{t=0}^{n-1} r^t
        = \begin{cases} n\,\sigma_0^2 / M & \text{unbiased } (r = 1)\\
          \sigma_0^2\,(1 - r^n) & \text{MLE } (1 - r = 1/M). \end{cases}

    Exact: :math:`\mu_n - \mu_0 = \sum_{t<n} \sigma_t Z_t/\sqrt{M}` with the
    :math:`Z_t` independent of the variance path and
    :math:`\mathbb{E}[\sigma_t^2] = \sigma_0^2 r^t`.

    Args:
        n: number of fits (non-negative integer values).
        sample_size: samples per fit ``M >= 2``.
        estimator: ``"mle"`` or ``"unbiased"`` (static).
        sigma0: real standard deviation ``> 0``.

    Returns:
        Array of the broadcast shape of the inputs.

    References:
        THEORY.md G5; Shumailov et al. (2024).

    Example:
        >>> from theory import gaussian
        >>> float(gaussian.mean_variance(10, 20, "unbiased"))
        0.5
    """
    _check_common(n, sample_size, estimator, sigma0)
    dt = _dtype(n, sample_size, sigma0)
    m, _, _, log_r = _params(sample_size, estimator, dt)
    n = jnp.asarray(n, dt)
    sigma0 = jnp.asarray(sigma0, dt)
    if estimator == "mle":
        return -(sigma0**2) * jnp.expm1(n * log_r)
    return sigma0**2 * n / m


@_v.closed_form(integers=_INTEGERS, reals=("sigma0",), broadcast=[_COMMON])
def expected_w2_squared(n, sample_size, estimator="unbiased", sigma0=1.0):
    r"""Expected squared Wasserstein-2 distance of fit ``n`` to the real law (G6).

    For Gaussians :math:`W_2^2 = (\mu_n - \mu_0)^2 + (\sigma_n - \sigma_0)^2`, so

    .. math::

        \mathbb{E}[W_2^2] = \operatorname{Var}(\mu_n)
            + \sigma_0^2 r^n - 2\sigma_0^2 a^n + \sigma_0^2
        = \operatorname{Var}(\mu_n)
            + \sigma_0^2\left[(1 - a^n)^2 + r^n(1 - c_4^{2n})\right].

    The second form (squared bias plus variance of :math:`\sigma_n`) is the
    one evaluated: it has no cancellation for large ``sample_size``.
    Unbiased: grows linearly in ``n`` (Shumailov et al.'s theorem, G8);
    MLE: tends to :math:`2\sigma_0^2`.

    Args:
        n: number of fits (non-negative integer values).
        sample_size: samples per fit ``M >= 2``.
        estimator: ``"mle"`` or ``"unbiased"`` (static).
        sigma0: real standard deviation ``> 0``.

    Returns:
        Array of the broadcast shape of the inputs.

    References:
        THEORY.md G6, G8; Shumailov et al. (2024), Nature 631.

    Example:
        >>> from theory import gaussian
        >>> round(float(gaussian.expected_w2_squared(1, 2, "unbiased")), 4)
        0.9042
    """
    _check_common(n, sample_size, estimator, sigma0)
    dt = _dtype(n, sample_size, sigma0)
    m, h, _, log_r = _params(sample_size, estimator, dt)
    n = jnp.asarray(n, dt)
    sigma0 = jnp.asarray(sigma0, dt)
    log_c4 = _log_c4_h(h)
    n_log_a = n * (log_c4 + 0.5 * log_r)
    bias = jnp.expm1(n_log_a)
    var_sigma = -jnp.exp(n * log_r) * jnp.expm1(2.0 * n * log_c4)  # a^2n (c4^-2n - 1)
    if estimator == "mle":
        var_mu = -jnp.expm1(n * log_r)
    else:
        var_mu = n / m
    return sigma0**2 * (var_mu + bias * bias + var_sigma)


@_v.closed_form(integers=_INTEGERS, reals=("eps", "sigma0"), broadcast=[(*_COMMON, "eps")])
def markov_tail_bound(n, sample_size, eps, sigma0=1.0, clip=False, estimator="unbiased"):
    r"""Suresh et al.'s bound on the probability that the fit has not collapsed (G9).

    .. math::

        P(\sigma_n > \varepsilon) \le \frac{\mathbb{E}[\sigma_n]}{\varepsilon}
        \le \frac{\sigma_0}{\varepsilon} \exp\!\left(-\frac{n}{4M-1}\right),

    by Markov's inequality and :math:`c_4(M) \le \exp(-1/(4M-1))`. It holds
    for both estimators (the MLE :math:`\sigma` is the unbiased one times
    :math:`\sqrt{r} < 1`), so ``estimator`` is accepted for a uniform
    signature, validated, and has no effect. ``eps`` is an absolute threshold
    on the standard deviation (same units as ``sigma0``).

    Args:
        n: number of fits (non-negative integer values).
        sample_size: samples per fit ``M >= 2``.
        eps: threshold ``> 0``.
        sigma0: real standard deviation ``> 0``.
        clip: if True return ``min(bound, 1)``; by default the bound is
            returned unclipped (it exceeds 1 while it is vacuous).
        estimator: ``"mle"`` or ``"unbiased"`` (static; no effect).

    Returns:
        Array of the broadcast shape of the inputs.

    References:
        Suresh et al. (2024), arXiv:2412.17646; THEORY.md G9.

    Example:
        >>> from theory import gaussian
        >>> float(gaussian.markov_tail_bound(0, 10, 2.0))
        0.5
    """
    _check_common(n, sample_size, estimator, sigma0)
    _v.check_positive("eps", eps, allow_inf=True)
    dt = _dtype(n, sample_size, eps, sigma0)
    m = jnp.asarray(sample_size, dt)
    n = jnp.asarray(n, dt)
    bound = jnp.asarray(sigma0, dt) / jnp.asarray(eps, dt) * jnp.exp(-n / (4.0 * m - 1.0))
    return jnp.minimum(bound, 1.0) if clip else bound
