"""Exact tests of theory.poisson against independent computations.

References (none shares code with the module):

* the Markov chain on the integer counts S_n = M lambda_n (S_1 ~ Poisson(M
  lam0), S_{n+1} | S_n ~ Poisson(S_n)), propagated as a distribution vector
  on a truncated state space {0..hi_t} in long double, with rigorous bounds
  for both the truncation (mass, first and second moments of the paths that
  leave the state space) and the rounding (entrywise error bounds of the
  transition matrix, summation bounds), carried alongside;
* the recursion g_{k+1} = 1 - exp(-g_k) in 40-digit mpmath (the module uses
  a 40-digit decimal table to k = 4096 and an asymptotic series beyond);
* the analytic derivative M g_n exp(-M lam0 g_n) for jax.grad.

Every tolerance is the sum of the reference's bound and the closed form's
rounding bound (tests/exact.py), and every exact test also shows that a
deliberately wrong formula (the generation index shifted by one, or a
relative change of 1e-12) is rejected by the same tolerance.
"""

import jax

jax.config.update("jax_enable_x64", True)

import doctest  # noqa: E402
import functools  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402

import jax.numpy as jnp  # noqa: E402
import mpmath  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.stats as st  # noqa: E402

from tests.exact import U64, assert_within, closed_form_rtol, expm1_cond  # noqa: E402
from theory import poisson  # noqa: E402

pytestmark = pytest.mark.unit

# ---------------------------------------------------------------------------
# Reference 1: the truncated count chain in long double, with error bounds.
# ---------------------------------------------------------------------------

LD = np.longdouble
U_LD = float(np.finfo(LD).eps) / 2  # 5.4e-20 on x86-64 (80-bit); = U64 where long double is double
TOP = 1300  # largest state ever kept
NMAX = 50
# The bounds are themselves computed in float64 (BLAS products of up to 1301
# terms: relative error < 1301 u = 1.5e-13) and neglect second-order terms
# (products of two relative errors < 1e-15): this factor covers both.
SLACK = 1.0 + 1e-12


def top_at(t):
    """States kept at fit t: {0..hi_t}. Any choice is rigorous (the exits are
    bounded below); this one keeps the exit mass < 1e-19 while saving work early."""
    return min(TOP, 60 + 25 * (t + 1))


def pmf_rows(means):
    """Rows Poisson(mean).pmf(j), j = 0..TOP, in long double: exp(-mean) prod_{m<=j} (mean/m).

    Entry j takes j divisions, j - 1 multiplications in the cumulative
    product, one multiplication by the exponential and the exponential itself
    (within 1 ulp = 2 u): relative error <= (2j + 3) u_LD (checked against
    mpmath in test_reference_pmf_error_model). Long double covers the range
    (exp(-1300) = 1e-565, 1300^1300/1300! = 1e563).
    """
    mu = np.asarray(means, LD).reshape(-1, 1)
    out = np.empty((mu.shape[0], TOP + 1), LD)
    out[:, 0] = np.exp(-mu[:, 0])
    out[:, 1:] = out[:, :1] * np.cumprod(mu / np.arange(1, TOP + 1, dtype=LD), axis=1)
    return out


PMF_EPS = (2.0 * np.arange(TOP + 1) + 3.0) * U_LD  # entrywise relative bound, by column j


@functools.cache
def transition_matrix():
    """P[i, j] = Poisson(i).pmf(j) on {0..TOP} (long double) and a float64 copy for the bounds."""
    mat = pmf_rows(np.arange(TOP + 1))
    return mat, mat.astype(np.float64)


@functools.cache
def tail_sums(hi):
    """sf(hi; i), sf(hi - 1; i), sf(hi - 2; i) for i = 0..TOP (scipy, float64).

    They enter only the truncation bounds, which are below 1e-20 here (asserted),
    so scipy's relative accuracy of the tail (better than 1e-10) is immaterial.
    """
    i = np.arange(TOP + 1, dtype=np.float64)
    return tuple(st.poisson.sf(hi - s, i) for s in range(3))


