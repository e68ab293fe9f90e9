"""Exact tests of theory.bayes against independent computations.

References (none shares code with the module):

* the moment recursion of the chain written step by step from the model in exact
  rational arithmetic (``fractions.Fraction``), in other coordinates than the module
  (the expected posterior mean of sigma^2 with E[mu_n] and E[mu_n^2], where the
  module uses E(mu_n - mu0)^2 and a closed-form matrix power), for both updates and
  both predictives; its fixed point by an exact rational linear solve, and its rates
  by the eigenvalues of its exact linear part;
* the stationary E log of the posterior mean of sigma^2 by a two-dimensional
  trapezoid rule over sigma^2 ~ IG(alpha0, beta0) and chi^2_M.

Tolerances: the closed forms evaluate O(1) float64 operations per term plus powers
of the eigenvalues; the bound is ``closed_form_rtol(cond)`` (tests/exact.py) with
``cond = (n + 1) * (1 + (|l1| + |l2|)/|l1 - l2|)`` for the refit closed form
(Cayley-Hamilton divides by the eigenvalue gap; a power l^k has relative condition
k), ``n + 1`` for the sequential products and sums. Each exact test also shows that
a deliberately wrong formula (the other predictive, or the generation index shifted
by one) falls outside the same tolerance.
"""

import jax

jax.config.update("jax_enable_x64", True)

import doctest  # noqa: E402
from fractions import Fraction as F  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import special  # noqa: E402

from tests.exact import assert_outside, assert_within, closed_form_rtol  # noqa: E402
from theory import bayes as tb  # noqa: E402
from theory import gaussian as tg  # noqa: E402

pytestmark = pytest.mark.unit

# (M, mu0, kappa0, alpha0, beta0, real_mean, real_sd^2), all rational
CASES = [
    (10, F(1, 2), F(3, 2), F(3), F(2), F(-1, 4), F(9, 4)),
    (4, F(0), F(1, 4), F(5, 2), F(1), F(1), F(1)),
    (25, F(-2), F(6), F(7, 4), F(3, 2), F(0), F(1, 4)),
]
GENERATIONS = 30


def step(state, m, prior, update, predictive):
    """One generation of the expected moments, from the model (module docstring)."""
    u, inv_k, m1, m2, post = state  # u = E[beta/(alpha-1)]; post = (kappa, alpha) of fit t
    if predictive == "joint":
        es, ex2 = (m - 1) * u, m2 + u * (inv_k + F(1, m))
    else:
        vp = u * (1 + inv_k)
        es, ex2 = (m - 1) * vp, m2 + vp / m
    mu0, k0, a0, b0 = prior
    if update == "refit" or post is None:  # fit from the original prior
        kn, an = k0 + m, a0 + F(m, 2)
        dev2 = ex2 - 2 * mu0 * m1 + mu0 * mu0
        eb = b0 + es / 2 + k0 * m / (2 * kn) * dev2
        new_m1 = (k0 * mu0 + m * m1) / kn
        new_m2 = (k0 * k0 * mu0 * mu0 + 2 * k0 * mu0 * m * m1 + m * m * ex2) / (kn * kn)
    else:  # the previous posterior is the prior: (mu_t, kappa_t, alpha_t, beta_t)
        kt, at = post
        kn, an = kt + m, at + F(m, 2)
        dev2 = ex2 - m2  # E(xbar - mu_t)^2, as E[xbar mu_t] = E[mu_t^2]
        eb = u * (at - 1) + es / 2 + kt * m / (2 * kn) * dev2
        new_m1 = (kt * m1 + m * m1) / kn
        new_m2 = (kt * kt * m2 + 2 * kt * m * m2 + m * m * ex2) / (kn * kn)
    return (eb / (an - 1), 1 / kn, new_m1, new_m2, (kn, an))


def path(case, update, predictive, g=GENERATIONS):
    m, mu0, k0, a0, b0, rm, rs2 = case
    state = (rs2, F(0), rm, rm * rm + 0, None)
    out = [state]
    for _ in range(g):
        state = step(state, m, (mu0, k0, a0, b0), update, predictive)
        out.append(state)
    u = np.array([float(s[0]) for s in out])
    mean = np.array([float(s[2]) for s in out])
    var = np.array([float(s[3] - s[2] * s[2]) for s in out])
    return u, mean, var


def args(case, n):
    m, mu0, k0, a0, b0, rm, rs2 = case
    return (
        n,
        m,
        float(mu0),
        float(k0),
        float(a0),
        float(b0),
        float(rm),
        float(np.sqrt(float(rs2))),
    )


def cond(case, update, predictive, n):
    if update == "sequential":
        return n + 1.0
    m, mu0, k0, a0, *_ = case
    mat = tb._refit_matrix(float(m), float(k0), float(a0), 1.0, predictive)[0]
    l1, l2 = (float(x) for x in tb._eig(mat))
    return (n + 1.0) * (1 + (abs(l1) + abs(l2)) / abs(l1 - l2))


