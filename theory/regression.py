r"""Model collapse in linear regression: OLS and ridge refitted to their own labels (L1, L2).

Setting (Dohmatob, Feng & Kempe 2024; Gerstgrasser et al. 2024). True
weights :math:`w^* \in \mathbb{R}^d`; a design :math:`X \in \mathbb{R}^{T\times d}`
(``num_samples`` :math:`= T` rows, ``dim`` :math:`= d` columns) with
independent rows :math:`N(0, \Sigma)`; labels :math:`y = Xw + \varepsilon`,
:math:`\varepsilon \sim N(0, \sigma^2 I_T)` (:math:`\sigma` = ``noise``, a
standard deviation). Generation 0 is the truth, :math:`\hat w_0 = w^*`: fit 1
is fitted to real labels :math:`y_1 = X_1 w^* + \varepsilon_1`, and fit
:math:`t+1` to labels made by fit :math:`t`,
:math:`y_{t+1} = X_{t+1}\hat w_t + \varepsilon_{t+1}` with fresh noise.
Regimes and designs:

* ``regime="replace"``: fit :math:`t` uses only generation :math:`t`'s data;
  ``"accumulate"``: fit :math:`t` uses the data of generations
  :math:`1..t` pooled (Gerstgrasser et al.).
* ``design="fixed"``: the same :math:`X` every generation (so accumulating
  stacks :math:`t` copies of :math:`X`); ``"fresh"``: a new independent
  :math:`X_t` every generation.

Test error: the excess risk
:math:`\mathcal E_n = \mathbb{E}_x[(x^\top\hat w_n - x^\top w^*)^2]
= \lVert\hat w_n - w^*\rVert_\Sigma^2` for a test point
:math:`x \sim N(0, \Sigma)` (the test MSE is :math:`\sigma^2 + \mathcal E_n`).
For OLS every result below is independent of :math:`\Sigma` (whiten:
:math:`X = Z\Sigma^{1/2}` turns every trace below into the same trace for
:math:`Z`); the ridge results are conditional on a fixed :math:`X` and use
:math:`\Sigma = I` (:math:`\mathcal E_n = \lVert\hat w_n - w^*\rVert^2`).

Facts used: for OLS :math:`\hat w = (X^\top X)^{-1}X^\top y`, so given
:math:`X` the noise adds :math:`(X^\top X)^{-1}X^\top\varepsilon`, of
covariance :math:`\sigma^2 (X^\top X)^{-1}`; for Gaussian rows
:math:`X^\top X \sim W_d(T, I)` (after whitening) and
:math:`\mathbb{E}[(X^\top X)^{-1}] = I/(T - d - 1)` for :math:`T > d + 1`
(inverse-Wishart mean), infinite for :math:`T \le d + 1`.

Conventions of this module (those of :mod:`theory.gaussian`): pure
``jax.numpy``, no randomness; arguments broadcast; ``regime`` and ``design``
are static strings, taken by both closed forms (``ridge_test_error`` is
conditional on a fixed design: it accepts ``design="fixed"`` only;
``ridge_spectrum`` builds an input and takes neither); ``n`` may be traced
everywhere (every sum over generations has a closed form or a fixed-length
evaluation). Float64 and arguments:

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
    Dohmatob, E., Feng, Y. & Kempe, J. (2024). Model Collapse Demystified:
    The Case of Regression. arXiv:2402.07712 (NeurIPS 2024).

    Gerstgrasser, M. et al. (2024). Is Model Collapse Inevitable? Breaking
    the Curse of Recursion by Accumulating Real and Synthetic Data.
    arXiv:2404.01413.

    Muirhead, R. J. (1982). *Aspects of Multivariate Statistical Theory*,
    Wiley (moments of the inverse Wishart distribution).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theory import _validate as _v
from theory.mixing import _dtype, _geom_sum, _one_minus_pow, _power_sum, _zeta_diff

__all__ = [
    "REGIMES",
    "DESIGNS",
    "RidgeError",
    "Spectrum",
    "test_error",
    "ridge_test_error",
    "ridge_spectrum",
]

REGIMES = ("replace", "accumulate")
DESIGNS = ("fixed", "fresh")

_SHIFT = 16  # direct terms before the zeta-series tail
_B_TERMS = 13  # terms of the expansion in b = (d+1)/T: (b/17)^13 < 1e-16


class RidgeError(NamedTuple):
    """Excess test error of fit n and its bias / variance parts (arrays of the batch shape)."""

    total: jax.Array
    bias: jax.Array  # ||E[w_n | X] - w*||^2
    variance: jax.Array  # E||w_n - E[w_n | X]||^2 (label noise)


class Spectrum(NamedTuple):
    """Eigenvalues of X^T X and squared coordinates of w* in its eigenbasis, shape (..., d)."""

    eigenvalues: jax.Array
    signal: jax.Array


def _fresh_accumulate_sum(b, n):
    r"""F(b, n) = sum_{t=1}^n 1/(t (t - b)) for 0 <= b < 1, n >= 0 integer-valued (may be traced).

    t = 1..16 directly (masked by t <= n); the tail as
    sum_m b^m [zeta(m+2, 17) - zeta(m+2, n+1)] (13 terms, ratio b/17), every
    term positive.
    """
    t = jnp.arange(1, _SHIFT + 1, dtype=b.dtype)
    bb = b[..., None]
    head = jnp.sum(jnp.where(t <= n[..., None], 1.0 / (t * (t - bb)), 0.0), axis=-1)
    x = jnp.full_like(b, _SHIFT + 1.0)
    y = jnp.where(n > _SHIFT, n + 1.0, x)
    tail = jnp.zeros_like(head)
    power = jnp.ones_like(b)
    for m in range(_B_TERMS):
        tail = tail + power * _zeta_diff(m + 2, x, y)
        power = power * b
    return head + tail


def _check_sizes(dim, num_samples) -> None:
    _v.check_integer("dim", dim, 1)
    _v.check_integer("num_samples", num_samples, 1)
    if _v.is_concrete(dim) and _v.is_concrete(num_samples):
        d, t = np.broadcast_arrays(np.asarray(dim, np.float64), np.asarray(num_samples, np.float64))
        bad = t <= d + 1
        if np.any(bad):
            raise ValueError(
                f"num_samples must be > dim + 1 = {int(d[bad].reshape(-1)[0]) + 1} (the OLS "
                f"test error is infinite for T <= d + 1); got {int(t[bad].reshape(-1)[0])}"
            )


@_v.closed_form(
    integers=("n", "dim", "num_samples"),
    reals=("noise",),
    broadcast=[("n", "dim", "num_samples", "noise")],
)
def test_error(n, dim, num_samples, noise, regime="replace", design="fixed"):
    r"""Expected excess test error of OLS after ``n`` fits (L1, L2), averaged over noise and design.

    Returns :math:`\mathbb{E}\lVert\hat w_n - w^*\rVert_\Sigma^2`, the
    expectation over the label noise *and* the Gaussian design(s) (see the
    module docstring for the model; it does not depend on :math:`w^*` or
    :math:`\Sigma`). Conditional on a fixed :math:`X` the replace and
    accumulate results are the same with :math:`d/(T-d-1)` replaced by
    :math:`\operatorname{tr}((X^\top X)^{-1})` (:func:`ridge_test_error` with
    ``ridge=0`` gives them for a given spectrum). With
    :math:`k = \sigma^2 d/(T - d - 1)`:

    .. math::

        \text{replace (fixed or fresh design): } & \mathcal E_n = n\,k,\\
        \text{accumulate, fixed design: } & \mathcal E_n = k\sum_{i=1}^{n}\frac1{i^2}
            \;<\; \frac{\pi^2}{6}k,\\
        \text{accumulate, fresh design: } & \mathcal E_n
            = \sigma^2 d\sum_{t=1}^{n}\frac{1}{t\,(tT - d - 1)}
            \;\le\; \text{the fixed-design value}.

    Derivations (:math:`u_t = \hat w_t - w^*`, :math:`u_0 = 0`).
    *Replace*: :math:`\hat w_{t+1} = (X^\top X)^{-1}X^\top(X\hat w_t +
    \varepsilon_{t+1}) = \hat w_t + (X^\top X)^{-1}X^\top\varepsilon_{t+1}`
    (with :math:`X = X_{t+1}` for a fresh design): :math:`u_n` is a sum of
    :math:`n` uncorrelated terms, each of expected squared norm :math:`k`.
    This is L1 (fixed) and, in our convention where every generation has the
    same :math:`T` and :math:`\sigma`, L2 (fresh). With a per-generation
    :math:`(T_t, \sigma_t)` the replace error is
    :math:`\sum_t \sigma_t^2 d/(T_t - d - 1)`; the form quoted in THEORY.md L2
    from Dohmatob et al., :math:`\sigma^2 d/(T-d-1) + n\sigma_0^2 d/(T_0-d-1)`,
    is this sum for :math:`n` label-generating fits on :math:`T_0` samples
    with noise :math:`\sigma_0` followed by one final fit on :math:`T`
    samples with noise :math:`\sigma` (:math:`n + 1` fits in our count).
    *Accumulate, fixed*: fit :math:`t` solves OLS on :math:`t` stacked
    copies of :math:`X`, :math:`\hat w_t = \frac1t\sum_{j\le t}(X^\top X)^{-1}
    X^\top y_j = \frac1t\sum_{j\le t}(\hat w_{j-1} + \eta_j)`,
    :math:`\eta_j = (X^\top X)^{-1}X^\top\varepsilon_j`; subtracting the same
    identity at :math:`t-1` gives :math:`u_t = u_{t-1} + \eta_t/t`, so
    :math:`u_n = \sum_{t\le n}\eta_t/t` (Gerstgrasser et al.'s result; L1).
    *Accumulate, fresh* (new here): with
    :math:`G_t = \sum_{j\le t}X_j^\top X_j`, the normal equations give
    :math:`G_t u_t = G_{t-1}u_{t-1} + X_t^\top X_t u_{t-1} + X_t^\top
    \varepsilon_t`, i.e. :math:`u_t = u_{t-1} + G_t^{-1}X_t^\top\varepsilon_t`.
    The terms are uncorrelated (fresh noise), and
    :math:`\mathbb{E}\operatorname{tr}(G_t^{-1}X_t^\top X_t G_t^{-1})
    = \frac1t\mathbb{E}\operatorname{tr}(G_t^{-1})` because the :math:`t`
    blocks :math:`X_j^\top X_j` are exchangeable and sum to :math:`G_t`;
    :math:`G_t \sim W_d(tT, I)` gives :math:`d/(t(tT - d - 1))` per
    generation. (For :math:`d = 1` this is
    :math:`\mathbb{E}[B]\,\mathbb{E}[1/G]` with :math:`B \sim
    \mathrm{Beta}(T/2, (t-1)T/2)` independent of :math:`G \sim
    \chi^2_{tT}`.) With :math:`b = (d+1)/T < 1` the sum is
    :math:`\frac{\sigma^2 d}{T}\sum_t \frac1{t(t-b)}`; it converges to
    :math:`\frac{\sigma^2 d}{d+1}[\psi(1) - \psi(1-b)]`.

    Numerics: the sums over generations are 16 direct terms plus asymptotic
    Hurwitz-zeta tails in stable differences (relative accuracy near machine
    precision for every ``n``; ``n`` may be traced).

    Assumptions: Gaussian rows (any covariance :math:`\Sigma`, the same for
    test points); Gaussian homoscedastic label noise; :math:`T > d + 1` (the
    expectation is infinite otherwise).

    Args:
        n: number of fits (non-negative integer values).
        dim: :math:`d`, integer ``>= 1``.
        num_samples: :math:`T` rows per generation, integer ``> dim + 1``.
        noise: label-noise standard deviation :math:`\sigma \ge 0`.
        regime: ``"replace"`` or ``"accumulate"`` (static).
        design: ``"fixed"`` or ``"fresh"`` (static).

    Returns:
        Array of the broadcast shape of the inputs.

    References:
        THEORY.md L1, L2; Dohmatob et al. (2024), arXiv:2402.07712;
        Gerstgrasser et al. (2024), arXiv:2404.01413; Muirhead (1982).

    Example:
        >>> from theory import regression
        >>> float(regression.test_error(3, 2, 7, 1.0))  # 3 * 2 / 4
        1.5
    """
    _v.check_choice("regime", regime, REGIMES)
    _v.check_choice("design", design, DESIGNS)
    _v.check_n(n)
    _check_sizes(dim, num_samples)
    _v.check_finite_nonnegative("noise", noise)
    dt = _dtype(n, dim, num_samples, noise)
    n = jnp.asarray(n, dt)
    d = jnp.asarray(dim, dt)
    t = jnp.asarray(num_samples, dt)
    s2 = jnp.asarray(noise, dt) ** 2
    shape = jnp.broadcast_shapes(n.shape, d.shape, t.shape, s2.shape)
    n, d, t, s2 = (jnp.broadcast_to(x, shape) for x in (n, d, t, s2))
    k = s2 * d / (t - d - 1.0)
    if regime == "replace":
        return n * k
    if design == "fixed":
        return k * _power_sum(2, jnp.ones_like(n), n)
    return s2 * d / t * _fresh_accumulate_sum((d + 1.0) / t, n)


test_error.__test__ = False  # not a pytest test, whatever its name


def _check_ridge_inputs(n, eigenvalues, signal, noise, ridge):
    _v.check_n(n)
    _v.check_finite_nonnegative("eigenvalues", eigenvalues)
    _v.check_finite_nonnegative("signal", signal)
    _v.check_finite_nonnegative("noise", noise)
    _v.check_finite_nonnegative("ridge", ridge)
    if _v.is_concrete(eigenvalues) and _v.is_concrete(ridge):
        ev = np.asarray(eigenvalues, np.float64)
        lam = np.asarray(ridge, np.float64)
        if ev.ndim == 0:
            raise ValueError(
                "eigenvalues must hold the spectrum of X^T X on its last axis; got shape ()"
            )
        lam_b = np.broadcast_to(lam[..., None], np.broadcast_shapes(lam.shape + (1,), ev.shape))
        ev_b = np.broadcast_to(ev, lam_b.shape)
        bad = (lam_b == 0) & (ev_b == 0)
        if np.any(bad):
            raise ValueError(
                "eigenvalues must be > 0 where ridge = 0 (OLS needs X^T X invertible); got 0"
            )


@_v.closed_form(
    integers=("n",),
    reals=("eigenvalues", "signal", "noise", "ridge"),
    broadcast=[("n", "noise", "ridge", ("eigenvalues", 1)), ("eigenvalues", "signal")],
)
def ridge_test_error(n, eigenvalues, signal, noise, ridge, regime="replace", design="fixed"):
    r"""Excess test error of ridge regression after ``n`` fits, conditional on a fixed design.

    Model: the fixed-design chain of the module docstring with ridge
    :math:`\hat w = (X^\top X + \lambda I)^{-1}X^\top y` (:math:`\lambda` =
    ``ridge``; ``ridge=0`` is OLS). Write
    :math:`X^\top X = V\operatorname{diag}(\kappa)V^\top` (``eigenvalues``
    :math:`\kappa_i`) and :math:`s_i = (v_i^\top w^*)^2` (``signal``; see
    :func:`ridge_spectrum`). Returned: :math:`\mathbb{E}[\lVert\hat w_n -
    w^*\rVert^2 \mid X]` (expectation over the label noise only; isotropic
    test covariates) with its bias and variance parts. Every direction
    :math:`i` evolves separately; with :math:`a_i = \kappa_i/(\kappa_i +
    \lambda)`:

    *Replace.* :math:`\hat w_{t+1} = A\hat w_t + B\varepsilon_{t+1}`,
    :math:`A = (X^\top X + \lambda)^{-1}X^\top X`,
    :math:`B = (X^\top X + \lambda)^{-1}X^\top`, :math:`\hat w_0 = w^*`, so
    :math:`\hat w_n = A^n w^* + \sum_{j=1}^n A^{n-j}B\varepsilon_j` and, with
    :math:`BB^\top = V\operatorname{diag}(\kappa/(\kappa+\lambda)^2)V^\top`,

    .. math::

        \mathcal E_n = \sum_i s_i (1 - a_i^n)^2
            + \sigma^2\sum_i \frac{\kappa_i}{(\kappa_i+\lambda)^2}
              \frac{1 - a_i^{2n}}{1 - a_i^2}.

    The bias grows toward :math:`\sum_i s_i = \lVert w^*\rVert^2` (the
    shrinkage compounds: :math:`a_i^n \to 0`); the variance tends to
    :math:`\sigma^2\sum_i \kappa_i/(\lambda(2\kappa_i + \lambda))` instead of
    growing linearly (:math:`\lambda = 0`: :math:`n\sigma^2\sum_i 1/\kappa_i
    = n\sigma^2\operatorname{tr}((X^\top X)^{-1})`, L1 conditional on
    :math:`X`).

    *Accumulate* (fit :math:`t` on :math:`t` stacked copies of :math:`X`).
    Per direction, :math:`\hat w_t = (\kappa\sum_{j<t}\hat w_j + N_t)/
    (t\kappa + \lambda)` with :math:`N_t` the accumulated noise
    :math:`\sum_{j\le t}\eta_j`, :math:`\eta_j \sim N(0, \sigma^2\kappa)`.
    The mean satisfies :math:`\sum_{j<t+1}m_j = \sum_{j<t}m_j\,
    ((t+1)\kappa + \lambda)/(t\kappa + \lambda)`, hence
    :math:`m_t = a\,w^*` for every :math:`t \ge 1`: the bias stays at the
    one-fit ridge bias. For the noise, :math:`Q_t = \sum_{j\le t}e_j`
    satisfies :math:`Q_t/c_{t+1} = Q_{t-1}/c_t + N_t/(c_t c_{t+1})`,
    :math:`c_t = t\kappa + \lambda`, and telescoping
    :math:`1/(c_sc_{s+1}) = (1/c_s - 1/c_{s+1})/\kappa` gives
    :math:`e_n = \sum_{j=1}^{n}\eta_j/(j\kappa + \lambda)`. So

    .. math::

        \mathcal E_n = \sum_i s_i\left(\frac{\lambda}{\kappa_i+\lambda}\right)^2
            + \sigma^2\sum_i \kappa_i\sum_{j=1}^{n}\frac{1}{(j\kappa_i+\lambda)^2},

    bounded by its :math:`n \to \infty` limit (:math:`\lambda = 0`:
    :math:`\sigma^2\operatorname{tr}((X^\top X)^{-1})\sum_{j\le n}1/j^2`, L1).

    Not derived (not provided): the expectation over a Gaussian design for
    :math:`\lambda > 0` (no finite-:math:`T` closed form; Dohmatob et al.
    give random-matrix asymptotics), and ridge with a fresh design each
    generation.

    Numerics: :math:`a^n` via :math:`\exp(-n\log1p(\lambda/\kappa))`,
    :math:`1 - a^n` via ``expm1``, the geometric sum as
    ``expm1(2n log a) / expm1(2 log a)`` (exact limit :math:`n` at
    :math:`\lambda = 0`); the accumulate sum is
    :math:`\kappa^{-2}\sum_{j=0}^{n-1}(1 + \lambda/\kappa + j)^{-2}`, 16 direct
    terms plus an asymptotic Hurwitz-zeta tail. A zero eigenvalue (allowed
    when :math:`\lambda > 0`) contributes its full bias :math:`s_i` and no
    variance.

    Args:
        n: number of fits (non-negative integer values); may be traced.
        eigenvalues: :math:`\kappa`, eigenvalues of :math:`X^\top X`, shape
            ``(..., d)``, ``>= 0`` (``> 0`` where ``ridge == 0``).
        signal: :math:`s_i = (v_i^\top w^*)^2`, broadcastable to
            ``eigenvalues`` (a scalar :math:`\lVert w^*\rVert^2/d` is the
            average over a :math:`w^*` of fixed norm and uniform direction).
        noise: label-noise standard deviation :math:`\sigma \ge 0`.
        ridge: :math:`\lambda \ge 0`, broadcast against the batch shape.
        regime: ``"replace"`` or ``"accumulate"`` (static).
        design: ``"fixed"`` only (static): the result is conditional on one
            fixed design; accepted for a uniform signature with
            :func:`test_error`, and ``"fresh"`` is refused (not derived).

    Returns:
        :class:`RidgeError` ``(total, bias, variance)``, arrays of the
        broadcast batch shape of ``n``, ``noise``, ``ridge`` and
        ``eigenvalues.shape[:-1]``.

    References:
        Dohmatob et al. (2024), arXiv:2402.07712 (ridge, replace);
        Gerstgrasser et al. (2024) (accumulate).

    Example:
        >>> from theory import regression
        >>> res = regression.ridge_test_error(2, [1.0], [1.0], 0.0, 1.0)  # a = 1/2
        >>> float(res.bias)  # (1 - 1/4)^2
        0.5625
    """
    _v.check_choice("regime", regime, REGIMES)
    _v.check_choice("design", design, ("fixed",))
    _check_ridge_inputs(n, eigenvalues, signal, noise, ridge)
    dt = _dtype(n, eigenvalues, signal, noise, ridge)
    kappa = jnp.asarray(eigenvalues, dt)
    sig = jnp.asarray(signal, dt)
    n = jnp.asarray(n, dt)[..., None]
    s2 = jnp.asarray(noise, dt)[..., None] ** 2
    lam = jnp.asarray(ridge, dt)[..., None]
    pos = kappa > 0
    kap = jnp.where(pos, kappa, 1.0)
    ratio = lam / kap  # lambda / kappa
    if regime == "replace":
        log_a = jnp.where(pos, -jnp.log1p(ratio), -jnp.inf)
        shrink = _one_minus_pow(log_a, n)
        bias = sig * shrink * shrink
        weight = jnp.where(pos, kap / (kap + lam) ** 2, 0.0)
        var = s2 * weight * _geom_sum(2.0 * log_a, n)
    else:
        frac = jnp.where(pos, lam / (kap + lam), 1.0)
        bias = jnp.where(n > 0, sig * frac * frac, 0.0)
        a = jnp.broadcast_to(1.0 + ratio, jnp.broadcast_shapes(ratio.shape, n.shape))
        sums = _power_sum(2, a, jnp.broadcast_to(n, a.shape))
        var = s2 * jnp.where(pos, sums / kap, 0.0)
    bias = jnp.sum(jnp.broadcast_to(bias, jnp.broadcast_shapes(bias.shape, var.shape)), axis=-1)
    var = jnp.sum(var, axis=-1)
    shape = jnp.broadcast_shapes(bias.shape, var.shape)
    bias = jnp.broadcast_to(bias, shape)
    var = jnp.broadcast_to(var, shape)
    return RidgeError(bias + var, bias, var)


@_v.closed_form(reals=("design", "w_star"))
def ridge_spectrum(design, w_star):
    r"""Spectrum of :math:`X^\top X` and :math:`s_i = (v_i^\top w^*)^2` (for ridge_test_error).

    ``jnp.linalg.eigh`` of :math:`X^\top X`; eigenvalues are clipped at 0
    (rounding can make those of a singular :math:`X^\top X` slightly
    negative).

    Args:
        design: :math:`X`, shape ``(..., T, d)``.
        w_star: :math:`w^*`, shape ``(..., d)``.

    Returns:
        :class:`Spectrum` ``(eigenvalues, signal)``, each of shape ``(..., d)``.

    Example:
        >>> import numpy as np
        >>> from theory import regression
        >>> spec = regression.ridge_spectrum(np.eye(3)[:, :2] * 2.0, np.array([1.0, 0.0]))
        >>> [float(x) for x in spec.eigenvalues], [float(x) for x in spec.signal]
        ([4.0, 4.0], [1.0, 0.0])
    """
    dt = _dtype(design, w_star)
    x = jnp.asarray(design, dt)
    w = jnp.asarray(w_star, dt)
    if x.ndim < 2:
        raise ValueError(f"design must have shape (..., T, d); got shape {x.shape}")
    if w.shape[-1:] != x.shape[-1:]:
        raise ValueError(f"w_star must have shape (..., {x.shape[-1]}); got shape {w.shape}")
    _v.check_not_nan("design", design)
    _v.check_not_nan("w_star", w_star)
    gram = jnp.swapaxes(x, -1, -2) @ x
    evals, evecs = jnp.linalg.eigh(gram)
    coords = jnp.einsum("...ij,...i->...j", evecs, w)
    return Spectrum(jnp.maximum(evals, 0.0), coords * coords)
