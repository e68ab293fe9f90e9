"""Tests of theory.gaussian against independent computations.

References used here (none of them shares code with the module):
* scipy.stats.chi2 moments, CDF and quantiles; scipy.special digamma,
  polygamma, gammaln, loggamma;
* adaptive quadrature (scipy.integrate.quad) and composite Gauss-Legendre
  rules in log space over the chi-square density (checked against quad);
* an exact inversion of the moment generating function of
  sum_t log(chi2_nu / c) along a vertical line (Gil-Pelaez's formula moved to
  the saddlepoint, which keeps relative accuracy in the tails);
* brute-force recursions and a NumPy Monte Carlo of the perpetuity.
"""

import jax

jax.config.update("jax_enable_x64", True)

import functools  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import warnings  # noqa: E402

import jax.numpy as jnp  # noqa: E402
import mpmath as mp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.integrate as si  # noqa: E402
import scipy.optimize as so  # noqa: E402
import scipy.stats as st  # noqa: E402
from scipy import special as sc  # noqa: E402

from tests.exact import (  # noqa: E402
    U64,
    assert_outside,
    assert_within,
    closed_form_rtol,
    expm1_cond,
)
from theory import gaussian  # noqa: E402

ESTIMATORS = ("mle", "unbiased")


def divisor(m, estimator):
    return m if estimator == "mle" else m - 1


def mp_log_c4(m):
    """log c4(M) = lgamma(h + 1/2) - lgamma(h) - log(h)/2, h = (M-1)/2, at mpmath's precision."""
    h = mp.mpf(m - 1) / 2
    return mp.loggamma(h + mp.mpf(1) / 2) - mp.loggamma(h) - mp.log(h) / 2


def log_c4_size(m):
    """Size S of the terms theory sums for log c4(M): ``|error| <= ULPS u S``.

    Below h = 10 the module takes the difference of lgammas (S = the sum of
    their sizes, up to 25x |log c4|); above, an asymptotic series with no
    cancellation (S = |log c4|). lgamma is accurate in absolute, not
    relative, terms near its zeros at 1 and 2 (XLA's errs by 2u at 1.5,
    where lgamma = -0.12), so each lgamma counts at least 1.
    """
    h = (m - 1) / 2
    if h >= 10:
        return abs(float(mp_log_c4(m)))
    return max(1, abs(sc.gammaln(h + 0.5))) + max(1, abs(sc.gammaln(h))) + abs(0.5 * np.log(h))


def drift_size(m, estimator):
    """Size S of the terms theory sums for the drift psi(h) + log(2/c): ``|error| <= ULPS u S``.

    It evaluates [psi(h) - log h] + log r; below h = 10 the bracket is
    digamma(h) - log(h) (S = |psi| + |log h|), above an asymptotic series.
    The two parts have the same sign (both negative), so they add no
    cancellation of their own.
    """
    h = (m - 1) / 2
    log_r = np.log1p(-1 / m) if estimator == "mle" else 0.0
    # digamma, like lgamma, is accurate in absolute terms near its zero (1.46)
    bracket = (
        abs(sc.digamma(h) - np.log(h)) if h >= 10 else max(1, abs(sc.digamma(h))) + abs(np.log(h))
    )
    return bracket + abs(log_r)


# ---------------------------------------------------------------------------
# Independent references.
# ---------------------------------------------------------------------------


def log_g_pdf(v, m, c):
    """Density of log(chi2_{m-1} / c) at v."""
    h = (m - 1) / 2
    return np.exp(h * (v + np.log(c / 2)) - 0.5 * c * np.exp(v) - sc.gammaln(h))


def expect_g_quad(fun, m, estimator, with_error=False):
    """E[fun(G)], G = chi2_{m-1}/c, by adaptive quadrature in log space.

    With ``with_error``, also returns a bound on the absolute error: quad's
    own estimate plus the rounding of the integrand. ``log_g_pdf``'s exponent
    sums terms of size up to ``S = max_v (|h (v + log(c/2))| + |c e^v / 2| +
    lgamma(h))`` (about 6.5e3 at M = 1000), so the density carries a relative
    error up to ``8 u S`` (four roundings of the exponent and the 1-ulp libm
    calls, each at most ``u S``, with a factor 2 of margin): 6e-12 at
    M = 1000, far above quad's 1e-14 estimate, and the cause of issue 16.
    That relative error is pointwise, so the absolute bound is ``8 u S
    E[|fun(G)|]`` (a second quadrature of ``|fun|``): for a sign-changing
    integrand such as ``log g`` it can be far above ``8 u S |E[fun(G)]|``.
    """
    c = divisor(m, estimator)
    nu = m - 1
    br = np.log(
        np.concatenate(
            [
                np.maximum(st.chi2.ppf([1e-300, 1e-12, 1e-4, 0.5], nu), 1e-300),
                st.chi2.isf([1e-4, 1e-30], nu),
            ]
        )
        / c
    )

    def integrate(f):
        total, quad_err = 0.0, 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for a, b in zip(br[:-1], br[1:], strict=True):
                val, err = si.quad(
                    lambda v: f(np.exp(v)) * log_g_pdf(v, m, c),
                    a,
                    b,
                    epsabs=0,
                    epsrel=1e-13,
                    limit=200,
                )[:2]
                total += val
                quad_err += err
        return total, quad_err

    total, quad_err = integrate(fun)
    if not with_error:
        return total
    h = (m - 1) / 2
    scale = np.max(np.abs(h * (br + np.log(c / 2)))) + 0.5 * c * np.exp(br[-1]) + sc.gammaln(h)
    mean_abs = integrate(lambda g: np.abs(fun(g)))[0]
    return total, quad_err + 8 * U64 * scale * mean_abs


def gauss_legendre_g(m, estimator, per=64):
    """Nodes G_j and weights W_j with sum_j W_j f(G_j) ~ E[f(G)] (log space)."""
    c = divisor(m, estimator)
    nu = m - 1
    probs = [1e-300, 1e-200, 1e-100, 1e-50, 1e-25, 1e-12, 1e-6, 1e-3, 0.1, 0.5, 0.9]
    br = np.concatenate([st.chi2.ppf(probs, nu), st.chi2.isf([1e-3, 1e-6, 1e-12, 1e-30], nu)])
    br = np.unique(np.log(np.maximum(br, 1e-300) / c))
    x, w = np.polynomial.legendre.leggauss(per)
    a, b = br[:-1, None], br[1:, None]
    v = (0.5 * (b - a) * x + 0.5 * (a + b)).ravel()
    return np.exp(v), (0.5 * (b - a) * w).ravel() * log_g_pdf(v, m, c)


