r"""Exact theory for the recursively refitted d-dimensional Gaussian (full covariance).

Setting. Generation 0 is the real distribution :math:`N(\mu_0, I_d)`. Fit
:math:`n = 1, 2, \dots` is the sample mean and the covariance
:math:`\hat\Sigma = S / c` (:math:`S` the scatter matrix, :math:`c = M`
"mle" or :math:`M - 1` "unbiased") of :math:`M` = ``sample_size`` > d points
drawn from fit :math:`n - 1`. Notation: :math:`r = (M-1)/c`.

The chain (THEORY.md W1, W2). Given fit :math:`t`, the scatter of the next
sample is :math:`\Sigma_t^{1/2} W \Sigma_t^{1/2\,T}` with
:math:`W \sim \mathrm{Wishart}_d(M-1, I)` independent of the past and of the
sample mean :math:`\mu_{t+1} = \mu_t + \Sigma_t^{1/2} Z / \sqrt M`. Hence

.. math::
    \log\det\Sigma_n = \log\det\Sigma_0 + \sum_{t=1}^n \sum_{i=1}^d
        \log\frac{\chi^2_{M-i,t}}{c}

(Bartlett: :math:`\det W = \prod_{i=1}^d \chi^2_{M-i}`, independent),
:math:`\mathbb{E}[\Sigma_{t+1} \mid \Sigma_t] = r\Sigma_t` and
:math:`\mathbb{E}\|\mu_{t+1} - \mu_t\|^2 = \mathbb{E}\operatorname{tr}\Sigma_t / M`.
At d = 1 every function equals its :mod:`theory.gaussian` counterpart.

Conventions (those of :mod:`theory.poisson`): ``n`` is the number of fits
(0: the real distribution); pure ``jax.numpy``; arguments broadcast; float64
without x64 (``theory._precision``); the argument rule of
``theory._validate``. ``n`` and ``sample_size`` may be traced; ``dim`` sets
the length of the sum over dimensions, so it must be concrete (a Python or
NumPy integer, or an array of them), ``1 <= dim < sample_size``.

References:
    Bartlett, M. S. (1933). On the theory of statistical regression. Proc.
    Roy. Soc. Edinburgh 53, 260-283.

    Anderson, T. W. (2003). *An Introduction to Multivariate Statistical
    Analysis*, 3rd ed., Wiley: Theorem 7.2.3 (Bartlett decomposition),
    Section 7.5 (the law of the generalised variance).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax.scipy import special as jsp

from theory import _validate as _v
from theory.gaussian._numerics import _psi_minus_log

__all__ = ["log_det_mean", "log_det_var", "expected_trace", "mean_sq_error"]

_INTEGERS = ("n", "sample_size", "dim")
_ALL = ("n", "sample_size", "dim")


def _args(n, sample_size, dim, estimator="unbiased"):
    """Checks; (n, M, dims as a concrete int array, dtype, c, log r)."""
    _v.check_choice("estimator", estimator, ("mle", "unbiased"))
    _v.check_n(n)
    _v.check_sample_size(sample_size)
    if not _v.is_concrete(dim):
        raise ValueError("dim must be concrete (it sets the length of the sum over dimensions)")
    _v.check_integer("dim", dim, 1)
    if _v.is_concrete(sample_size):
        bad = np.broadcast_to(
            np.asarray(dim) >= np.asarray(sample_size),
            np.broadcast_shapes(np.shape(dim), np.shape(sample_size)),
        )
        if np.any(bad):
            i = np.argmax(bad.ravel())
            dd = np.broadcast_to(np.asarray(dim), bad.shape).ravel()[i]
            mm = np.broadcast_to(np.asarray(sample_size), bad.shape).ravel()[i]
            raise ValueError(f"dim must be < sample_size; got dim={dd}, sample_size={mm}")
    dt = _v.result_dtype(n, sample_size, dim)
    m = jnp.asarray(sample_size, dt)
    if estimator == "mle":
        c, log_r = m, jnp.log1p(-1.0 / m)
    else:
        c, log_r = m - 1.0, jnp.zeros_like(m)
    return jnp.asarray(n, dt), m, np.asarray(dim), dt, c, log_r


def _over_dims(term, dim, dt):
    """sum_{i=1}^{dim} term(i), dim a concrete integer array (masked to its maximum)."""
    top = int(np.max(dim))
    i = jnp.arange(1, top + 1, dtype=dt)
    d = jnp.asarray(dim, dt)[..., None]
    return jnp.sum(jnp.where(i <= d, term(i), 0.0), axis=-1)


@_v.closed_form(integers=_INTEGERS, broadcast=[_ALL])
def log_det_mean(n, sample_size, dim, estimator="unbiased"):
    r"""Mean of :math:`\log\det\Sigma_n` for :math:`\Sigma_0 = I` (catalogue W2).

    .. math::

        \mathbb{E}[\log\det\Sigma_n] = n \sum_{i=1}^d
            \left[\psi\!\left(\tfrac{M-i}{2}\right) + \log\tfrac{2}{c}\right].

    Exact (a sum of independent log chi-squares, Bartlett). Each term is
    evaluated as :math:`[\psi(h_i) - \log h_i] + \log((M-i)/c)`,
    :math:`h_i = (M-i)/2`, free of cancellation for large ``sample_size``. It
    is negative for both estimators and d >= 1: even the unbiased fit, whose
    expected covariance is a martingale, shrinks the determinant (by about
    :math:`-d(d+1)/(2M)` per fit).

    Args:
        n: number of fits (non-negative integer values).
        sample_size: points per fit ``M > dim``.
        dim: dimension ``d >= 1`` (concrete).
        estimator: ``"mle"`` or ``"unbiased"`` (static).

    Returns:
        Array of the broadcast shape of ``n``, ``sample_size`` and ``dim``.

    References:
        THEORY.md W2; Anderson (2003), Theorem 7.2.3 and Section 7.5.

    Example:
        >>> from theory import multivariate
        >>> round(float(multivariate.log_det_mean(1, 3, 1)), 4)  # psi(1) + log 1
        -0.5772
    """
    n, m, dim, dt, c, _ = _args(n, sample_size, dim, estimator)
    m_ = m[..., None]
    c_ = c[..., None]

    def term(i):
        return _psi_minus_log(0.5 * (m_ - i)) + jnp.log1p((m_ - i - c_) / c_)

    return n * _over_dims(term, dim, dt)


@_v.closed_form(integers=_INTEGERS, broadcast=[_ALL])
def log_det_var(n, sample_size, dim):
    r"""Variance of :math:`\log\det\Sigma_n` (catalogue W2).

    .. math::

        \operatorname{Var}[\log\det\Sigma_n] = n \sum_{i=1}^d
            \psi'\!\left(\tfrac{M-i}{2}\right),

    the same for both estimators (the divisor only shifts the logarithm).

    Args:
        n: number of fits (non-negative integer values).
        sample_size: points per fit ``M > dim``.
        dim: dimension ``d >= 1`` (concrete).

    Returns:
        Array of the broadcast shape of the inputs.

    References:
        THEORY.md W2; Anderson (2003), Section 7.5.

    Example:
        >>> from theory import multivariate
        >>> round(float(multivariate.log_det_var(1, 3, 1)), 4)  # psi'(1) = pi^2/6
        1.6449
    """
    n, m, dim, dt, _, _ = _args(n, sample_size, dim)
    m_ = m[..., None]
    return n * _over_dims(lambda i: jsp.polygamma(1, 0.5 * (m_ - i)), dim, dt)


@_v.closed_form(integers=_INTEGERS, broadcast=[_ALL])
def expected_trace(n, sample_size, dim, estimator="unbiased"):
    r"""Mean trace of the fitted covariance for :math:`\Sigma_0 = I` (catalogue W1).

    .. math::

        \mathbb{E}[\operatorname{tr}\Sigma_n] = d\, r^n, \qquad r = \frac{M-1}{c}.

    Exact (:math:`\mathbb{E}[\Sigma_{t+1} \mid \Sigma_t] = r\Sigma_t`): the
    unbiased covariance is a matrix martingale, the MLE shrinks by
    :math:`(M-1)/M` per fit.

    Args:
        n: number of fits (non-negative integer values).
        sample_size: points per fit ``M > dim``.
        dim: dimension ``d >= 1`` (concrete).
        estimator: ``"mle"`` or ``"unbiased"`` (static).

    Returns:
        Array of the broadcast shape of the inputs.

    References:
        THEORY.md W1.

    Example:
        >>> from theory import multivariate
        >>> round(float(multivariate.expected_trace(10, 20, 3, "mle")), 4)  # 3 (19/20)^10
        1.7962
    """
    n, _, dim, dt, _, log_r = _args(n, sample_size, dim, estimator)
    return jnp.asarray(dim, dt) * jnp.exp(n * log_r)


@_v.closed_form(integers=_INTEGERS, broadcast=[_ALL])
def mean_sq_error(n, sample_size, dim, estimator="unbiased"):
    r"""Mean squared error of the fitted mean, :math:`\mathbb{E}\|\mu_n - \mu_0\|^2` (W1).

    .. math::

        \mathbb{E}\|\mu_n - \mu_0\|^2 = \frac{d}{M} \sum_{t=0}^{n-1} r^t
            = \frac{d}{M} \frac{r^n - 1}{r - 1} \quad (n \text{ for } r = 1),

    for :math:`\Sigma_0 = I` (``expm1`` ratios, exact at r = 1).

    Args:
        n: number of fits (non-negative integer values).
        sample_size: points per fit ``M > dim``.
        dim: dimension ``d >= 1`` (concrete).
        estimator: ``"mle"`` or ``"unbiased"`` (static).

    Returns:
        Array of the broadcast shape of the inputs.

    References:
        THEORY.md W1.

    Example:
        >>> from theory import multivariate
        >>> round(float(multivariate.mean_sq_error(10, 20, 3)), 4)  # 3 * 10 / 20
        1.5
    """
    n, m, dim, dt, _, log_r = _args(n, sample_size, dim, estimator)
    unit = log_r == 0
    safe = jnp.where(unit, -1.0, log_r)
    geometric = jnp.where(unit, n, jnp.expm1(n * safe) / jnp.expm1(safe))
    return jnp.asarray(dim, dt) / m * geometric
