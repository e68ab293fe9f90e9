"""Exact tests of theory.multivariate against independent computations.

References (none shares code with the module):

* scipy's digamma and polygamma summed term by term over i = 1..d in float64;
* the moments of log chi-square by numerical integration (scipy.integrate.quad
  against scipy.stats.chi2's density, with quad's own error estimate);
* exact rational arithmetic (fractions) for the trace and the mean's error;
* at d = 1, theory.gaussian (the 1-D chain).

Every tolerance is the reference's error bound plus the closed form's
rounding bound (tests/exact.py), and each test shows that a deliberately wrong
formula (the other estimator, the sum over i = 0..d-1) falls outside it.
"""

import jax

jax.config.update("jax_enable_x64", True)

import doctest  # noqa: E402
from fractions import Fraction  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.integrate as si  # noqa: E402
import scipy.special as sp  # noqa: E402
import scipy.stats as st  # noqa: E402

from tests.exact import U64, assert_outside, assert_within, closed_form_rtol  # noqa: E402
from theory import gaussian as tg  # noqa: E402
from theory import multivariate as tm  # noqa: E402

pytestmark = pytest.mark.unit

CASES = [(m, d) for m in (3, 7, 20, 100, 10**6) for d in (1, 2, 5, 30) if d < m]
N = np.array([0, 1, 7, 100])


def _c(m, est):
    return m if est == "mle" else m - 1


def _ref_drift(m, d, est, start=1):
    """sum_{i=start}^{start+d-1} [psi((M-i)/2) + log(2/c)] and the sum of |terms| (scale)."""
    i = np.arange(start, start + d, dtype=np.float64)
    terms = sp.digamma(0.5 * (m - i)) + np.log(2.0 / _c(m, est))
    scale = np.sum(np.abs(sp.digamma(0.5 * (m - i))) + abs(np.log(2.0 / _c(m, est))))
    return np.sum(terms), scale


@pytest.mark.costly
@pytest.mark.parametrize("est", ["mle", "unbiased"])
@pytest.mark.parametrize("m,d", CASES)
def test_log_det_mean_against_scipy(m, d, est):
    ref, scale = _ref_drift(m, d, est)
    got = tm.log_det_mean(N, m, d, est)
    # both sides round each of ~d terms of size <= scale: ULPS u per term, twice
    bound = 2 * N * closed_form_rtol(scale)
    assert_within(got, N * ref, bound, f"log_det_mean M={m} d={d} {est}")
    if N.max() and m < 10**6:  # the other estimator, and i = 0..d-1, are rejected
        other = "unbiased" if est == "mle" else "mle"
        assert_outside(tm.log_det_mean(N[1:], m, d, other), N[1:] * ref, bound[1:], "estimator")
        if m > d + 1:
            shifted, _ = _ref_drift(m, d, est, start=0)
            assert_outside(N[1:] * shifted, got[1:], bound[1:], "i from 0")


@pytest.mark.parametrize("m,d", CASES)
def test_log_det_var_against_scipy(m, d):
    i = np.arange(1, d + 1, dtype=np.float64)
    ref = np.sum(sp.polygamma(1, 0.5 * (m - i)))  # positive terms: condition 1
    got = tm.log_det_var(N, m, d)
    assert_within(got, N * ref, 2 * N * closed_form_rtol(ref), f"log_det_var M={m} d={d}")
    if m > d + 1:
        wrong = np.sum(sp.polygamma(1, 0.5 * (m - i + 1)))
        assert_outside(N[1:] * wrong, got[1:], 2 * N[1:] * closed_form_rtol(ref), "i from 0")


def _log_chi2_moments(k):
    """E log chi2_k and Var log chi2_k by quadrature in u = log x, with error bounds."""
    dens = st.chi2(k)

    def f(p):
        return lambda u: u**p * dens.pdf(np.exp(u)) * np.exp(u)

    lo, hi = -60.0 / min(k, 1) - 40, np.log(k + 60 * np.sqrt(k) + 200)
    m1, e1 = si.quad(f(1), lo, hi, epsabs=1e-14, epsrel=1e-13, limit=400)
    m2, e2 = si.quad(f(2), lo, hi, epsabs=1e-14, epsrel=1e-13, limit=400)
    return m1, e1, m2 - m1 * m1, e2 + 2 * abs(m1) * e1