def chain_reference(sample_size, lam0, nmax=NMAX):
    """P(S_n = 0), P(S_n > 0), E[lambda_n], Var(lambda_n) for n = 1..nmax, with error bounds.

    Propagation: d_1 = Poisson(c) pmf on {0..hi_1}, c = M lam0 (exact in long
    double: a 53-bit float times an integer < 2^11), d_t = d_{t-1} P on
    {0..hi_t}. Rounding: a_t bounds |computed d_t - exact truncated d_t|
    componentwise,

        a_t = a_{t-1} P + (eps_j + gamma_t) d_t,    gamma_t = N u / (1 - N u),

    (N = hi_{t-1} + 1 non-negative terms per sum, in any order; eps_j the
    entrywise bound of pmf_rows). Truncation: a path that leaves {0..hi_t} at
    fit t (S_t = j > hi_t) is dropped; the dropped mass is
    sum_i d_{t-1,i} sf(hi_t; i), and since E[S_n | S_t = j] = j (martingale) and
    E[S_n^2 | S_t = j] = j^2 + (n - t) j (iterate E[X^2] = s^2 + s for X ~
    Poisson(s)), its contributions to E[S_n] and to E[(S_n - c)^2] are at most
    sum_{j > hi} j pmf = i sf(hi - 1; i) and, with (j - c)^2 <= j^2 + c^2 and
    sum_{j > hi} j(j-1) pmf = i^2 sf(hi - 2; i),
    i^2 sf(hi - 2) + (1 + n - t) i sf(hi - 1) + c^2 sf(hi). The truncated
    P(S_n = 0) and P(S_n > 0) are each below the true value by at most the
    total dropped mass.
    """
    mat, mat64 = transition_matrix()
    c = LD(sample_size) * LD(lam0)
    cf = float(c)
    hi = top_at(1)
    d = pmf_rows([c])[0, : hi + 1]  # S_1 ~ Poisson(c): same operations, same error model
    a = PMF_EPS[: hi + 1] * d.astype(np.float64) * SLACK
    # per fit t: dropped mass, sum of i sf(hi - 1; i), sum of i^2 sf(hi - 2; i) + c^2 sf(hi; i)
    drop0 = [st.poisson.sf(hi, cf)]
    drop1 = [cf * st.poisson.sf(hi - 1, cf)]
    drop2 = [cf * cf * (st.poisson.sf(hi - 2, cf) + st.poisson.sf(hi, cf))]
    rows = []
    for n in range(1, nmax + 1):
        if n > 1:
            new_hi = top_at(n)
            s0, s1, s2 = (s[: hi + 1] for s in tail_sums(new_hi))
            i = np.arange(hi + 1, dtype=np.float64)
            d64 = d.astype(np.float64)
            drop0.append(d64 @ s0)
            drop1.append(d64 @ (i * s1))
            drop2.append(d64 @ (i * i * s2 + cf * cf * s0))
            gamma = (hi + 1) * U_LD / (1 - (hi + 1) * U_LD)
            d = np.einsum("i,ij->j", d, mat[: hi + 1, : new_hi + 1])
            a = a @ mat64[: hi + 1, : new_hi + 1]
            a = (a + (PMF_EPS[: new_hi + 1] + gamma) * d.astype(np.float64)) * SLACK
            hi = new_hi
        j = np.arange(hi + 1, dtype=LD)
        gamma = (hi + 1) * U_LD / (1 - (hi + 1) * U_LD)  # for the sums below
        w2 = (j - c) ** 2  # two roundings
        zero, surv = float(d[0]), float(np.sum(d[1:]))
        m1, m2 = float(np.sum(j * d)), float(np.sum(w2 * d))
        dropped = float(np.sum(drop0))
        dropped_m1 = float(np.sum(drop1))
        weights = 1.0 + n - np.arange(1, n + 1)  # 1 + n - t for the exit at fit t
        dropped_m2 = float(np.sum(drop2) + weights @ np.array(drop1))
        j64, w64 = j.astype(np.float64), w2.astype(np.float64)
        m = float(sample_size)
        rows.append(
            dict(
                zero=zero,
                zero_bound=a[0] + dropped + U64 * zero,
                surv=surv,
                surv_bound=(a[1:].sum() + gamma * surv) * SLACK + dropped + U64 * surv,
                mean=m1 / m,
                mean_bound=((j64 @ a + gamma * m1) * SLACK + dropped_m1) / m + 2 * U64 * m1 / m,
                var=m2 / m**2,
                var_bound=((w64 @ a + (gamma + 3 * U_LD) * m2) * SLACK + dropped_m2) / m**2
                + 2 * U64 * m2 / m**2,
                dropped=dropped,
                dropped_m2=dropped_m2,
            )
        )
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