def exact_log_variance_tails(x, n, m, estimator):
    """Exact (F, 1 - F) of S_n = sum_{t<=n} log(chi2_{m-1}/c) at x.

    F(x) = -(1/pi) int_0^inf Re[exp(K(th+it) - (th+it)x) / (th+it)] dt for
    th < 0, and the same expression with the opposite sign gives 1 - F for
    th > 0 (inversion of the MGF on the line Re = th). th is the saddlepoint
    (found with scipy's brentq), or -0.5/sd near the mean.
    """
    c = divisor(m, estimator)
    h = (m - 1) / 2
    l2c = np.log(2 / c)

    def cgf(tau):
        return n * (tau * l2c + sc.loggamma(h + tau) - sc.loggamma(h))

    def k2(s):
        return n * sc.polygamma(1, h + s)

    def kprime_minus_x(s):
        return n * (l2c + sc.digamma(h + s)) - x

    lo, hi = -h * (1 - 1e-15), 1.0
    while kprime_minus_x(hi) < 0:
        hi *= 2
    s_hat = (
        lo if kprime_minus_x(lo) > 0 else so.brentq(kprime_minus_x, lo, hi, xtol=1e-300, rtol=1e-15)
    )
    theta = s_hat if abs(s_hat) * np.sqrt(k2(s_hat)) >= 0.5 else -0.5 / np.sqrt(k2(0.0))
    base = (cgf(theta) - theta * x).real

    def integrand(t):
        tau = theta + 1j * t
        return (np.exp(cgf(tau) - tau * x - base) / tau).real

    top = 1.0 / np.sqrt(k2(theta))
    while cgf(theta + 1j * top).real - cgf(theta).real > -80:
        top *= 2
    pts = np.linspace(0.0, top, 11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        val = sum(
            si.quad(integrand, a, b, epsabs=0, epsrel=1e-12, limit=400)[0]
            for a, b in zip(pts[:-1], pts[1:], strict=True)
        )
    val *= np.exp(base) / np.pi
    return (-val, 1 + val) if theta < 0 else (1 - val, val)


def rel_tail_error(f, f_ref, q_ref):
    """Relative error of the smaller tail: of F if F_ref < 1/2, else of 1 - F."""
    return abs(f / f_ref - 1) if f_ref < 0.5 else abs((1 - f) / q_ref - 1)


# The iterative functions are called through these jitted wrappers with every
# argument explicit and float64, so that the whole file compiles each
# (static configuration, shape) once: eager calls would compile op by op.
@functools.partial(jax.jit, static_argnames=("estimator", "method"))
def _cdf(x, n, m, sigma0, estimator, method):
    return gaussian.log_variance_cdf(x, n, m, estimator, sigma0, method)


@functools.partial(jax.jit, static_argnames=("estimator",))
def _quantile(q, n, m, sigma0, estimator):
    return gaussian.log_variance_quantile(q, n, m, estimator, sigma0)


# Scalar value-and-gradient programs, shared by the tests below.
cdf_vg = jax.jit(
    jax.value_and_grad(lambda x, n, m, s0: gaussian.log_variance_cdf(x, n, m, "mle", s0))
)
quantile_vg = jax.jit(
    jax.value_and_grad(lambda q, n, m, s0: gaussian.log_variance_quantile(q, n, m, "mle", s0))
)
collapse_vg = jax.jit(
    jax.value_and_grad(lambda eps, n, m: gaussian.collapse_probability(n, m, eps, "mle"))
)
median_vg = jax.jit(
    jax.value_and_grad(lambda k, n, m: gaussian.median_tail_mass(n, m, k, "unbiased"))
)


def cdf_jit(x, n, m, estimator="unbiased", sigma0=1.0, method="saddlepoint"):
    args = (np.asarray(x, float), np.float64(n), np.float64(m), np.float64(sigma0))
    return np.asarray(_cdf(*args, estimator, method))


def quantile_jit(q, n, m, estimator="unbiased", sigma0=1.0):
    args = (np.asarray(q, float), np.float64(n), np.float64(m), np.float64(sigma0))
    return np.asarray(_quantile(*args, estimator))


# ---------------------------------------------------------------------------
# Moments: G2 - G6.
# ---------------------------------------------------------------------------

M_GRID = (2, 3, 10, 1000)


@pytest.mark.unit
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_expected_variance_against_chi2_moments(estimator):
    m = np.array(M_GRID, float)[:, None, None]
    n = np.array([0, 1, 2, 7])[None, :, None]
    sigma0 = np.array([0.5, 2.0])[None, None, :]
    mean_g = np.array([st.chi2(k - 1).mean() / divisor(k, estimator) for k in M_GRID])
    want = sigma0**2 * mean_g[:, None, None] ** n
    got = gaussian.expected_variance(n, m, estimator, sigma0)
    np.testing.assert_allclose(got, want, rtol=1e-13)
    for k in M_GRID:  # n = 1 by quadrature of y / c against the chi2 density
        quad, dq = expect_g_quad(lambda g: g, k, estimator, with_error=True)
        bound = dq + closed_form_rtol() * quad  # sigma0^2 r^n: a few roundings
        assert_within(gaussian.expected_variance(1, k, estimator), quad, bound, f"M={k} quad")
        other = "unbiased" if estimator == "mle" else "mle"  # off by 1/M
        assert_outside(gaussian.expected_variance(1, k, other), quad, bound, f"M={k} {other}")


@pytest.mark.unit
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_expected_std_against_quadrature(estimator):
    """E[sigma_n] = sigma0 a^n, a = E[sqrt G], against quadrature.

    The reference's relative error is n times the quadrature's (up to 4e-11
    at M = 1000, n = 7: the old rtol=1e-10 had a margin of 2.5x); the closed
    form exp(n (log c4 + log(r)/2)) errs by ULPS u n (S + |log r|) relative,
    S = log_c4_size(M).
    """
    n = np.array([0, 1, 2, 7])
    for k in M_GRID:
        mean_sqrt_g, dq = expect_g_quad(np.sqrt, k, estimator, with_error=True)
        want = 1.5 * mean_sqrt_g**n
        log_r = np.log1p(-1 / k) if estimator == "mle" else 0.0
        cond = 1 + n * (log_c4_size(k) + abs(log_r))
        bound = (n * dq / mean_sqrt_g * (1 + 1e-6) + closed_form_rtol(cond)) * want
        got = gaussian.expected_std(n, k, estimator, 1.5)
        assert_within(got, want, bound, f"M={k}")
        wrong = gaussian.expected_std(n[1:], k + 1, estimator, 1.5)  # off by ~n / (4 M^2)
        assert_outside(wrong, want[1:], bound[1:], f"M={k}: M+1")


@pytest.mark.unit
def test_expected_std_large_sample_size_is_stable():
    """1 - c4(M) ~ 1/(4M) and c4(M)^M ~ exp(-1/4) for large M, against mpmath (40 digits).

    The old reference, the series 1/(4M) + 7/(32M^2) + 19/(128M^3), was
    truncated at a relative 2e-13 (M = 1e4), and c4^M from it at 5e-14
    (measured; 1/20 of the old rtol=1e-12). 1 - c4 read back from a float64
    c4 near 1 carries c4's absolute error (exp: 1 ulp, 2u, plus the rounding,
    u, plus the argument's ULPS u |log c4|) divided by 1 - c4: 4.4e-10 at
    M = 1e6 even when c4 is correctly rounded, half the old rtol=1e-9. The
    tolerance below is that bound; a lgamma difference (error u lgamma(M/2)
    = 3e-3 relative at M = 1e6) or a wrong 1/M^2 coefficient (1e-4 at
    M = 1e4) is far outside it.
    """
    m = np.array([1e4, 1e5, 1e6])
    with mp.workdps(40):
        log_c4 = [mp_log_c4(mp.mpf(int(k))) for k in m]
        exact = np.array([float(-mp.expm1(v)) for v in log_c4])
        want = np.array([float(mp.exp(int(k) * v)) for k, v in zip(m, log_c4, strict=True)])
    c4 = np.asarray(gaussian.expected_std(1, m, "unbiased"))
    one_minus_c4 = -np.expm1(np.log(c4))
    c4_abs = (3 * U64 + closed_form_rtol(np.abs(np.log(c4)))) * c4
    bound = c4_abs / (1 - c4) * (1 + 1e-6) * exact + 3 * U64 * exact  # + log, expm1, rounding
    assert_within(one_minus_c4, exact, bound, "1 - c4")
    assert_outside(1 / (4 * m) + 7 / (16 * m**2), exact, bound, "wrong 1/M^2 coefficient")
    # After n = M fits E[sigma_n] = c4^M ~ exp(-1/4): exact enough in float32 too.
    got32 = gaussian.expected_std(jnp.float32(1e5), jnp.float32(1e5), "unbiased")
    assert got32.dtype == jnp.float32
    np.testing.assert_allclose(float(got32), want[1], rtol=2e-6)
    # exp(M log c4): the argument (~ -1/4) errs by ULPS u M |log c4|.
    bound = (closed_form_rtol(1 + m * np.abs(np.log(c4))) + U64) * want
    assert_within(gaussian.expected_std(m, m, "unbiased"), want, bound, "c4^M")
    assert_outside(gaussian.expected_std(m, m + 1, "unbiased"), want, bound, "c4(M+1)^M")


@pytest.mark.unit
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_cv2_against_chi2_moments(estimator):
    """CV^2 of sigma_n^2 and of sigma_n against independent references.

    sigma_n: (1) against c4(M)^{-2n} - 1 at 40 digits (mpmath), to the closed
    form's own rounding error: ``std_cv2 = expm1(-2 n log c4)``, and ``log c4``
    is a difference of lgammas of size S (below M = 21; the asymptotic series
    above, condition 1), so the bound is ``ULPS u (S / |log c4|) cond(expm1)``.
    (2) against E[G]/E[sqrt G]^2 by quadrature (the derivation), to the
    quadrature's derived error bound carried through the ratio and through
    R^n - 1, whose cancellation amplifies it by n R^n / (R^n - 1) (2e3 at
    M = 1000, n = 1).
    """
    n = np.array([0, 1, 3, 20])
    mp.mp.dps = 40
    for k in M_GRID:
        # R^n - 1 in float64 amplifies the rounding of R = 1 + 2/nu by
        # n R^n / (R^n - 1) (500 at M = 1000): mpmath instead, to the closed
        # form's bound expm1(n log1p(2/nu)) (cond 1 + expm1_cond).
        y = [n_ * mp.log1p(mp.mpf(2) / (k - 1)) for n_ in n]
        cv2_exact = np.array([float(mp.expm1(v)) for v in y])
        cv2_bound = closed_form_rtol(1 + expm1_cond(np.array([float(v) for v in y]))) * cv2_exact
        assert_within(gaussian.variance_cv2(n, k), cv2_exact, cv2_bound, f"variance_cv2 M={k}")
        assert_outside(gaussian.variance_cv2(n[1:], k + 1), cv2_exact[1:], cv2_bound[1:], "M+1")
        actual = np.asarray(gaussian.std_cv2(n, k, estimator))
        log_c4 = mp_log_c4(k)
        exact = np.array([float(mp.expm1(-2 * int(t) * log_c4)) for t in n])
        lc4 = float(log_c4)
        cond = log_c4_size(k) / abs(lc4) * expm1_cond(-2 * n * lc4)
        assert_within(
            actual,
            exact,
            closed_form_rtol(cond) * np.abs(exact) + U64 * np.abs(exact),
            f"std_cv2 M={k} vs mpmath",
        )
        # the bound is tight enough to reject the neighbouring sample size
        wrong = np.asarray(gaussian.std_cv2(n[1:], k + 1, estimator))
        bound = closed_form_rtol(cond[1:]) * np.abs(exact[1:])
        assert np.all(np.abs(wrong - exact[1:]) > bound), f"M={k}: M+1 not rejected"
        a, da = expect_g_quad(lambda g: g, k, estimator, with_error=True)
        b, db = expect_g_quad(np.sqrt, k, estimator, with_error=True)
        ratio = a / b**2
        ratio_rel = da / a + 2 * db / b + 3 * U64
        ref = ratio**n - 1
        ref_err = n * ratio**n * ratio_rel * (1 + 1e-6)  # first order; the 1e-6 covers the rest
        assert_within(
            actual,
            ref,
            ref_err + closed_form_rtol(cond) * np.abs(ref),
            f"std_cv2 M={k} vs quadrature",
        )


@pytest.mark.unit
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_log_variance_moments(estimator):
    """E and Var of log sigma_n^2: against mpmath (40 digits) and quadrature.

    The old float64 reference psi(h) + log(2/c) cancels terms of size 6.2 to
    -1e-3 at M = 1000 (a relative 6e3 u, times n = 50): it erred by 1.1e-13
    against rtol = atol = 1e-13. Now: mpmath, to the closed form's bound
    ULPS u (|log sigma0^2| + n S), S = drift_size(M). Quadrature of log g, a
    sign-changing integrand, errs by 8 u S E|log G| absolute (2.6e-13 at
    M = 1000 against the old atol=1e-12, margin 8x): derived bound instead.
    The variance: n psi'(h) from scipy, both sides a few ulps with
    condition 1 (rtol 1e-13 is 900 u).
    """
    n = np.array([0, 1, 2, 50])
    with mp.workdps(40):
        for k in M_GRID:
            c = divisor(k, estimator)
            h = mp.mpf(k - 1) / 2
            drift = mp.digamma(h) + mp.log(mp.mpf(2) / c)
            want = np.array([float(mp.log(9) + int(t) * drift) for t in n])
            size = drift_size(k, estimator)
            bound = closed_form_rtol(np.log(9.0) + n * size) + U64 * np.abs(want)
            assert_within(gaussian.log_variance_mean(n, k, estimator, 3.0), want, bound, f"M={k}")
            wrong = gaussian.log_variance_mean(n[1:], k + 1, estimator, 3.0)  # drift off 1/M^2
            assert_outside(wrong, want[1:], bound[1:], f"M={k}: M+1")
            np.testing.assert_allclose(
                gaussian.log_variance_var(n, k), n * sc.polygamma(1, (k - 1) / 2), rtol=1e-13
            )
            mean1, dm = expect_g_quad(np.log, k, estimator, with_error=True)
            var1, dv = expect_g_quad(
                lambda g, mu=mean1: (np.log(g) - mu) ** 2, k, estimator, with_error=True
            )
            cf = closed_form_rtol(size)
            assert_within(gaussian.log_variance_mean(1, k, estimator), mean1, dm + cf, "n=1 quad")
            assert_within(
                gaussian.log_variance_mean(2, k, estimator), 2 * mean1, 2 * (dm + cf), "n=2 quad"
            )
            assert_outside(gaussian.log_variance_mean(1, k + 1, estimator), mean1, dm + cf, "M+1")
            # var1 uses the quadrature mean: its error enters at second order only.
            dv += dm**2 + closed_form_rtol() * var1
            assert_within(gaussian.log_variance_var(1, k), var1, dv, "var quad")
            assert_outside(gaussian.log_variance_var(1, k + 1), var1, dv, "var M+1")


def brute_mean_variance(n, m, estimator, sigma0):
    """Var(mu_n) by the recursion v_{t+1} = v_t + E[sigma_t^2] / M."""
    r = st.chi2(m - 1).mean() / divisor(m, estimator)
    v, es2 = 0.0, sigma0**2
    for _ in range(n):
        v, es2 = v + es2 / m, es2 * r
    return v


@pytest.mark.unit
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_mean_variance_against_recursion(estimator):
    ns = [0, 1, 2, 5, 30]
    for k in (2, 10, 1000):
        want = [brute_mean_variance(n, k, estimator, 1.7) for n in ns]
        np.testing.assert_allclose(
            gaussian.mean_variance(np.array(ns), k, estimator, 1.7), want, rtol=1e-12
        )


def w2_closed_form_rtol(n, m, estimator):
    """Relative rounding bound of theory's E[W2^2] = var_mu + bias^2 + var_sigma.

    The three terms are non-negative (condition 1 for the sum), each an expm1
    of an argument y with absolute error ULPS u Y (Y: the size of the terms
    summed into y), so relative error ULPS u (1 + expm1_cond(y) Y / |y|):
    bias = expm1(n (log c4 + log(r)/2)) enters squared, var_sigma =
    r^n (-expm1(2 n log c4)), var_mu = -expm1(n log r) (MLE) or n / M.
    """
    n = np.asarray(n, np.float64)
    log_r = np.log1p(-1 / m) if estimator == "mle" else 0.0
    lc4, s_c4 = float(mp_log_c4(m)), log_c4_size(m)

    def expm1_rel(y, size):
        safe = np.where(y == 0, 1.0, y)
        return np.where(y == 0, 1.0, 1 + expm1_cond(y) * size / np.abs(safe))

    y_b = n * (lc4 + 0.5 * log_r)
    bias2 = np.expm1(y_b) ** 2
    rel_b = 2 * expm1_rel(y_b, n * (s_c4 + abs(log_r)))
    var_s = -np.exp(n * log_r) * np.expm1(2 * n * lc4)
    rel_s = 1 + n * abs(log_r) + expm1_rel(2 * n * lc4, 2 * n * s_c4)
    if estimator == "mle":
        var_mu, rel_mu = -np.expm1(n * log_r), expm1_rel(n * log_r, n * abs(log_r))
    else:
        var_mu, rel_mu = n / m, 1.0
    total = var_mu + bias2 + var_s
    total = np.where(total == 0, 1.0, total)
    return closed_form_rtol((var_mu * rel_mu + bias2 * rel_b + var_s * rel_s) / total + 1)


@pytest.mark.unit
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_expected_w2_squared(estimator):
    """E[W2^2] against mpmath (40 digits) and, at n = 1, the defining integral.

    The old reference Var(mu_n) + sigma0^2 (E[G]^n - 2 E[sqrt G]^n + 1) from
    float64 quadrature cancels terms of size 1 to ~1/M: it erred by 3.2e-10
    against rtol=1e-9 (M = 1000). Now the same expression in mpmath (the
    recursion for Var(mu_n), E[sqrt G] = sqrt(2/c) Gamma(h+1/2)/Gamma(h)),
    to the closed form's rounding bound (w2_closed_form_rtol); and n = 1 as
    sigma0^2/M + E[(sigma0 sqrt G - sigma0)^2] by quadrature (positive
    integrand), to its derived bound plus the integrand's rounding
    (sqrt(g) - 1 errs by 2u sqrt(g) absolute).
    """
    sigma0 = 1.3
    ns = np.array([0, 1, 2, 10, 100])
    with mp.workdps(40):
        s2 = mp.mpf(sigma0) ** 2
        for k in (2, 10, 1000):
            c, h = divisor(k, estimator), mp.mpf(k - 1) / 2
            r = mp.mpf(k - 1) / c
            a = mp.sqrt(mp.mpf(2) / c) * mp.exp(mp.loggamma(h + mp.mpf(1) / 2) - mp.loggamma(h))
            want = []
            for n in ns:
                v, es2 = mp.mpf(0), s2
                for _ in range(n):
                    v, es2 = v + es2 / k, es2 * r
                want.append(float(v + s2 * (r**n - 2 * a**n + 1)))
            want = np.array(want)
            bound = (w2_closed_form_rtol(ns, k, estimator) + U64) * want
            assert_within(gaussian.expected_w2_squared(ns, k, estimator, sigma0), want, bound, "mp")
            # (not n = 100: MLE has converged to 2 sigma0^2 for every M)
            wrong = gaussian.expected_w2_squared(ns[1:4], k + 1, estimator, sigma0)
            assert_outside(wrong, want[1:4], bound[1:4], f"M={k}: M+1")
            # n = 1 directly: E[(mu_1 - mu_0)^2] + E[(sigma_1 - sigma_0)^2].
            quad, dq = expect_g_quad(
                lambda g: (sigma0 * np.sqrt(g) - sigma0) ** 2, k, estimator, with_error=True
            )
            dq += expect_g_quad(
                lambda g: 3 * U64 * sigma0**2 * np.sqrt(g) * np.abs(np.sqrt(g) - 1), k, estimator
            )
            direct = sigma0**2 / k + quad
            bound = dq + (w2_closed_form_rtol(1, k, estimator) + U64) * direct
            assert_within(gaussian.expected_w2_squared(1, k, estimator, sigma0), direct, bound, "q")
            assert_outside(
                gaussian.expected_w2_squared(1, k + 1, estimator, sigma0), direct, bound, "q"
            )
    # Shumailov et al.: unbiased diverges linearly, MLE tends to 2 sigma0^2.
    big = gaussian.expected_w2_squared(np.array([10**4, 2 * 10**4]), 10, estimator, sigma0)
    if estimator == "unbiased":
        np.testing.assert_allclose(big[1] - big[0], 10**4 * sigma0**2 / 10, rtol=1e-12)
    else:
        np.testing.assert_allclose(big, 2 * sigma0**2, rtol=1e-12)


@pytest.mark.costly
@pytest.mark.unit
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_markov_tail_bound_is_a_bound(estimator):
    m = np.array([2.0, 5.0, 20.0])[:, None, None]
    n = np.array([0, 1, 10, 100])[None, :, None]
    eps = np.array([0.1, 0.5, 1.0, 2.0])[None, None, :]
    sigma0 = 1.2
    bound = np.asarray(gaussian.markov_tail_bound(n, m, eps, sigma0))
    p_survive = np.zeros(bound.shape)
    for i, mm in enumerate(m.ravel()):
        for j, nn in enumerate(n.ravel()):
            x = np.resize(2 * np.log(eps.ravel()), PROBS.size)  # canonical shape
            p_survive[i, j] = 1 - cdf_jit(x, nn, mm, estimator, sigma0)[: eps.size]
    assert np.all(bound >= p_survive)
    assert np.all(
        bound >= np.asarray(gaussian.expected_std(n, m, estimator, sigma0)) / eps * (1 - 1e-12)
    )
    clipped = gaussian.markov_tail_bound(n, m, eps, sigma0, clip=True)
    np.testing.assert_allclose(clipped, np.minimum(bound, 1.0))
    # The inequality behind it: c4(M) <= exp(-1/(4M - 1)), checked with scipy.
    mm = np.arange(2, 10001)
    log_c4 = 0.5 * np.log(2 / (mm - 1)) + sc.gammaln(mm / 2) - sc.gammaln((mm - 1) / 2)
    assert np.all(log_c4 <= -1 / (4 * mm - 1))


# ---------------------------------------------------------------------------
# Law of log sigma_n^2 (G10).
# ---------------------------------------------------------------------------


@pytest.mark.costly
@pytest.mark.unit
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_cdf_n1_against_chi2(estimator):
    probs = np.array([1e-280, 1e-100, 1e-30, 1e-10, 1e-3, 0.2, 0.5, 0.8, 0.99, 1 - 1e-3, 1 - 1e-10])
    worst = 0.0
    for k in (2, 3, 10, 100, 1000, 100000):
        c = divisor(k, estimator)
        y = st.chi2.ppf(probs, k - 1)
        with np.errstate(divide="ignore"):
            x = np.log(y / c)  # chi2_1 quantiles below 1e-300 underflow to 0
        f = np.asarray(cdf_jit(x, 1, k, estimator))
        f_ref, q_ref = st.chi2.cdf(y, k - 1), st.chi2.sf(y, k - 1)
        errs = [
            rel_tail_error(a, b, q)
            for a, b, q, yy in zip(f, f_ref, q_ref, y, strict=True)
            if yy > 0
        ]
        worst = max(worst, max(errs))
    # Single-term saddlepoint: relative error tends to e/sqrt(2 pi) - 1 = 8.4% in
    # the far lower tail, measured 7.1% at 1e-280.
    assert worst < 0.085


@pytest.mark.unit
def test_reference_inversion_is_exact_for_one_term():
    for k, estimator in ((2, "unbiased"), (10, "mle"), (1000, "unbiased")):
        c = divisor(k, estimator)
        for p in (1e-30, 1e-4, 0.3, 0.7, 1 - 1e-9):
            y = st.chi2.ppf(p, k - 1)
            f, q = exact_log_variance_tails(np.log(y / c), 1, k, estimator)
            assert rel_tail_error(f, st.chi2.cdf(y, k - 1), st.chi2.sf(y, k - 1)) < 1e-8


# Relative error of F (lower side) or 1 - F (upper side) that the saddlepoint
# must meet. Measured maxima over the grid below: 5.0% (n=1), 2.2% (n=2),
# 0.63% (n=5), 0.034% (n=50), 0.0012% (n=500); the normal approximation is
# off by at least 40% somewhere in every (M, n) cell.
SADDLEPOINT_BOUND = {1: 0.055, 2: 0.025, 5: 0.008, 50: 5e-4, 500: 2e-5}
PROBS = np.array([1e-30, 1e-12, 1e-6, 1e-3, 0.05, 0.3, 0.5, 0.7, 0.95, 1 - 1e-6, 1 - 1e-10])


@pytest.mark.costly
@pytest.mark.unit
@pytest.mark.parametrize("m", [2, 3, 10, 100, 1000])
def test_saddlepoint_accuracy_and_normal_failure(m):
    for n, bound in SADDLEPOINT_BOUND.items():
        x = np.asarray(quantile_jit(PROBS, n, m, "unbiased"))
        f_sp = np.asarray(cdf_jit(x, n, m, "unbiased"))
        f_normal = np.asarray(cdf_jit(x, n, m, "unbiased", method="normal"))
        ref = [exact_log_variance_tails(xi, n, m, "unbiased") for xi in x]
        err_sp = max(rel_tail_error(a, fr, qr) for a, (fr, qr) in zip(f_sp, ref, strict=True))
        err_normal = max(
            rel_tail_error(a, fr, qr) for a, (fr, qr) in zip(f_normal, ref, strict=True)
        )
        assert err_sp < bound, (m, n, err_sp)
        # The CLT approximation fails the same test everywhere (>= 39% off).
        assert err_normal > max(0.3, 10 * bound), (m, n, err_normal)


@pytest.mark.costly
@pytest.mark.unit
def test_saddlepoint_deep_lower_tail_and_mle_shift():
    # Relative accuracy deep in the lower tail (no underflow before 1e-300);
    # measured 1.15% at 1e-250 for n = 5.
    probs = PROBS.copy()
    probs[:2] = [1e-250, 1e-120]
    x = np.asarray(quantile_jit(probs, 5, 10, "unbiased"))
    f = np.asarray(cdf_jit(x, 5, 10, "unbiased"))
    for xi, fi in zip(x[:2], f[:2], strict=True):
        fr, _ = exact_log_variance_tails(xi, 5, 10, "unbiased")
        assert abs(fi / fr - 1) < 0.02
    # MLE and unbiased differ by the shift n log((M-1)/M) of log sigma^2.
    n, k = 7, 12
    b = cdf_jit(x - n * np.log((k - 1) / k), n, k, "unbiased")
    np.testing.assert_allclose(cdf_jit(x, n, k, "mle"), b, rtol=1e-10, atol=1e-300)


@pytest.mark.costly
@pytest.mark.unit
def test_cdf_special_values_and_scaling():
    s0 = 2.0
    x = np.full(PROBS.shape, 1.5)
    x[:4] = [1.0, np.log(4.0), -np.inf, np.inf]
    # n = 0: point mass at log sigma0^2.
    np.testing.assert_array_equal(cdf_jit(x, 0, 10, "unbiased", s0)[:4], [0.0, 1.0, 0.0, 1.0])
    # infinities for n > 0
    np.testing.assert_array_equal(cdf_jit(x, 3, 10, "unbiased", s0)[2:4], [0.0, 1.0])
    # sigma0 is a location shift of log sigma^2
    xs = np.linspace(-3, 3, PROBS.size)
    np.testing.assert_allclose(
        cdf_jit(xs + 2 * np.log(s0), 4, 6, "unbiased", s0),
        cdf_jit(xs, 4, 6, "unbiased"),
        rtol=1e-12,
    )
    # Smooth through the mean, where the evaluation switches from the series
    # around the mean to closed forms: consecutive increments on a grid of
    # sd/1000 differ by < 1%, so there is no jump.
    for k, n in ((2, 1), (10, 3), (10**5, 40)):
        mean = float(gaussian.log_variance_mean(n, k))
        sd = float(np.sqrt(gaussian.log_variance_var(n, k)))
        f = cdf_jit(mean + sd * np.linspace(-2, 2, 4001), n, k, "unbiased")
        d = np.diff(f)
        assert np.all(d > 0)
        # The second differences of log(increments) vary smoothly; a jump of
        # 1e-9 in F would make one of them stick out from its neighbours by
        # more than 1e-6.
        dd = np.diff(np.log(d), 2)
        assert np.max(np.abs(dd[1:-1] - 0.5 * (dd[:-2] + dd[2:]))) < 1e-6


@pytest.mark.costly
@pytest.mark.unit
def test_collapse_probability():
    eps = np.array([1e-6, 1e-2, 0.5, 2.0])
    got = [float(collapse_vg(e, 1.0, 5.0)[0]) for e in eps]
    np.testing.assert_allclose(got, st.chi2.cdf(5 * eps, 4), rtol=0.05)  # n = 1 exact: chi2
    np.testing.assert_allclose(
        gaussian.collapse_probability(30, 5, eps, "mle", method="normal"),
        st.norm.cdf(
            (np.log(eps) - 30 * (sc.digamma(2) + np.log(2 / 5))) / np.sqrt(30 * sc.polygamma(1, 2))
        ),
        rtol=1e-12,
    )
    assert [float(collapse_vg(e, 0.0, 5.0)[0]) for e in eps] == [0, 0, 0, 1]
    assert float(collapse_vg(np.inf, 3.0, 10.0)[0]) == 1.0


@pytest.mark.unit
def test_quantile_inverts_cdf():
    q = PROBS.copy()
    q[0] = 1e-200
    for n, k, estimator in ((1, 2, "unbiased"), (5, 10, "unbiased"), (500, 1000, "unbiased")):
        x = np.asarray(quantile_jit(q, n, k, estimator, 0.7))
        assert np.all(np.diff(x) > 0)
        f = np.asarray(cdf_jit(x, n, k, estimator, 0.7))
        lower = q < 0.5
        np.testing.assert_allclose(f[lower], q[lower], rtol=1e-9)
        np.testing.assert_allclose(1 - f[~lower], 1 - q[~lower], rtol=1e-5)
    np.testing.assert_allclose(quantile_jit(q, 0, 10, "unbiased", 3.0), np.log(9.0))
    np.testing.assert_allclose(
        quantile_jit(q, 4, 10, "unbiased", 3.0), quantile_jit(q, 4, 10) + np.log(9.0)
    )


@pytest.mark.costly
@pytest.mark.unit
def test_median_tail_mass():
    ks = (0.0, 1.0, 2.0, 3.0)
    for n, m in ((1, 3), (1, 50), (40, 20), (0, 10)):
        got = np.array([float(median_vg(k, float(n), float(m))[0]) for k in ks])
        q50 = float(quantile_jit(PROBS, n, m)[6])  # PROBS[6] = 0.5
        np.testing.assert_allclose(
            got, 2 * st.norm.cdf(-np.array(ks) * np.exp(-q50 / 2)), rtol=1e-10
        )
        if n == 1:  # exact chi2 median; saddlepoint error measured 0.015 at M = 3
            assert abs(q50 - np.log(st.chi2.median(m - 1) / (m - 1))) < 0.02
        if n == 0:
            np.testing.assert_allclose(got, 2 * st.norm.cdf(-np.array(ks)), rtol=1e-14)
    # The typical chain loses its tails.
    tails = [float(median_vg(2.0, float(n), 10.0)[0]) for n in (0, 10, 100)]
    assert tails[0] > tails[1] > tails[2] >= 0


# ---------------------------------------------------------------------------
# Mean real-tail mass (G7b). One table per estimator serves all tests below.
# ---------------------------------------------------------------------------

TAIL_N = np.array([1, 2, 10, 30, 100, 150, 300])
TAIL_M = np.array([2.0, 3.0, 10.0, 20.0, 100.0, 1000.0, 1e4, 1e5])
TAIL_K = np.array([0.5, 1.0, 2.0, 3.0, 4.0])


@pytest.fixture(scope="module")
def tail_table():
    """E[T_n] for (TAIL_N, TAIL_M, TAIL_K), one call per estimator."""
    out = {}
    for e in ESTIMATORS:
        fn = jax.jit(
            lambda m, k, e=e: gaussian.expected_tail_mass(TAIL_N[:, None, None], m[:, None], k, e)
        )
        out[e] = np.asarray(fn(TAIL_M, TAIL_K))
    assert out["mle"].shape == (TAIL_N.size, TAIL_M.size, TAIL_K.size)
    return out


def _idx(values, grid):
    return [int(np.flatnonzero(grid == v)[0]) for v in values]


@pytest.mark.costly
@pytest.mark.unit
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_expected_tail_mass_n1_n2_against_quadrature(tail_table, estimator):
    ks = np.array([0.5, 2.0, 4.0])
    kj = _idx(ks, TAIL_K)
    for k in M_GRID:
        got = tail_table[estimator][:2, _idx([k], TAIL_M)[0]][:, kj]
        # n = 1: Y_1 = 1/M + G, adaptive quadrature.
        want1 = [
            expect_g_quad(lambda g, kk=kk, k=k: 2 * sc.ndtr(-kk / np.sqrt(1 / k + g)), k, estimator)
            for kk in ks
        ]
        # n = 2: Y_2 = 1/M + G_2 (1/M + G_1), tensor Gauss-Legendre in log
        # space (the same rule reproduces n = 1 to 1e-11).
        g_nodes, w = gauss_legendre_g(k, estimator)
        assert abs(w.sum() - 1) < 1e-12
        want1_gl = (2 * sc.ndtr(-ks[:, None] / np.sqrt(1 / k + g_nodes)) * w).sum(1)
        np.testing.assert_allclose(want1_gl, want1, rtol=1e-11)
        y1 = 1 / k + g_nodes
        vals = 2 * sc.ndtr(
            -ks[:, None, None] / np.sqrt(1 / k + g_nodes[None, None, :] * y1[None, :, None])
        )
        want2 = np.einsum("kij,i,j->k", vals, w, w)
        # measured (grid sized for n_max = 300): <= 8.5e-9 at M = 2, <= 3e-10 for M >= 3
        atol = 2e-8 if k == 2 else 1e-9
        np.testing.assert_allclose(got[0], want1, rtol=0, atol=atol)
        np.testing.assert_allclose(got[1], want2, rtol=0, atol=atol)


@pytest.mark.statistical
def test_expected_tail_mass_against_monte_carlo(tail_table):
    """Perpetuity Y' = 1/M + G Y', 4e5 paths, z-test at family-wise rate 1e-6."""
    ks = np.array([1.0, 2.0, 3.0])
    rng = np.random.default_rng(20240611)
    paths, n = 400_000, 100
    z_crit = st.norm.isf(1e-6 / (2 * 12))  # 2 sizes x 2 estimators x 3 k
    for m in (10, 100):
        y = {e: np.ones(paths) for e in ESTIMATORS}
        for _ in range(n):
            chi2 = 2.0 * rng.standard_gamma((m - 1) / 2, size=paths)  # shared draws
            for e in ESTIMATORS:
                y[e] = 1.0 / m + chi2 / divisor(m, e) * y[e]
        for e in ESTIMATORS:
            vals = 2 * sc.ndtr(-ks[:, None] / np.sqrt(y[e]))
            mc, se = vals.mean(1), vals.std(1, ddof=1) / np.sqrt(paths)
            theory = tail_table[e][_idx([n], TAIL_N)[0], _idx([m], TAIL_M)[0]][_idx(ks, TAIL_K)]
            z = (theory - mc) / se
            assert np.all(np.abs(z) < z_crit), (m, e, z)


@pytest.mark.statistical
@pytest.mark.slow
@pytest.mark.parametrize("m", [5, 20, 200])
def test_expected_tail_mass_against_large_monte_carlo(m):
    """2e6 perpetuity paths at n = 200 (both estimators, k in {1, 2, 3, 4})."""
    ks = np.array([1.0, 2.0, 3.0, 4.0])
    rng = np.random.default_rng(7 + m)
    paths, n = 2_000_000, 200
    z_crit = st.norm.isf(1e-6 / (2 * 2 * ks.size))
    y = {e: np.ones(paths) for e in ESTIMATORS}
    for _ in range(n):
        chi2 = 2.0 * rng.standard_gamma((m - 1) / 2, size=paths)
        for e in ESTIMATORS:
            y[e] = 1.0 / m + chi2 / divisor(m, e) * y[e]
    for e in ESTIMATORS:
        vals = 2 * sc.ndtr(-ks[:, None] / np.sqrt(y[e]))
        mc, se = vals.mean(1), vals.std(1, ddof=1) / np.sqrt(paths)
        z = (np.asarray(gaussian.expected_tail_mass(n, m, ks, e)) - mc) / se
        assert np.all(np.abs(z) < z_crit), (m, e, z)


@pytest.mark.costly
@pytest.mark.unit
def test_expected_tail_mass_large_m_delta_method(tail_table):
    # Y_n concentrates at E[Y_n] = 1 + n/M (unbiased). Taylor with the exact
    # Var(Y_n) (moment recursion of the perpetuity): |E f(Y) - f(E Y)| <= sup|f''| Var / 2.
    y_grid = np.linspace(1e-3, 50, 200001)
    for n in (10, 100):
        for m in (1e4, 1e5):
            g2 = (m + 1) / (m - 1)  # E[G^2] (E[G] = 1)
            ey, ey2 = 1.0, 1.0
            for _ in range(n):
                ey, ey2 = 1 / m + ey, 1 / m**2 + 2 * ey / m + g2 * ey2
            var = ey2 - ey**2
            np.testing.assert_allclose(ey, 1 + n / m, rtol=1e-12)
            got = tail_table["unbiased"][_idx([n], TAIL_N)[0], _idx([m], TAIL_M)[0]]
            for kk, val in zip(TAIL_K, got, strict=True):
                f = 2 * st.norm.cdf(-kk / np.sqrt(y_grid))
                f2 = np.abs(np.gradient(np.gradient(f, y_grid), y_grid)).max()
                assert abs(val - 2 * st.norm.cdf(-kk / np.sqrt(ey))) <= 0.5 * f2 * var * 1.01


@pytest.mark.unit
def test_expected_tail_mass_limits(tail_table):
    np.testing.assert_allclose(
        gaussian.expected_tail_mass(0, TAIL_M[:, None], TAIL_K),
        np.broadcast_to(2 * st.norm.cdf(-TAIL_K), (8, 5)),
    )
    for e in ESTIMATORS:
        out = tail_table[e]
        assert np.all((out > 0) & (out < 1))
        assert np.all(np.diff(out, axis=-1) < 0)  # decreasing in k
    # MLE: Y_n converges to the perpetuity. Coupling the forward recursions,
    # E|Y'_300 - Y'_150| <= (1/M) sum_{t>=150} r^t + r^150 + r^300 <= 3 r^150,
    # so |E f(Y_300) - E f(Y_150)| <= sup|f'| 3 r^150 (r = 1 - 1/M).
    mle = tail_table["mle"]
    y = np.linspace(1e-4, 100, 100001)
    for i, m in enumerate(TAIL_M):
        for j, kk in enumerate(TAIL_K):
            lip = np.max(st.norm.pdf(kk / np.sqrt(y)) * kk / (2 * y**1.5))
            assert abs(mle[6, i, j] - mle[5, i, j]) <= lip * 3 * (1 - 1 / m) ** 150 + 1e-12
    # Catalogue G7: M = 20, n = 30, k = 2 gives 0.049 (MLE) and 0.131 (unbiased).
    i, j, t = _idx([20.0], TAIL_M)[0], _idx([2.0], TAIL_K)[0], _idx([30], TAIL_N)[0]
    np.testing.assert_allclose(
        [mle[t, i, j], tail_table["unbiased"][t, i, j]], [0.049, 0.131], atol=1e-3
    )


@pytest.mark.costly
@pytest.mark.unit
def test_expected_tail_mass_jit_grad_float32(tail_table):
    # jit in k and sample_size (n static); grad in k against finite differences.
    vg = jax.jit(
        jax.value_and_grad(lambda kk, mm: gaussian.expected_tail_mass(30, mm, kk, "unbiased"))
    )
    value, grad = vg(2.0, 20.0)
    want = tail_table["unbiased"][
        _idx([30], TAIL_N)[0], _idx([20.0], TAIL_M)[0], _idx([2.0], TAIL_K)[0]
    ]
    np.testing.assert_allclose(value, want, rtol=1e-12)
    h = 1e-5
    fd = (float(vg(2.0 + h, 20.0)[0]) - float(vg(2.0 - h, 20.0)[0])) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-6)
    assert float(vg(0.0, 20.0)[0]) == 1.0 and float(vg(np.inf, 20.0)[0]) == 0.0
    # float32 in, float32 out, close to float64 (measured <= 2e-6 up to n = 1000).
    rows = _idx([1, 30, 300], TAIL_N)
    f32 = jax.jit(
        lambda mm, kk: gaussian.expected_tail_mass(
            TAIL_N[rows, None, None], mm[:, None], kk, "unbiased"
        )
    )(TAIL_M.astype(np.float32), TAIL_K.astype(np.float32))
    assert f32.dtype == jnp.float32 and np.all(np.isfinite(f32))
    np.testing.assert_allclose(np.asarray(f32, float), tail_table["unbiased"][rows], atol=1e-5)
    with pytest.raises(ValueError, match="concrete n"):
        jax.jit(lambda n: gaussian.expected_tail_mass(n, 10, 2.0))(3)