UPDATES = [(u, p) for u in tb.UPDATES for p in tb.PREDICTIVES]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"M{c[0]}")
@pytest.mark.parametrize("update, predictive", UPDATES)
def test_moments_equal_the_exact_rational_recursion(case, update, predictive):
    n = np.arange(GENERATIONS + 1)
    u, mean, var = path(case, update, predictive)
    kw = dict(update=update, predictive=predictive)
    got = [np.asarray(f(*args(case, n), **kw)) for f in (tb.expected_var_mean, tb.expected_mean)]
    got_var = np.asarray(tb.mean_variance(*args(case, n), **kw))
    c = cond(case, update, predictive, n)
    tol = closed_form_rtol(c)
    what = f"{update}/{predictive} M={case[0]}"
    assert_within(got[0], u, tol * np.abs(u), f"E[var_mean] {what}")
    # E mu: absolute scale of |mu0| + |real_mean| (a difference of them is pulled down)
    scale = abs(float(case[1])) + abs(float(case[5])) + 1e-300
    assert_within(got[1], mean, tol * scale, f"E[mu] {what}")
    # Var mu = E mu^2 - (E mu)^2 in the reference: its scale is E mu^2
    ref_m2 = var + mean * mean
    assert_within(got_var, var, 4 * tol * (ref_m2 + u), f"Var mu {what}")
    # a wrong formula is rejected: the other predictive (n >= 2), or n shifted by one
    other = "student_t" if predictive == "joint" else "joint"
    wrong = np.asarray(tb.expected_var_mean(*args(case, n[2:]), update=update, predictive=other))
    assert_outside(wrong, u[2:], tol[2:] * np.abs(u[2:]), f"other predictive {what}")
    if update == "refit":
        late = np.asarray(tb.expected_var_mean(*args(case, n[1:12] + 1), **kw))
        assert_outside(late, u[1:12], tol[1:12] * np.abs(u[1:12]), f"n+1 {what}")


def _linear_part(case, predictive):
    """The exact affine map of the refit recursion on (u, m1, m2) for t >= 1: (J, c)."""
    m, mu0, k0, a0, b0, *_ = case
    post = (k0 + m, a0 + F(m, 2))

    def f(x):
        s = step((x[0], 1 / post[0], x[1], x[2], post), m, (mu0, k0, a0, b0), "refit", predictive)
        return [s[0], s[2], s[3]]

    c = f([F(0)] * 3)
    cols = [
        [a - b for a, b in zip(f([F(int(i == j)) for i in range(3)]), c, strict=True)]
        for j in range(3)
    ]
    jac = [[cols[j][i] for j in range(3)] for i in range(3)]
    return jac, c


def _solve(a, b):
    """Exact Gaussian elimination in Fractions."""
    n = len(b)
    a = [row[:] + [b[i]] for i, row in enumerate(a)]
    for i in range(n):
        p = next(r for r in range(i, n) if a[r][i] != 0)
        a[i], a[p] = a[p], a[i]
        for r in range(n):
            if r != i and a[r][i] != 0:
                f = a[r][i] / a[i][i]
                a[r] = [x - f * y for x, y in zip(a[r], a[i], strict=True)]
    return [a[i][n] / a[i][i] for i in range(n)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"M{c[0]}")
@pytest.mark.parametrize("predictive", tb.PREDICTIVES)
def test_fixed_point_and_rate_equal_the_exact_linear_solve(case, predictive):
    m, mu0, k0, a0, b0, *_ = case
    jac, c = _linear_part(case, predictive)
    eye_minus = [[int(i == j) - jac[i][j] for j in range(3)] for i in range(3)]
    fixed = _solve(eye_minus, c)[0]
    if predictive == "joint":
        assert fixed == b0 / (a0 - 1), "joint: the fixed point is not the prior mean"
    got = float(tb.var_mean_fixed_point(m, float(k0), float(a0), float(b0), predictive=predictive))
    lam = np.linalg.eigvals(np.array(jac, float))
    pull = float(m / (k0 + m))  # the eigenvalue of E mu's own recursion
    others = np.sort(np.real(lam[np.abs(lam - pull) > 1e-9]))
    rate = float(tb.drift_rate(m, float(k0), float(a0), predictive=predictive))
    mat = tb._refit_matrix(float(m), float(k0), float(a0), 1.0, predictive)[0]
    l1, l2 = (float(x) for x in tb._eig(mat))
    tol = closed_form_rtol(1 + (abs(l1) + abs(l2)) / abs(l1 - l2))
    assert_within(got, float(fixed), tol * abs(float(fixed)), "fixed point")
    # numpy's eigenvalues are backward stable: error <= ||J|| u times the conditioning
    assert_within(rate, others[-1], 1e-12, "drift rate")
    # the MLE chain's limit (0) and the prior mean (Student-t) are rejected
    wrong = 0.0 if predictive == "joint" else float(b0 / (a0 - 1))
    assert_outside(wrong, float(fixed), tol * abs(float(fixed)), "wrong fixed point")