# (M, lam0): c = M lam0 from 0.3 (absorbed fast: P(S_1 = 0) = 0.74) to 12.5.
CHAIN_CASES = [(1, 0.3), (5, 0.2), (10, 0.3), (5, 2.5)]
NS = np.arange(1, NMAX + 1)


@functools.cache
def chain_table():
    return {case: chain_reference(*case) for case in CHAIN_CASES}


@functools.cache
def mp_g(kmax=12_000):
    """g_1..g_kmax by the recursion in 40-digit mpmath (index 0 unused)."""
    with mpmath.workdps(40):
        g = mpmath.mpf(1)
        out = [math.inf, 1.0]
        for _ in range(kmax - 1):
            g = -mpmath.expm1(-g)
            out.append(float(g))
    return np.array(out)


def test_reference_pmf_error_model():
    """The long-double pmf rows are within the stated (2j + 3) u bound of 40-digit mpmath."""
    mat, _ = transition_matrix()
    rng = np.random.default_rng(0)
    ii = np.concatenate([[0, 1, 2, 50, 700, TOP], rng.integers(0, TOP + 1, 150)])
    jj = np.concatenate([[0, 3, 0, 50, 650, TOP], rng.integers(0, TOP + 1, 150)])
    with mpmath.workdps(40):
        for i, j in zip(ii, jj, strict=True):
            i, j = int(i), int(j)
            if i == 0:
                exact = mpmath.mpf(1 if j == 0 else 0)
            else:
                exact = mpmath.exp(-i) * mpmath.mpf(i) ** j / mpmath.factorial(j)
            got = mpmath.mpf(np.format_float_scientific(mat[i, j], precision=30, unique=False))
            if exact == 0:
                assert got == 0
                continue
            rel = abs(got / exact - 1)
            assert rel <= PMF_EPS[j], (i, j, float(rel), PMF_EPS[j])


def test_truncation_is_negligible():
    """The dropped mass and moments are far below the rounding bounds: the truncation is safe."""
    for case, ref in chain_table().items():
        # relative contributions below 1e-16: negligible next to the rounding bounds (>= 1e-15)
        assert np.all(ref["dropped"] < 1e-16 * np.minimum(ref["surv"], ref["zero"])), case
        assert np.all(ref["dropped_m2"] < 1e-16 * ref["var"] * case[0] ** 2), case


def _case_arrays(case):
    m, lam0 = case
    return NS, m, lam0


def test_zero_and_survival_probability_against_the_count_chain():
    g = mp_g()
    for case, ref in chain_table().items():
        n, m, lam0 = _case_arrays(case)
        x = m * lam0 * g[n]
        zero = np.asarray(poisson.zero_probability(n, m, lam0))
        surv = np.asarray(poisson.survival_probability(n, m, lam0))
        tol_zero = ref["zero_bound"] + zero * closed_form_rtol(np.maximum(1.0, x))
        tol_surv = ref["surv_bound"] + surv * closed_form_rtol(np.maximum(1.0, expm1_cond(-x)))
        assert_within(zero, ref["zero"], tol_zero, f"P(lambda_n = 0) {case}")
        assert_within(surv, ref["surv"], tol_surv, f"P(lambda_n != 0) {case}")
        assert np.max(tol_surv / surv) < 1e-13  # the test is sharp
        # the generation index shifted by one either way is rejected
        for shifted in (g[n + 1], g[np.maximum(n - 1, 1)]):
            wrong = -np.expm1(-m * lam0 * shifted)
            with pytest.raises(AssertionError):
                assert_within(wrong, ref["surv"], tol_surv, "shifted")
            with pytest.raises(AssertionError):
                assert_within(np.exp(-m * lam0 * shifted), ref["zero"], tol_zero, "shifted")


