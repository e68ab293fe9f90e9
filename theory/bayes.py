r"""Exact theory for the recursively refitted conjugate Bayesian Gaussian (Normal-Inverse-Gamma).

Setting (``sim.families.bayes``). Generation 0 is the real distribution
:math:`N(m, s^2)` (``real_mean``, ``real_sd``). Fit :math:`n` is a
Normal-Inverse-Gamma posterior :math:`(\mu_n, \kappa_n, \alpha_n, \beta_n)`
computed from :math:`M` = ``sample_size`` points drawn from fit :math:`n-1`'s
predictive (fit 1 from real data), with the conjugate update (Gelman et al.,
BDA 3rd ed., Sec. 3.3; Murphy 2007, eq. 85-89)

.. math::
    \kappa' = \kappa + M,\ \mu' = \frac{\kappa\mu + M\bar x}{\kappa'},\
    \alpha' = \alpha + \frac M2,\
    \beta' = \beta + \frac S2 + \frac{\kappa M(\bar x - \mu)^2}{2\kappa'},

applied to the prior :math:`(\mu_0, \kappa_0, \alpha_0, \beta_0)` every generation
(``update="refit"``, regime (a)) or to the previous posterior
(``update="sequential"``, regime (b)). ``predictive="joint"`` draws
:math:`(\mu, \sigma^2)` from the posterior once, then M normal points;
``"student_t"`` draws M independent points of the one-point predictive
:math:`t_{2\alpha}(\mu_n, \beta_n(1+1/\kappa_n)/\alpha_n)`.

Everything below is derived here (the update and the predictive are BDA's); the
statistic is :math:`v_n = \mathbb{E}[\beta_n/(\alpha_n-1)]`, the expected posterior
mean of :math:`\sigma^2` (:math:`v_0 = s^2`), with the posterior mean
:math:`\mu_n` of :math:`\mu`.

**One step.** Let :math:`u_t = \mathbb{E}[\sigma^2 \mid \text{fit } t] =
\beta_t/(\alpha_t-1)` and :math:`1/\kappa_t` the parameter uncertainty
(:math:`u_0 = s^2`, :math:`1/\kappa_0 = 0` for the real distribution). Joint:
:math:`\mathbb{E}[S] = (M-1)u_t` and :math:`\bar x - \mu_t` has variance
:math:`u_t(1/\kappa_t + 1/M)`. Student-t: the points are iid with variance
:math:`V = u_t(1 + 1/\kappa_t)`, so :math:`\mathbb{E}[S] = (M-1)V` and
:math:`\operatorname{Var}(\bar x - \mu_t) = V/M`. Both are linear in :math:`\beta_t`
and the update is linear in :math:`S` and in :math:`(\bar x - c)^2`, so the
expectations close:

* **(a) refit.** With :math:`\kappa = \kappa_0 + M`, :math:`a = \alpha_0 + M/2`,
  :math:`h = \kappa_0 M/(2\kappa)`, :math:`q = (M/\kappa)^2` and
  :math:`D_t = \mathbb{E}(\mu_t - \mu_0)^2`, the pair :math:`x_t = (v_t, D_t)` obeys the
  affine recursion :math:`x_{t+1} = A x_t + (\beta_0/(a-1), 0)` for :math:`t \ge 1`
  (joint: :math:`A = [[((M-1)/2 + h c)/(a-1), h/(a-1)], [q c, q]]`,
  :math:`c = 1/\kappa + 1/M`; Student-t: :math:`c` replaced by :math:`e/M` and the
  first entry by :math:`e((M-1)/2 + h/M)/(a-1)`, :math:`e = 1 + 1/\kappa`), solved
  in closed form by the eigen-decomposition of the 2x2 matrix, and
  :math:`\mathbb{E}\mu_n - \mu_0 = (M/\kappa)^n (m - \mu_0)`. **The prior stops
  collapse.** For the joint predictive the fixed point is exactly the prior mean,
  :math:`v_\infty = \beta_0/(\alpha_0 - 1)` (the algebra: the denominator
  :math:`a - 1 - (M-1)/2 - h c/(1-q)` equals :math:`\alpha_0 - 1`), because the chain
  is then a data-augmentation Gibbs sampler on :math:`(\theta, X)` whose
  stationary law has the prior as its :math:`\theta` marginal (Tanner & Wong 1987):
  the chain forgets the real data and converges to the prior predictive,
  geometrically at the rate :func:`drift_rate` (the larger eigenvalue of
  :math:`A`; its diagonal holds the variance's own rate, about
  :math:`(M-1)/(2\alpha_0 + M - 2)`, and the mean's pull :math:`q = (M/(\kappa_0+M))^2`,
  which dominates for small :math:`\kappa_0`). For :math:`\alpha_0 \le 1` the prior has no
  mean and :math:`v_n \to \infty`. Stationary law (joint): :math:`\beta_\infty =
  \beta_0 / W`, :math:`W \sim \mathrm{Beta}(\alpha_0, M/2)` (:func:`stationary_log_var_mean`).
  The Student-t predictive's extra spread gives a larger fixed point
  (:func:`var_mean_fixed_point`).
* **(b) sequential.** :math:`\kappa_t = \kappa_0 + tM`, :math:`\alpha_t = \alpha_0 + tM/2`.
  Joint: :math:`\mathbb{E}[\beta_{t+1}] = \mathbb{E}[\beta_t](1 + M/(2(\alpha_t-1)))`, i.e.
  :math:`v_n = v_1` for all :math:`n \ge 1`: the posterior mean of :math:`\sigma^2` is a
  martingale (exchangeability of the predictive sequence), the posterior
  concentrates (its variance of :math:`\sigma^2` falls like :math:`1/n`) on a random
  limit whose law is the posterior after fit 1: no collapse, no drift, the chain
  freezes. :math:`\mathbb{E}\mu_n = \mathbb{E}\mu_1` and
  :math:`\operatorname{Var}\mu_n = \operatorname{Var}\mu_1 + v_1(1/\kappa_1 - 1/\kappa_n)`
  (telescoping). Student-t: :math:`v_{t+1} = v_t\,[1 + M(M-1)/(2\kappa_t\kappa_{t+1}
  (\alpha_{t+1}-1))]`, an increasing sequence with a finite limit (the factors are
  :math:`1 + O(t^{-3})`), and :math:`\operatorname{Var}\mu_{t+1} = \operatorname{Var}\mu_t +
  (M/\kappa_{t+1})^2 v_t(1+1/\kappa_t)/M`; this one is an exact recursion (a product
  of length n, so ``n`` must be concrete there).

**Against the plug-in MLE chain** (:mod:`theory.gaussian`): there
:math:`\mathbb{E}\sigma_n^2 = s^2((M-1)/M)^n \to 0` and
:math:`\mathbb{E}\log\sigma_n^2 \to -\infty` linearly. A proper prior
(:math:`\kappa_0, \alpha_0, \beta_0 > 0`) removes the collapse in both regimes:
(a) replaces it by convergence to the prior, (b) by a frozen random limit. The
flat-prior limit :math:`\kappa_0, \beta_0 \to 0`, :math:`\alpha_0 \to -1/2` (not
allowed here) gives back a collapsing chain.

Conventions (those of :mod:`theory.poisson`): ``n`` is the number of fits (0: the
real distribution); pure ``jax.numpy``; arguments broadcast; float64 without x64
(``theory._precision``); the argument rule of ``theory._validate`` (``n`` a
non-negative integer, ``sample_size`` an integer >= 2, ``kappa0``, ``alpha0``,
``beta0``, ``real_sd`` finite and > 0, ``mu0`` and ``real_mean`` finite; one-line
``ValueError`` naming the argument and value). ``update`` is ``"refit"`` or
``"sequential"``, ``predictive`` ``"joint"`` or ``"student_t"``.

References:
    Gelman, A., Carlin, J. B., Stern, H. S., Dunson, D. B., Vehtari, A. &
    Rubin, D. B. (2013). *Bayesian Data Analysis*, 3rd ed., CRC: Sec. 3.3 (the
    normal model with the conjugate prior; posterior and predictive).

    Murphy, K. P. (2007). Conjugate Bayesian analysis of the Gaussian
    distribution. Technical note, Sec. 6 (NIG parametrisation).

    Tanner, M. A. & Wong, W. H. (1987). The calculation of posterior
    distributions by data augmentation. JASA 82, 528-540 (the chain
    theta -> X -> theta and its stationary law).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax.scipy import special as jsp

from theory import _validate as _v

__all__ = [
    "UPDATES",
    "PREDICTIVES",
    "expected_var_mean",
    "expected_mean",
    "mean_variance",
    "drift_rate",
    "var_mean_fixed_point",
    "stationary_log_var_mean",
]

UPDATES = ("refit", "sequential")
PREDICTIVES = ("joint", "student_t")
_CHAIN = ("n", "sample_size", "mu0", "kappa0", "alpha0", "beta0", "real_mean", "real_sd")
_REALS = ("mu0", "kappa0", "alpha0", "beta0", "real_mean", "real_sd")


def _check(n, sample_size, mu0, kappa0, alpha0, beta0, real_mean, real_sd, update, predictive):
    _v.check_choice("update", update, UPDATES)
    _v.check_choice("predictive", predictive, PREDICTIVES)
    if n is not None:
        _v.check_n(n)
    _v.check_sample_size(sample_size)
    for name, x in (("kappa0", kappa0), ("alpha0", alpha0), ("beta0", beta0), ("real_sd", real_sd)):
        if x is not None:
            _v.check_positive(name, x)
    for name, x in (("mu0", mu0), ("real_mean", real_mean)):
        if x is not None:
            _v.check_not_nan(name, x)
            _v.check_positive(f"|{name}| + 1", jnp.abs(jnp.asarray(x, float)) + 1.0)
    vals = [x for x in (n, sample_size, mu0, kappa0, alpha0, beta0, real_mean, real_sd)]
    dtype = _v.result_dtype(*[x for x in vals if x is not None])
    return [None if x is None else jnp.asarray(x, dtype) for x in vals]


def _first_fit(m, mu0, k0, a0, b0, rm, rs):
    """(v_1, D_1 = E(mu_1 - mu0)^2, E mu_1 - mu0) of the first fit (real data, the prior)."""
    k1, a1 = k0 + m, a0 + 0.5 * m
    d0 = rm - mu0
    q1 = d0 * d0 + rs * rs / m
    v1 = (b0 + 0.5 * (m - 1) * rs * rs + 0.5 * k0 * m / k1 * q1) / (a1 - 1.0)
    return v1, (m / k1) ** 2 * q1, (m / k1) * d0


def _refit_matrix(m, k0, a0, b0, predictive):
    """(A, c) of x_{t+1} = A x_t + c, x = (v, D), for t >= 1 (module docstring)."""
    k, a = k0 + m, a0 + 0.5 * m
    h, q = 0.5 * k0 * m / k, (m / k) ** 2
    if predictive == "joint":
        c = 1.0 / k + 1.0 / m
        a11 = (0.5 * (m - 1) + h * c) / (a - 1.0)
        a21 = q * c
    else:
        e = 1.0 + 1.0 / k
        a11 = e * (0.5 * (m - 1) + h / m) / (a - 1.0)
        a21 = q * e / m
    return (a11, h / (a - 1.0), a21, q), b0 / (a - 1.0)


def _eig(mat):
    a11, a12, a21, a22 = mat
    half_tr = 0.5 * (a11 + a22)
    det = a11 * a22 - a12 * a21
    root = jnp.sqrt(jnp.maximum(half_tr * half_tr - det, 0.0))
    return half_tr + root, half_tr - root


def _power(lam, k):
    """lam^k for a real lam of any sign and an integer-valued float k >= 0."""
    mag = jnp.abs(lam) ** k
    odd = jnp.mod(k, 2.0) == 1.0
    return jnp.where((lam < 0) & odd, -mag, mag)


def _geometric(lam, k):
    """sum_{j<k} lam^j (k where lam = 1)."""
    one = lam == 1.0
    safe = jnp.where(one, 0.5, lam)
    return jnp.where(one, k, (1.0 - _power(safe, k)) / (1.0 - safe))


def _refit(n, m, mu0, k0, a0, b0, rm, rs, predictive):
    """(v_n, D_n, E mu_n - mu0) of regime (a), closed form."""
    v1, d1, e1 = _first_fit(m, mu0, k0, a0, b0, rm, rs)
    mat, c = _refit_matrix(m, k0, a0, b0, predictive)
    a11, a12, a21, a22 = mat
    l1, l2 = _eig(mat)
    gap = l1 - l2
    kk = jnp.maximum(n - 1.0, 0.0)
    # A^k = p1(k) A + p0(k) I (Cayley-Hamilton), likewise for the geometric sum
    p1 = (_power(l1, kk) - _power(l2, kk)) / gap
    p0 = (l1 * _power(l2, kk) - l2 * _power(l1, kk)) / gap
    g1 = (_geometric(l1, kk) - _geometric(l2, kk)) / gap
    g0 = (l1 * _geometric(l2, kk) - l2 * _geometric(l1, kk)) / gap
    v = p1 * (a11 * v1 + a12 * d1) + p0 * v1 + (g1 * a11 + g0) * c
    d = p1 * (a21 * v1 + a22 * d1) + p0 * d1 + g1 * a21 * c
    mean_dev = (m / (k0 + m)) ** n * (rm - mu0)
    zero = n == 0
    v = jnp.where(zero, rs * rs, v)
    d = jnp.where(zero, (rm - mu0) ** 2, d)
    return v, d, mean_dev


def _sequential(n, m, mu0, k0, a0, b0, rm, rs, predictive):
    """(v_n, Var mu_n, E mu_n - mu0) of regime (b)."""
    v1, d1, e1 = _first_fit(m, mu0, k0, a0, b0, rm, rs)
    k1 = k0 + m
    var1 = (m / k1) ** 2 * rs * rs / m
    zero = n == 0
    if predictive == "joint":
        kn = k0 + jnp.maximum(n, 1.0) * m
        v = jnp.where(zero, rs * rs, v1 + 0.0 * n)
        var = jnp.where(zero, 0.0, var1 + v1 * (1.0 / k1 - 1.0 / kn))
        return v, var, jnp.where(zero, rm - mu0, e1 + 0.0 * n)
    if not _v.is_concrete(n):
        raise ValueError("n must be concrete for update='sequential', predictive='student_t'")
    top = int(np.max(np.asarray(n))) if np.size(np.asarray(n)) else 0
    t = jnp.arange(1, max(top, 1), dtype=v1.dtype)  # steps t -> t+1, t = 1..top-1
    ex = lambda x: jnp.asarray(x)[..., None]  # noqa: E731
    m_, k0_, a0_ = ex(m), ex(k0), ex(a0)
    kt, kt1 = k0_ + t * m_, k0_ + (t + 1) * m_
    at1 = a0_ + 0.5 * (t + 1) * m_
    factor = 1.0 + m_ * (m_ - 1.0) / (2.0 * kt * kt1 * (at1 - 1.0))
    ratio = jnp.concatenate([jnp.ones_like(factor[..., :1]), jnp.cumprod(factor, -1)], -1)
    v_path = ex(v1) * ratio  # v_1 .. v_top
    inc = (m_ / kt1) ** 2 * v_path[..., :-1] * (1.0 + 1.0 / kt) / m_
    var_path = ex(var1) + jnp.concatenate([jnp.zeros_like(inc[..., :1]), jnp.cumsum(inc, -1)], -1)
    idx = jnp.clip(jnp.asarray(n, jnp.int32) - 1, 0, None)
    shape = jnp.broadcast_shapes(jnp.shape(n), v_path.shape[:-1])
    idx = jnp.broadcast_to(idx, shape)[..., None]
    v = jnp.take_along_axis(jnp.broadcast_to(v_path, shape + v_path.shape[-1:]), idx, -1)[..., 0]
    var = jnp.take_along_axis(jnp.broadcast_to(var_path, shape + v_path.shape[-1:]), idx, -1)
    var = var[..., 0]
    return (
        jnp.where(zero, rs * rs, v),
        jnp.where(zero, 0.0, var),
        jnp.where(zero, rm - mu0, e1 + 0.0 * n),
    )


def _chain(n, sample_size, mu0, kappa0, alpha0, beta0, real_mean, real_sd, update, predictive):
    args = _check(
        n, sample_size, mu0, kappa0, alpha0, beta0, real_mean, real_sd, update, predictive
    )
    fn = _refit if update == "refit" else _sequential
    return fn(*args, predictive)


_BROADCAST = [_CHAIN]


@_v.closed_form(integers=("n", "sample_size"), reals=_REALS, broadcast=_BROADCAST)
def expected_var_mean(
    n,
    sample_size,
    mu0,
    kappa0,
    alpha0,
    beta0,
    real_mean=0.0,
    real_sd=1.0,
    *,
    update="refit",
    predictive="joint",
):
    r""":math:`v_n = \mathbb{E}[\beta_n/(\alpha_n-1)]`: the expected posterior mean of
    :math:`\sigma^2`.

    Regime (a), closed form: :math:`x_n = A^{n-1}x_1 + \sum_{j<n-1} A^j c`,
    :math:`x = (v, \mathbb{E}(\mu-\mu_0)^2)` (module docstring; :math:`A^k` by
    Cayley-Hamilton from the eigenvalues of the 2x2 matrix), with

    .. math::
        v_1 = \frac{\beta_0 + \tfrac{M-1}2 s^2 + \tfrac{\kappa_0 M}{2(\kappa_0+M)}
        \big((m-\mu_0)^2 + s^2/M\big)}{\alpha_0 + M/2 - 1}.

    Joint predictive: :math:`v_n \to \beta_0/(\alpha_0-1)` (the prior mean).
    Regime (b): joint :math:`v_n = v_1` (a martingale); Student-t the product
    :math:`v_n = v_1\prod_{t=1}^{n-1}[1 + M(M-1)/(2\kappa_t\kappa_{t+1}(\alpha_{t+1}-1))]`.
    Derived here (module docstring); the update is BDA Sec. 3.3.

    Args:
        n: number of fits, integer >= 0 (0: ``real_sd**2``).
        sample_size: M, integer >= 2.
        mu0, kappa0, alpha0, beta0: the NIG prior (kappa0, alpha0, beta0 > 0).
        real_mean, real_sd: the real distribution N(real_mean, real_sd^2).
        update: ``"refit"`` (a) or ``"sequential"`` (b).
        predictive: ``"joint"`` or ``"student_t"``.

    Returns:
        :math:`v_n`, broadcast over the numeric arguments.

    Example:
        >>> from theory import bayes
        >>> round(float(bayes.expected_var_mean(10**6, 10, 0.0, 1.0, 3.0, 1.0)), 12)  # prior mean
        0.5
    """
    return _chain(
        n, sample_size, mu0, kappa0, alpha0, beta0, real_mean, real_sd, update, predictive
    )[0]


@_v.closed_form(integers=("n", "sample_size"), reals=_REALS, broadcast=_BROADCAST)
def expected_mean(
    n,
    sample_size,
    mu0,
    kappa0,
    alpha0,
    beta0,
    real_mean=0.0,
    real_sd=1.0,
    *,
    update="refit",
    predictive="joint",
):
    r""":math:`\mathbb{E}[\mu_n]`: (a) :math:`\mu_0 + (M/(\kappa_0+M))^n(m - \mu_0)`, the
    prior mean pulls geometrically; (b) :math:`\mu_0 + M(m-\mu_0)/(\kappa_0+M)` for
    :math:`n \ge 1` (a martingale). Derived here; arguments as :func:`expected_var_mean`.

    Example:
        >>> from theory import bayes
        >>> float(bayes.expected_mean(1, 9, 0.0, 1.0, 3.0, 1.0, real_mean=1.0))
        0.9
    """
    args = _check(
        n, sample_size, mu0, kappa0, alpha0, beta0, real_mean, real_sd, update, predictive
    )
    dev = _chain(
        n, sample_size, mu0, kappa0, alpha0, beta0, real_mean, real_sd, update, predictive
    )[2]
    return args[2] + dev


@_v.closed_form(integers=("n", "sample_size"), reals=_REALS, broadcast=_BROADCAST)
def mean_variance(
    n,
    sample_size,
    mu0,
    kappa0,
    alpha0,
    beta0,
    real_mean=0.0,
    real_sd=1.0,
    *,
    update="refit",
    predictive="joint",
):
    r""":math:`\operatorname{Var}(\mu_n)` across chains.

    (a) :math:`D_n - (\mathbb{E}\mu_n - \mu_0)^2` from the closed-form recursion of
    :math:`x_n`; (b) joint :math:`\operatorname{Var}\mu_1 + v_1(1/\kappa_1 - 1/\kappa_n)`,
    :math:`\operatorname{Var}\mu_1 = M s^2/\kappa_1^2`; Student-t the exact recursion of
    the module docstring. Derived here; arguments as :func:`expected_var_mean`.

    Example:
        >>> from theory import bayes
        >>> float(bayes.mean_variance(0, 10, 0.0, 1.0, 3.0, 1.0))
        0.0
    """
    v, second, dev = _chain(
        n, sample_size, mu0, kappa0, alpha0, beta0, real_mean, real_sd, update, predictive
    )
    if update == "refit":
        return second - dev * dev
    return second


@_v.closed_form(
    integers=("sample_size",),
    reals=("kappa0", "alpha0"),
    broadcast=[("sample_size", "kappa0", "alpha0")],
)
def drift_rate(sample_size, kappa0, alpha0, *, predictive="joint"):
    r"""The geometric rate of regime (a): the largest eigenvalue of its 2x2 matrix
    :math:`A` (module docstring); :math:`v_n - v_\infty = O(\lambda^n)`.

    .. math::
        \lambda = \tfrac12\operatorname{tr}A + \sqrt{\tfrac14(\operatorname{tr}A)^2 - \det A}.

    It does not depend on :math:`\beta_0` (nor on the real distribution). Derived here.

    Example:
        >>> from theory import bayes
        >>> round(float(bayes.drift_rate(10, 1.0, 3.0)), 4)
        0.8734
    """
    _, m, _, k0, a0, *_ = _check(
        None, sample_size, None, kappa0, alpha0, None, None, None, "refit", predictive
    )
    return _eig(_refit_matrix(m, k0, a0, 1.0, predictive)[0])[0]


@_v.closed_form(
    integers=("sample_size",),
    reals=("kappa0", "alpha0", "beta0"),
    broadcast=[("sample_size", "kappa0", "alpha0", "beta0")],
)
def var_mean_fixed_point(sample_size, kappa0, alpha0, beta0, *, predictive="joint"):
    r"""The limit :math:`v_\infty` of regime (a): :math:`(I - A)^{-1}c`, first entry;
    ``inf`` where :func:`drift_rate` >= 1 (the means grow without bound).

    Joint: exactly :math:`\beta_0/(\alpha_0-1)` for :math:`\alpha_0 > 1`, the prior mean
    of :math:`\sigma^2` (module docstring). Student-t: larger, from the same solve.
    Derived here.

    Example:
        >>> from theory import bayes
        >>> round(float(bayes.var_mean_fixed_point(10, 1.0, 3.0, 1.0)), 12)
        0.5
    """
    _, m, _, k0, a0, b0, *_ = _check(
        None, sample_size, None, kappa0, alpha0, beta0, None, None, "refit", predictive
    )
    (a11, a12, a21, a22), c = _refit_matrix(m, k0, a0, b0, predictive)
    det = (1.0 - a11) * (1.0 - a22) - a12 * a21
    v = c * (1.0 - a22) / det
    lam = _eig((a11, a12, a21, a22))[0]
    return jnp.where(lam < 1.0, v, jnp.inf)


@_v.closed_form(
    integers=("sample_size",),
    reals=("alpha0", "beta0"),
    broadcast=[("sample_size", "alpha0", "beta0")],
)
def stationary_log_var_mean(sample_size, alpha0, beta0):
    r"""The limit of :math:`\mathbb{E}\log(\beta_n/(\alpha_n-1))` in regime (a), joint.

    At stationarity the data come from the prior predictive, so
    :math:`\beta_\infty = \beta_0 + \sigma^2\chi^2_M/2` with
    :math:`\sigma^2 \sim \mathrm{IG}(\alpha_0, \beta_0)` (the scatter gives
    :math:`\chi^2_{M-1}`, the mean term one more degree of freedom, since
    :math:`\kappa_0 M/\kappa_n\,(1/\kappa_0 + 1/M) = 1`); with
    :math:`\sigma^2 = \beta_0/G`, :math:`\beta_\infty = \beta_0(1 + G_M/G) = \beta_0/W`,
    :math:`W = G/(G + G_M) \sim \mathrm{Beta}(\alpha_0, M/2)`. Hence

    .. math::
        \mathbb{E}\log\frac{\beta_\infty}{\alpha_n - 1} = \log\beta_0 - \psi(\alpha_0)
        + \psi(\alpha_0 + M/2) - \log(\alpha_0 + M/2 - 1).

    Derived here (the Beta law of :math:`W`: ratios of independent gammas).

    Example:
        >>> from theory import bayes
        >>> round(float(bayes.stationary_log_var_mean(10, 3.0, 1.0)), 4)
        -0.8531
    """
    _, m, _, _, a0, b0, *_ = _check(
        None, sample_size, None, None, alpha0, beta0, None, None, "refit", "joint"
    )
    an = a0 + 0.5 * m
    return jnp.log(b0) - jsp.digamma(a0) + jsp.digamma(an) - jnp.log(an - 1.0)