def test_weak_prior_has_no_fixed_point_and_grows():
    # alpha0 <= 1: the prior has no mean; the rate is >= 1 and v_n grows without bound
    assert float(tb.drift_rate(10, 1.0, 0.75)) > 1.0
    assert np.isinf(tb.var_mean_fixed_point(10, 1.0, 0.75, 1.0))
    v = np.asarray(tb.expected_var_mean([10, 100, 1000], 10, 0.0, 1.0, 0.75, 1.0))
    assert np.all(np.diff(v) > 0) and v[-1] > 1e3 * v[0]


def _log_beta_expectation(m, a0, b0, step):
    """E log(b0 + s2 c / 2), s2 ~ IG(a0, b0), c ~ chi2_M, by the trapezoid rule in
    (log g, log h) with s2 = b0 / g, g ~ Gamma(a0), h = c/2 ~ Gamma(M/2): smooth
    integrands with exponentially small tails, for which the rule converges
    geometrically in 1/step."""
    x = np.arange(-45.0, 7.0 + step / 2, step)

    def density(shape):  # of log G, G ~ Gamma(shape): exp(shape x - e^x) / Gamma(shape)
        return np.exp(shape * x - np.exp(x) - special.gammaln(shape)) * step

    fu, fv = density(a0), density(m / 2)
    inner = np.logaddexp(0.0, x[None, :] - x[:, None])  # log(1 + h/g), rows: log g
    return np.log(b0) + fu @ inner @ fv


def test_stationary_log_var_mean_equals_quadrature():
    for m, a0, b0 in [(10, 3.0, 1.0), (4, 1.5, 2.0), (40, 6.0, 0.5)]:
        an = a0 + m / 2
        fine = _log_beta_expectation(m, a0, b0, 0.01)
        coarse = _log_beta_expectation(m, a0, b0, 0.02)
        ref = fine - np.log(an - 1)
        got = float(tb.stationary_log_var_mean(m, a0, b0))
        # the halving's change bounds the fine rule's error (geometric convergence),
        # plus the rounding of ~2e7 terms summed in float64
        bound = 10 * abs(fine - coarse) + 1e-11 * (1 + abs(ref))
        assert_within(got, ref, bound, f"stationary E log, M={m}")
        assert_outside(np.log(b0 / (a0 - 1)), ref, bound, "log prior mean")


def test_sequential_joint_is_a_martingale_and_mle_collapses():
    n = np.arange(1, 200)
    v = np.asarray(tb.expected_var_mean(n, 10, 0.0, 1.0, 3.0, 1.0, update="sequential"))
    np.testing.assert_array_equal(v, v[0])
    mle = np.asarray(tg.expected_variance(n, 10, "mle", 1.0))
    assert mle[-1] < 1e-8 and v[-1] > 0.5  # the plug-in chain collapses; this one does not


BAD = [
    (dict(kappa0=0.0), "kappa0 must be a finite number > 0; got 0.0"),
    (dict(alpha0=-1.0), "alpha0 must be a finite number > 0; got -1.0"),
    (dict(alpha0=0.0), "alpha0 must be a finite number > 0; got 0.0"),
    (dict(beta0=0.0), "beta0 must be a finite number > 0; got 0.0"),
    (dict(beta0=-2.0), "beta0 must be a finite number > 0; got -2.0"),
    (dict(real_sd=0.0), "real_sd must be a finite number > 0; got 0.0"),
    (dict(mu0=float("nan")), "mu0 must be a number (not NaN); got nan"),
    (dict(n=-1), "n must be a non-negative integer"),
    (dict(sample_size=1), "sample_size must be an integer >= 2; got 1"),
    (dict(update="accumulate"), "update must be one of 'refit', 'sequential'; got 'accumulate'"),
    (dict(predictive="t"), "predictive must be one of 'joint', 'student_t'; got 't'"),
]
GOOD = dict(n=3, sample_size=10, mu0=0.0, kappa0=1.0, alpha0=3.0, beta0=1.0)


@pytest.mark.parametrize("bad, message", BAD, ids=[str(b) for b, _ in BAD])
@pytest.mark.parametrize("fn", [tb.expected_var_mean, tb.expected_mean, tb.mean_variance])
def test_bad_arguments_are_refused_in_one_line(fn, bad, message):
    with pytest.raises(ValueError) as err:
        fn(**{**GOOD, **bad})
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_docstring_examples():
    failures, _ = doctest.testmod(tb, raise_on_error=False, verbose=False)
    assert failures == 0