def test_mean_and_variance_against_the_count_chain():
    for case, ref in chain_table().items():
        n, m, lam0 = _case_arrays(case)
        mean = np.asarray(poisson.expected_rate(n, m, lam0))
        var = np.asarray(poisson.rate_variance(n, m, lam0))
        tol_mean = ref["mean_bound"] + mean * closed_form_rtol()
        tol_var = ref["var_bound"] + var * closed_form_rtol()
        assert_within(mean, ref["mean"], tol_mean, f"E[lambda_n] {case}")
        assert_within(var, ref["var"], tol_var, f"Var(lambda_n) {case}")
        assert np.max(tol_var / var) < 1e-13 and np.max(tol_mean / mean) < 1e-13
        # wrong formulas: the generation index shifted (Var(lambda_n) = (n -+ 1) lam0 / M),
        # or a relative change of 1e-12
        for wrong in ((n + 1) * lam0 / m, (n - 1) * lam0 / m, var * (1 + 1e-12)):
            with pytest.raises(AssertionError):
                assert_within(wrong, ref["var"], tol_var, "wrong variance")
        with pytest.raises(AssertionError):
            assert_within(mean * (1 + 1e-12), ref["mean"], tol_mean, "wrong mean")


def test_generation_zero_and_one():
    """n = 0 is the real distribution; n = 1 is the mean of M real draws."""
    m, lam0 = np.array([1, 3, 10]), np.array([0.0, 0.7, 2.0])
    assert poisson.survival_probability(0, m, lam0).tolist() == [0.0, 1.0, 1.0]
    assert poisson.zero_probability(0, m, lam0).tolist() == [1.0, 0.0, 0.0]
    assert poisson.survival_asymptote(0, m, lam0).tolist() == [0.0, 1.0, 1.0]
    assert poisson.rate_variance(0, m, lam0).tolist() == [0.0, 0.0, 0.0]
    assert poisson.expected_rate(0, m, lam0).tolist() == lam0.tolist()
    # fit 1: all M real draws are 0 with probability exp(-M lam0)
    want = np.exp(-m * lam0)
    assert_within(poisson.zero_probability(1, m, lam0), want, want * closed_form_rtol(), "n=1")
    want = -np.expm1(-m * lam0)
    assert_within(poisson.survival_probability(1, m, lam0), want, want * closed_form_rtol(), "n=1")
    want = lam0 / m  # Var of a mean of M Poisson(lam0)
    assert_within(poisson.rate_variance(1, m, lam0), want, want * closed_form_rtol(), "n=1")
    # lam0 = 0 stays at 0
    assert poisson.zero_probability([1, 5, 10**9], 4, 0.0).tolist() == [1.0, 1.0, 1.0]


# ---------------------------------------------------------------------------
# g_k.
# ---------------------------------------------------------------------------


def test_suresh_g_against_mpmath_recursion():
    """Table (k <= 4096) and series (k > 4096) against the 40-digit recursion."""
    ref = mp_g()
    k = np.arange(1, ref.size)
    got = np.asarray(poisson.suresh_g(k))
    tol = ref[k] * closed_form_rtol() + 1e-30  # reference: 40 digits, rounded once
    assert_within(got, ref[k], tol, "g_k")
    assert got[0] == 1.0
    # float and int k, any shape, traced k
    pick = np.array([[3, 1], [5000, 2]])
    np.testing.assert_array_equal(poisson.suresh_g(pick.astype(float)), got[pick - 1])
    np.testing.assert_array_equal(jax.jit(poisson.suresh_g)(jnp.array([5, 9000])), got[[4, 8999]])
    # wrong: Kolmogorov's estimate refined by the constant only (no 1/k terms) is rejected
    big = k > 4096
    c = 0.39912407711569383
    crude = 1.0 / (k / 2 + np.log(k) / 6 + c)
    with pytest.raises(AssertionError):
        assert_within(crude[big], ref[k][big], tol[big], "crude series")