# ---------------------------------------------------------------------------
# Transformations: jit, grad, broadcasting, float32.
# ---------------------------------------------------------------------------

# name -> (function, positional args, index of the float argument for grad)
CASES = {
    "expected_variance": (gaussian.expected_variance, (5, 10, "mle", 1.3), 3),
    "expected_std": (gaussian.expected_std, (5, 10, "mle", 1.3), 3),
    "variance_cv2": (gaussian.variance_cv2, (5, 10), None),
    "std_cv2": (gaussian.std_cv2, (5, 10, "mle"), None),
    "log_variance_mean": (gaussian.log_variance_mean, (5, 10, "mle", 1.3), 3),
    "log_variance_var": (gaussian.log_variance_var, (5, 10), None),
    "mean_variance": (gaussian.mean_variance, (5, 10, "mle", 1.3), 3),
    "expected_w2_squared": (gaussian.expected_w2_squared, (5, 10, "mle", 1.3), 3),
    "markov_tail_bound": (gaussian.markov_tail_bound, (5, 10, 0.4, 1.3), 2),
}


def _split(args):
    """Array arguments and a rebuild function that restores the static strings."""
    pos = [i for i, a in enumerate(args) if not isinstance(a, str)]

    def rebuild(*arrays):
        out = list(args)
        for i, a in zip(pos, arrays, strict=True):
            out[i] = a
        return out

    return [args[i] for i in pos], pos, rebuild