@pytest.mark.parametrize("m,d", [(3, 1), (7, 2), (20, 5)])
def test_one_fit_against_log_chi2_quadrature(m, d):
    """One fit: log det Sigma_1 = sum_i log(chi2_{M-i} / c), moments by quadrature."""
    for est in ("mle", "unbiased"):
        mean, err, var, verr = 0.0, 0.0, 0.0, 0.0
        for i in range(1, d + 1):
            a, ea, b, eb = _log_chi2_moments(m - i)
            mean += a - np.log(_c(m, est))
            err += ea + 1e3 * U64 * (abs(a) + 1)
            var += b
            verr += eb + 1e3 * U64 * (abs(b) + 1)
        assert_within(tm.log_det_mean(1, m, d, est), mean, err, f"mean M={m} d={d} {est}")
        assert_within(tm.log_det_var(1, m, d), var, verr, f"var M={m} d={d}")


def _fraction_r(m, est):
    return Fraction(m - 1, _c(m, est))


@pytest.mark.parametrize("est", ["mle", "unbiased"])
@pytest.mark.parametrize("m,d", CASES)
def test_trace_and_mean_error_exact_rationals(m, d, est):
    r = _fraction_r(m, est)
    log_r = abs(np.log(float(r))) if r != 1 else 0.0
    trace_ref = np.array([float(d * r ** int(n)) for n in N])
    mse_ref = np.array([float(Fraction(d, m) * sum(r**t for t in range(int(n)))) for n in N])
    got_t = tm.expected_trace(N, m, d, est)
    got_m = tm.mean_sq_error(N, m, d, est)
    # exp(n log r): relative condition 1 + n |log r|; expm1 ratios: 2 + 2 n |log r|
    bound_t = closed_form_rtol(1 + N * log_r) * trace_ref
    bound_m = closed_form_rtol(4 + 2 * N * log_r) * mse_ref
    assert_within(got_t, trace_ref, bound_t, "expected_trace")
    assert_within(got_m, mse_ref, bound_m, "mean_sq_error")
    if est == "mle" and m < 10**6:
        assert_outside(tm.expected_trace(N[2:], m, d, "unbiased"), trace_ref[2:], bound_t[2:], "t")
        assert_outside(tm.mean_sq_error(N[2:], m, d, "unbiased"), mse_ref[2:], bound_m[2:], "m")


@pytest.mark.parametrize("est", ["mle", "unbiased"])
@pytest.mark.parametrize("m", [2, 3, 10, 57, 10**5])
def test_d1_agrees_with_theory_gaussian(m, est):
    n = np.arange(0, 60, 7)
    pairs = [
        (tm.log_det_mean(n, m, 1, est), tg.log_variance_mean(n, m, est)),
        (tm.log_det_var(n, m, 1), tg.log_variance_var(n, m)),
        (tm.expected_trace(n, m, 1, est), tg.expected_variance(n, m, est)),
        (tm.mean_sq_error(n, m, 1, est), tg.mean_variance(n, m, est)),
    ]
    for j, (a, b) in enumerate(pairs):
        b = np.asarray(b)
        assert_within(a, b, closed_form_rtol(4 + n) * np.abs(b), f"d=1 agreement #{j}")


def test_bad_input():
    with pytest.raises(ValueError, match="dim=5, sample_size=5"):
        tm.log_det_mean(1, 5, 5)
    with pytest.raises(ValueError, match="dim"):
        tm.expected_trace(1, 5, 0)
    with pytest.raises(ValueError, match="estimator"):
        tm.mean_sq_error(1, 5, 2, "biased")
    with pytest.raises(ValueError, match="dim must be concrete"):
        jax.jit(lambda d: tm.log_det_var(1, 10, d))(3)
    # n and sample_size may be traced
    f = jax.jit(lambda n, m: tm.log_det_mean(n, m, 3))
    assert np.isclose(float(f(2.0, 20.0)), float(tm.log_det_mean(2, 20, 3)), rtol=1e-12)


def test_doctests():
    res = doctest.testmod(tm, optionflags=doctest.ELLIPSIS)
    assert res.failed == 0 and res.attempted >= 4