def _recursion_gap(gfun, start, steps=500):
    """(gfun(start + steps), 40-digit recursion run for ``steps`` steps from gfun(start))."""
    with mpmath.workdps(40):
        g = mpmath.mpf(float(gfun(start)))
        for _ in range(steps):
            g = -mpmath.expm1(-g)
        return float(gfun(start + steps)), float(g)


@pytest.mark.parametrize("start", [10**5, 10**8, 10**12, 10**15])
def test_suresh_g_series_obeys_the_recursion_at_large_k(start):
    """g_{k+500} from the module = 500 steps of the 40-digit recursion from the module's g_k.

    The map contracts relative errors (d log g(x) / d log x = x / (e^x - 1) < 1), so
    the start's error (<= 32 u) reaches the end shrunk, and the end has its own:
    tolerance 2 x 32 u. A series with a wrong k-dependence breaks the identity: dropping
    the ln(k)/6 term moves the end by about 1000 / (6 k^2) relative, which this
    tolerance detects up to k = 1e8 (beyond, any smooth y_k = k/2 + o(k^0.5) passes:
    there the mpmath comparison to k = 12000 and the bounds carry the test).
    """
    got, want = _recursion_gap(poisson.suresh_g, start)
    tol = 2 * want * closed_form_rtol()
    assert_within(got, want, tol, f"g at {start}")
    if start <= 10**8:
        got, want = _recursion_gap(lambda k: 1.0 / (0.5 * k + 0.3991240771156938), start)
        with pytest.raises(AssertionError):
            assert_within(got, want, tol, "series without ln(k)/6")


def test_suresh_g_bounds():
    """1/k <= g_k <= 2/k <= 3/k (THEORY.md D5 quotes [1/k, 3/k]), and k g_k -> 2."""
    k = np.concatenate([np.arange(1, 200_001), [10**7, 10**10, 10**15, 2.0**52]])
    g = np.asarray(poisson.suresh_g(k))
    assert np.all(g >= 1 / k) and np.all(g <= 2 / k) and np.all(g <= 3 / k)
    assert np.all(np.diff(g) < 0)
    # k g_k / 2 = 1 - (ln k / 3 + 2C) / k + ...: 2.9e-15 below 1 at k = 2^52
    last = k[-1] * g[-1] / 2
    assert 1 - (np.log(k[-1]) / 3 + 1) / k[-1] - 4 * U64 <= last <= 1


def test_survival_asymptote():
    """Upper bound for every n >= 1; exponent too large by 2/(n g_n) = 1 + (ln n / 3 + 2C)/n + ...

    The next term of 2/(n g_n) is (ln n / 9 + 2C/3 - 1/18)/n^2 (from the series of
    1/g_n), below ln(n)/n^2 for n >= 10; the remainder after it is O(ln^2 n / n^3).
    """
    n = np.concatenate([np.arange(1, 2001), [10**4, 10**5, 10**7]])
    m, lam0 = 10, np.array([0.01, 1.0, 30.0])[:, None]
    asym = np.asarray(poisson.survival_asymptote(n, m, lam0))
    exact = np.asarray(poisson.survival_probability(n, m, lam0))
    assert np.all(asym >= exact)
    ratio = 2 / (n * np.asarray(poisson.suresh_g(n)))
    c = 0.39912407711569383
    big = n >= 10
    first = (np.log(n) / 3 + 2 * c) / n
    assert np.all(np.abs(ratio - 1 - first)[big] <= (np.log(n) / n**2)[big])
    # small survival (y = exact exponent = 2e-8 here): (1 - e^{-a y}) / (1 - e^{-y})
    # = a (1 - (a - 1) y / 2 + O(y^2)) with a = ratio
    y = m * 0.01 * float(poisson.suresh_g(n[-1]))
    a = ratio[-1]
    assert_within(asym[0, -1] / exact[0, -1], a, a * (a - 1) * y + 4 * closed_form_rtol(), "a")