@pytest.mark.costly
@pytest.mark.unit
@pytest.mark.parametrize("name", sorted(CASES))
def test_jit_grad_broadcast_float32(name):
    fun, args, grad_index = CASES[name]
    arrays, pos, rebuild = _split(args)
    eager = fun(*args)
    np.testing.assert_allclose(jax.jit(lambda *a: fun(*rebuild(*a)))(*arrays), eager, rtol=1e-12)
    # broadcasting: a column of the first array argument against a row of the second
    a0 = np.asarray([arrays[0], arrays[0]])[:, None]
    a1 = np.asarray([arrays[1], arrays[1] + 1, arrays[1] + 2])[None, :]
    out = fun(*rebuild(a0, a1, *arrays[2:]))
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out[1, 0], eager, rtol=1e-12)
    # float32 in, float32 out, finite, close to float64
    out32 = fun(*rebuild(*[np.float32(a) for a in arrays]))
    assert out32.dtype == jnp.float32 and np.isfinite(out32)
    np.testing.assert_allclose(float(out32), float(eager), rtol=1e-4)
    if grad_index is not None:
        gpos = pos.index(grad_index)

        def scalar(v):
            a = list(arrays)
            a[gpos] = v
            return fun(*rebuild(*a))

        v0 = float(arrays[gpos])
        h = 1e-6 * max(1.0, abs(v0))
        fd = (float(scalar(v0 + h)) - float(scalar(v0 - h))) / (2 * h)
        np.testing.assert_allclose(float(jax.grad(scalar)(v0)), fd, rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(float(jax.jit(jax.grad(scalar))(v0)), fd, rtol=1e-6, atol=1e-12)


# The iterative functions: jitted value and gradient (programs shared with the
# tests above), gradient against finite differences of the same program, and a
# jitted float32 call that broadcasts a column against a row.
ITERATIVE = {
    "log_variance_cdf": (
        cdf_vg,
        (-1.0, 5.0, 10.0, 1.3),
        lambda x, n: gaussian.log_variance_cdf(x, n, 10.0, "mle", 1.3),
    ),
    "log_variance_quantile": (
        quantile_vg,
        (0.2, 5.0, 10.0, 1.3),
        lambda q, n: gaussian.log_variance_quantile(q, n, 10.0, "mle", 1.3),
    ),
    "collapse_probability": (
        collapse_vg,
        (0.4, 5.0, 10.0),
        lambda e, n: gaussian.collapse_probability(n, 10.0, e, "mle"),
    ),
    "median_tail_mass": (
        median_vg,
        (2.0, 5.0, 10.0),
        lambda k, n: gaussian.median_tail_mass(n, 10.0, k, "unbiased"),
    ),
}


@pytest.mark.costly
@pytest.mark.unit
@pytest.mark.parametrize("name", sorted(ITERATIVE))
def test_iterative_jit_grad_broadcast_float32(name):
    vg, args, fun32 = ITERATIVE[name]
    v0, rest = args[0], args[1:]
    value, grad = vg(*args)
    h = 1e-6
    fd = (float(vg(v0 + h, *rest)[0]) - float(vg(v0 - h, *rest)[0])) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-6)
    col = np.array([v0, v0], np.float32)[:, None]
    row = np.array([5.0, 6.0, 7.0], np.float32)[None, :]
    out = jax.jit(fun32)(col, row)
    assert out.shape == (2, 3) and out.dtype == jnp.float32 and np.all(np.isfinite(out))
    np.testing.assert_allclose(float(out[1, 0]), float(value), rtol=1e-4)