# ---------------------------------------------------------------------------
# Differentiation, tracing, broadcasting.
# ---------------------------------------------------------------------------


def test_grad_of_survival_in_lam0():
    g = mp_g()
    n = np.array([1, 2, 7, 50, 3000, 9000])
    m, lam0 = 4, np.array([0.0, 0.05, 1.3, 20.0])
    grad = jax.vmap(
        jax.vmap(jax.grad(poisson.survival_probability, argnums=2), (None, None, 0)),
        (0, None, None),
    )(jnp.asarray(n), m, jnp.asarray(lam0))
    x = m * lam0[None, :] * g[n][:, None]
    want = m * g[n][:, None] * np.exp(-x)
    assert_within(grad, want, want * closed_form_rtol(np.maximum(1.0, x)), "d survival / d lam0")
    # jit with every argument traced; n = 0 has derivative 0
    f = jax.jit(jax.grad(poisson.survival_probability, argnums=2))
    assert float(f(0, 3, 0.4)) == 0.0
    want_one = 3 * g[7] * math.exp(-1.2 * g[7])
    assert_within(f(7, 3, 0.4), want_one, want_one * closed_form_rtol(2.0), "jit")
    # the zero probability is its complement
    dz = jax.grad(poisson.zero_probability, argnums=2)(7, 3, 0.4)
    assert_within(-dz, want_one, want_one * closed_form_rtol(2.0), "d zero / d lam0")


def test_broadcasting_and_dtype():
    n = np.arange(4)[:, None, None]
    m = np.array([1, 10])[None, :, None]
    lam0 = np.array([0.5, 1.0, 2.0])[None, None, :]
    for fun in (
        poisson.expected_rate,
        poisson.rate_variance,
        poisson.zero_probability,
        poisson.survival_probability,
        poisson.survival_asymptote,
    ):
        out = fun(n, m, lam0)
        assert out.shape == (4, 2, 3) and out.dtype == jnp.float64, fun.__name__
        assert jax.jit(fun)(n, m, lam0).shape == (4, 2, 3)
    assert poisson.suresh_g(np.array([], dtype=int)).shape == (0,)


def test_docstring_examples_run():
    result = doctest.testmod(poisson, verbose=False)
    assert result.attempted >= 6 and result.failed == 0


# ---------------------------------------------------------------------------
# Input validation.
# ---------------------------------------------------------------------------

BAD_INPUTS = [
    (poisson.expected_rate, (-1, 10, 1.0), "n", "-1"),
    (poisson.rate_variance, (1.5, 10, 1.0), "n", "1.5"),
    (poisson.zero_probability, ([1, -3], 10, 1.0), "n", "-3"),
    (poisson.survival_asymptote, (np.nan, 10, 1.0), "n", "nan"),
    (poisson.zero_probability, (2, 0, 1.0), "sample_size", "0"),
    (poisson.survival_probability, (2, 2.5, 1.0), "sample_size", "2.5"),
    (poisson.survival_probability, (2, 10, -0.5), "lam0", "-0.5"),
    (poisson.survival_probability, (2, 10, np.inf), "lam0", "inf"),
    (poisson.rate_variance, (2, 10, np.nan), "lam0", "nan"),
    (poisson.expected_rate, (2, 10, "x"), "lam0", "'x'"),
    (poisson.suresh_g, (0,), "k", "0"),
    (poisson.suresh_g, (2.5,), "k", "2.5"),
]


@pytest.mark.parametrize("fun,args,name,value", BAD_INPUTS)
def test_bad_inputs_raise(fun, args, name, value):
    with pytest.raises(ValueError, match=rf"^{name} must .*; got {re.escape(value)}$"):
        fun(*args)


def test_traced_inputs_are_not_checked():
    # inside jit the checks are skipped (no error on tracers); values pass through
    out = jax.jit(poisson.survival_probability)(jnp.array(3.0), jnp.array(5.0), jnp.array(0.2))
    want = -math.expm1(-1.0 * float(mp_g()[3]))
    assert_within(out, want, want * closed_form_rtol(), "jit")