# ---------------------------------------------------------------------------
# Validation.
# ---------------------------------------------------------------------------

BAD_INPUTS = [
    (gaussian.expected_variance, (3, 1.0), {}, "sample_size", "1.0"),
    (gaussian.expected_variance, (3, np.nan), {}, "sample_size", "nan"),
    (gaussian.expected_std, (3, np.array([5, np.inf])), {}, "sample_size", "inf"),
    (gaussian.expected_variance, (-1, 10), {}, "n", "-1"),
    (gaussian.expected_variance, (2.5, 10), {}, "n", "2.5"),
    (gaussian.mean_variance, (3, 10), {"estimator": "biased"}, "estimator", "'biased'"),
    (gaussian.expected_w2_squared, (3, 10), {"sigma0": -2.0}, "sigma0", "-2.0"),
    (gaussian.log_variance_mean, (3, 10), {"sigma0": 0.0}, "sigma0", "0.0"),
    (gaussian.collapse_probability, (3, 10, -0.5), {}, "eps", "-0.5"),
    (gaussian.markov_tail_bound, (3, 10, 0.0), {}, "eps", "0.0"),
    (gaussian.median_tail_mass, (3, 10, -1.5), {}, "k", "-1.5"),
    (gaussian.expected_tail_mass, (3, 10, np.array([1.0, -0.25])), {}, "k", "-0.25"),
    (gaussian.expected_tail_mass, (np.array([1, -4]), 10, 1.0), {}, "n", "-4"),
    (gaussian.log_variance_quantile, (1.5, 3, 10), {}, "q", "1.5"),
    (gaussian.log_variance_quantile, (0.0, 3, 10), {}, "q", "0.0"),
    (gaussian.log_variance_cdf, (0.0, 3, 10), {"method": "exact"}, "method", "'exact'"),
    (gaussian.log_variance_cdf, (np.nan, 3, 10), {}, "x", "nan"),
    (gaussian.std_cv2, (3, 10, "MLE"), {}, "estimator", "'MLE'"),
    (gaussian.log_variance_var, (3, 0), {}, "sample_size", "0"),
    (gaussian.variance_cv2, (np.array([1.0, 2.0, 0.5]), 10), {}, "n", "0.5"),
    (gaussian.collapse_probability, (3, 10, 0.5), {"method": "clt"}, "method", "'clt'"),
    (gaussian.log_variance_quantile, (0.5, 3, 10), {"sigma0": -1.0}, "sigma0", "-1.0"),
    (gaussian.expected_tail_mass, (3, 10, np.nan), {}, "k", "nan"),
    (gaussian.expected_tail_mass, (3, 1.5, 1.0), {"estimator": "mle"}, "sample_size", "1.5"),
]


@pytest.mark.unit
@pytest.mark.parametrize("fun,args,kwargs,name,value", BAD_INPUTS)
def test_bad_inputs_raise(fun, args, kwargs, name, value):
    with pytest.raises(ValueError, match=rf"^{name} must .*; got {re.escape(value)}$"):
        fun(*args, **kwargs)


@pytest.mark.unit
def test_estimator_error_lists_choices():
    with pytest.raises(ValueError, match="'mle', 'unbiased'"):
        gaussian.expected_variance(1, 10, "bayes")


@pytest.mark.unit
def test_bad_grid_size():
    with pytest.raises(ValueError, match="grid_size"):
        gaussian.expected_tail_mass(1, 10, 1.0, grid_size=10)


@pytest.mark.unit
def test_traced_values_are_not_validated():
    # Inside jit the checks are skipped (no concretisation error).
    out = jax.jit(functools.partial(gaussian.expected_variance, estimator="mle"))(3, 10.0)
    np.testing.assert_allclose(out, (9 / 10) ** 3)
    assert math.isfinite(float(out))


@pytest.mark.costly
@pytest.mark.unit
@pytest.mark.parametrize("m,est", [(2, "unbiased"), (3, "mle"), (10, "mle"), (1000, "unbiased")])
def test_n1_is_exact_chi_square(m, est):
    """At n = 1 the CDF, quantile, collapse probability and median tail are exact (scipy)."""
    from scipy import stats as _st

    nu, c = m - 1, (m if est == "mle" else m - 1)
    chi = _st.chi2(nu)
    x = np.linspace(-30.0, 2.0, 9)
    np.testing.assert_allclose(
        gaussian.log_variance_cdf(x, 1, m, est), chi.cdf(c * np.exp(x)), rtol=1e-10, atol=1e-300
    )
    np.testing.assert_allclose(
        gaussian.collapse_probability(1, m, 1e-3, est), chi.cdf(c * 1e-3), rtol=1e-10
    )
    q = np.array([1e-12, 0.01, 0.5, 0.99])
    np.testing.assert_allclose(
        gaussian.log_variance_quantile(q, 1, m, est), np.log(chi.ppf(q) / c), rtol=1e-10, atol=1e-12
    )
    med = 2 * _st.norm.sf(2.0 / np.sqrt(chi.median() / c))
    np.testing.assert_allclose(gaussian.median_tail_mass(1, m, 2.0, est), med, rtol=1e-9)
