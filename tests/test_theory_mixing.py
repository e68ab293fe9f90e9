"""Exact tests of theory.mixing against independent computations.

References used here (none of them shares code with the module):
* the one-step conditional moment recursions of each model, propagated step
  by step in rational arithmetic (fractions.Fraction); for a binomial count
  the moments of R are summed from the binomial pmf;
* THEORY.md F1 as printed, iterated in floating point, and fixed points found
  by iterating the recursions to convergence;
* the joint second moments of (mu_t, real-set mean) propagated exactly for the
  anchored model; Euler's sine product; scipy.special (gammaln, polygamma)
  for the schedule and harmonic-type sums; theory.gaussian for the
  constant-schedule and alpha = 0 limits;
* small NumPy Monte Carlo runs of the literal sampling models (fixed seeds,
  Bonferroni z-tests at tests/stats.FALSE_FAILURE_RATE per test function)
  for the one-step moment derivations, which have no exact independent
  check.

The statistical tests against the simulator live elsewhere.
"""

import jax

jax.config.update("jax_enable_x64", True)

import math  # noqa: E402
import re  # noqa: E402
from fractions import Fraction as F  # noqa: E402

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import special as sps  # noqa: E402

from tests.stats import assert_agree, assert_rejects  # noqa: E402
from theory import gaussian, mixing  # noqa: E402

# ---------------------------------------------------------------------------
# Independent references.
# ---------------------------------------------------------------------------


def count_moments(m, alpha, kind):
    """E[R], E[S], E[S^2], E[RS] for R real samples out of m (exact Fractions)."""
    if kind == "fixed":
        r = alpha * m
        assert r.denominator == 1
        s = m - r
        return r, s, s * s, r * s
    pmf = [math.comb(m, r) * alpha**r * (1 - alpha) ** (m - r) for r in range(m + 1)]
    er = sum(p * r for r, p in enumerate(pmf))
    es = sum(p * (m - r) for r, p in enumerate(pmf))
    es2 = sum(p * (m - r) ** 2 for r, p in enumerate(pmf))
    ers = sum(p * r * (m - r) for r, p in enumerate(pmf))
    return er, es, es2, ers


def fresh_recursion(n, m, alpha, estimator, kind):
    """[(E_t, v_t)] for t = 0..n: E[mu'^2] = (ER + ES E + ES2 v)/M^2 and
    E[SS] = (M-1)/M (ER + ES E) + ERS v / M, divided by c."""
    er, es, es2, ers = count_moments(m, alpha, kind)
    c = m if estimator == "mle" else m - 1
    e, v = F(1), F(0)
    out = [(e, v)]
    for _ in range(n):
        ss = F(m - 1, m) * (er + es * e) + ers * v / m
        e, v = ss / c, (er + es * e + es2 * v) / (m * m)
        out.append((e, v))
    return out


def accumulate_recursion(n, m, estimator):
    """[(E sigma_t^2, Var mu_t)] by propagating E[SS_t] (not the product formula)."""
    out = [(F(1), F(0))]
    ss = F(m - 1)  # E[SS_1] of M real samples
    var_mu = F(1, m)
    for t in range(1, n + 1):
        c = t * m if estimator == "mle" else t * m - 1
        e = ss / c
        out.append((e, var_mu))
        # next batch: E[W] = (M-1) e, between term (tM/(t+1)) e/M
        ss = ss + (m - 1) * e + F(t, t + 1) * e
        var_mu = var_mu + e / (m * (t + 1) ** 2)
    return out


def anchored_recursion(n, m, lam, xbar=None):
    """Var(mu_t) (unconditional) or (E, Var)(mu_t | xbar), sigma0 = 1, mu0 = 0, exact."""
    s = lam * m
    r = m - s
    assert s.denominator == 1
    if xbar is not None:
        mean, var = F(0), F(0)
        out = [(mean, var)]
        for _ in range(n):
            mean = (1 - lam) * xbar + lam * mean
            var = lam * lam * var + (lam * lam / s if s else 0)
            out.append((mean, var))
        return out
    # a = mu_t - mu0, b = xbar - mu0 with E[b^2] = 1/R; track E a^2 and E ab.
    eb2 = F(1, r) if r else F(0)
    ea2, eab = F(0), F(0)
    out = [ea2]
    for _ in range(n):
        noise = lam * lam / s if s else 0
        ea2, eab = (
            (1 - lam) ** 2 * eb2 + 2 * lam * (1 - lam) * eab + lam * lam * ea2 + noise,
            (1 - lam) * eb2 + lam * eab,
        )
        out.append(ea2)
    return out


def f1_catalogue(n, m, alpha):
    """THEORY.md F1 exactly as printed (MLE): list of (E_t, v_t)."""
    c = (m - 1) / m
    e, v = 1.0, 0.0
    out = [(e, v)]
    for _ in range(n):
        e, v = (
            alpha * c + (1 - alpha) * c * e + alpha * (1 - alpha) * v,
            alpha / m + (1 - alpha) * e / m + (1 - alpha) ** 2 * v,
        )
        out.append((e, v))
    return out


def f(x):
    return float(x)


# ---------------------------------------------------------------------------
# F1: fresh real data.
# ---------------------------------------------------------------------------

FRESH_CASES = [
    ("fixed", 5, F(2, 5)),
    ("fixed", 4, F(1, 4)),
    ("fixed", 3, F(2, 3)),  # S = 1: q = 0
    ("fixed", 6, F(0)),
    ("fixed", 6, F(1)),
    ("fixed", 2, F(1, 2)),
    ("binomial", 5, F(3, 10)),
    ("binomial", 4, F(0)),
    ("binomial", 4, F(1)),
    ("binomial", 3, F(1, 7)),
]


@pytest.mark.unit
@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
@pytest.mark.parametrize("kind,m,alpha", FRESH_CASES)
def test_fresh_fraction_against_rational_recursion(estimator, kind, m, alpha):
    n_max = 9
    ref = fresh_recursion(n_max, m, alpha, estimator, kind)
    ns = np.arange(n_max + 1)
    res = mixing.fresh_fraction_variance(ns, m, float(alpha), estimator, 1.7, mixing=kind)
    np.testing.assert_allclose(res.expected_variance, [1.7**2 * f(e) for e, _ in ref], rtol=1e-13)
    np.testing.assert_allclose(
        res.mean_variance, [1.7**2 * f(v) for _, v in ref], rtol=1e-13, atol=1e-300
    )


@pytest.mark.unit
def test_f1_catalogue_formula_verified():
    for m, alpha in [(5, 0.4), (10, 0.3), (20, 0.05), (3, 1.0)]:
        ref = f1_catalogue(12, m, alpha)
        res = mixing.fresh_fraction_variance(np.arange(13), m, alpha)
        np.testing.assert_allclose(res.expected_variance, [e for e, _ in ref], rtol=1e-13)
        np.testing.assert_allclose(res.mean_variance, [v for _, v in ref], rtol=1e-13)
        d = 1 - alpha + alpha * m * (2 - alpha)
        fp = mixing.fresh_fraction_fixed_point(m, alpha)
        np.testing.assert_allclose(fp, [1 - 1 / d, 1 / d], rtol=1e-14)


def iterate_to_fixed_point(m, alpha, estimator, kind, steps=20000):
    er, es, es2, ers = (float(x) for x in count_moments(m, F(alpha).limit_denominator(1000), kind))
    c = m if estimator == "mle" else m - 1
    e, v = 1.0, 0.0
    for _ in range(steps):
        e, v = ((m - 1) / m * (er + es * e) + ers * v / m) / c, (er + es * e + es2 * v) / m**2
    return e, v


@pytest.mark.unit
@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
@pytest.mark.parametrize(
    "kind,m,alpha",
    [("fixed", 5, 0.4), ("fixed", 10, 0.1), ("fixed", 4, 1.0), ("binomial", 10, 0.3)],
)
def test_fixed_point_by_iteration(estimator, kind, m, alpha):
    e, v = iterate_to_fixed_point(m, alpha, estimator, kind)
    fp = mixing.fresh_fraction_fixed_point(m, alpha, estimator, 2.0, mixing=kind)
    np.testing.assert_allclose(fp, [4 * e, 4 * v], rtol=1e-12)
    far = mixing.fresh_fraction_variance(10**6, m, alpha, estimator, 2.0, mixing=kind)
    np.testing.assert_allclose(far, fp, rtol=1e-12)


@pytest.mark.unit
def test_fixed_point_closed_forms_and_divergence():
    # unbiased, fixed count: v = (M-1)/(M(M-1) - S^2), E = 1 + S v/(M-1)
    m, s = 10, 8
    fp = mixing.fresh_fraction_fixed_point(m, 0.2, "unbiased")
    v = (m - 1) / (m * (m - 1) - s * s)
    np.testing.assert_allclose(fp, [1 + s * v / (m - 1), v], rtol=1e-14)
    assert float(fp.expected_variance) > 1.0  # settles above sigma0^2
    # binomial: v = 1/(M a (2-a) - (1-a)); no fixed point when that is <= 0
    fp = mixing.fresh_fraction_fixed_point(10, 0.3, "unbiased", mixing="binomial")
    v = 1 / (10 * 0.3 * 1.7 - 0.7)
    np.testing.assert_allclose(fp, [1 + 0.7 * v, v], rtol=1e-14)
    dead = mixing.fresh_fraction_fixed_point(10, 0.04, "unbiased", mixing="binomial")
    assert np.isinf(dead.expected_variance) and np.isinf(dead.mean_variance)
    e, v = iterate_to_fixed_point(10, 0.04, "unbiased", "binomial", steps=3000)
    assert e > 50 and v > 50  # the recursion indeed diverges
    # alpha = 0, unbiased: martingale variance, mean variance without bound
    fp = mixing.fresh_fraction_fixed_point(10, 0.0, "unbiased")
    assert float(fp.expected_variance) == 1.0 and np.isinf(fp.mean_variance)
    # MLE, binomial: D = 1 + (M-1) a (2-a)
    fp = mixing.fresh_fraction_fixed_point(10, 0.3, mixing="binomial")
    d = 1 + 9 * 0.3 * 1.7
    np.testing.assert_allclose(fp, [1 - 1 / d, 1 / d], rtol=1e-14)


@pytest.mark.unit
def test_fresh_fraction_limits_and_conservation():
    ns = np.arange(0, 40, 3)
    for est in ("mle", "unbiased"):
        res = mixing.fresh_fraction_variance(ns, 12, 0.0, est, 0.5)
        np.testing.assert_allclose(
            res.expected_variance, gaussian.expected_variance(ns, 12, est, 0.5), rtol=1e-13
        )
        np.testing.assert_allclose(
            res.mean_variance, gaussian.mean_variance(ns, 12, est, 0.5), rtol=1e-13
        )
    # alpha = 1: every fit sees real data only
    res = mixing.fresh_fraction_variance(np.arange(1, 5), 8, 1.0, "unbiased")
    np.testing.assert_allclose(res, [np.ones(4), np.full(4, 1 / 8)], rtol=1e-14)
    # MLE conserves E + v = sigma0^2 (both count models)
    rng = np.random.default_rng(0)
    m = rng.integers(2, 50, 40)
    alpha = rng.integers(0, m + 1) / m
    n = rng.integers(0, 200, 40)
    for kind in ("fixed", "binomial"):
        res = mixing.fresh_fraction_variance(n, m, alpha, "mle", 3.0, mixing=kind)
        np.testing.assert_allclose(res.expected_variance + res.mean_variance, 9.0, rtol=1e-13)


@pytest.mark.unit
def test_fresh_fraction_tracing_dtypes_and_large_n():
    jitted = jax.jit(lambda n, a: mixing.fresh_fraction_variance(n, 10, a, "unbiased"))
    eager = mixing.fresh_fraction_variance(37, 10, 0.3, "unbiased")
    np.testing.assert_allclose(jitted(37.0, 0.3), eager, rtol=1e-14)
    vm = jax.vmap(lambda n: mixing.fresh_fraction_variance(n, 10, 0.3).mean_variance)
    np.testing.assert_allclose(
        vm(jnp.arange(5.0)),
        [f(v) for _, v in fresh_recursion(4, 10, F(3, 10), "mle", "fixed")],
        rtol=1e-13,
    )
    res32 = mixing.fresh_fraction_variance(jnp.float32(20), 10, jnp.float32(0.3), "unbiased")
    assert res32.expected_variance.dtype == jnp.float32
    np.testing.assert_allclose(
        res32, mixing.fresh_fraction_variance(20, 10, 0.3, "unbiased"), rtol=2e-6
    )
    # MLE at alpha = 0 and huge n: relative accuracy of a tiny E (no 1 - v cancellation)
    res = mixing.fresh_fraction_variance(5000, 10, 0.0)
    np.testing.assert_allclose(res.expected_variance, 0.9**5000, rtol=1e-12)


def simulate_fresh(rng, chains, n, m, alpha, estimator, kind):
    """Literal model: per fit, R real + (M-R) samples from the previous fit."""
    mu = np.zeros(chains)
    sd = np.ones(chains)
    ddof = 0 if estimator == "mle" else 1
    e_hist, v_hist = [], []
    for _ in range(n):
        if kind == "fixed":
            r = np.full(chains, round(alpha * m))
        else:
            r = rng.binomial(m, alpha, chains)
        real = rng.standard_normal((chains, m))
        syn = mu[:, None] + sd[:, None] * rng.standard_normal((chains, m))
        x = np.where(np.arange(m)[None, :] < r[:, None], real, syn)
        mu = x.mean(axis=1)
        var = x.var(axis=1, ddof=ddof)
        sd = np.sqrt(var)
        e_hist.append(var)
        v_hist.append(mu * mu)
    return e_hist, v_hist


@pytest.mark.statistical
def test_fresh_fraction_monte_carlo():
    """The one-step moment derivation (no exact independent check): 2e5 chains per case."""
    rng = np.random.default_rng(20240601)
    chains, n = 200_000, 4
    emp, se, th, wrong = [], [], [], []
    for kind, alpha in (("fixed", 0.4), ("binomial", 0.3)):
        for est in ("mle", "unbiased"):
            e_hist, v_hist = simulate_fresh(rng, chains, n, 5, alpha, est, kind)
            res = mixing.fresh_fraction_variance(np.arange(1, n + 1), 5, alpha, est, mixing=kind)
            f1 = f1_catalogue(n, 5, alpha)[1:]  # F1 as printed, alpha as a plain fraction
            for t in range(n):
                for j, hist in enumerate((e_hist, v_hist)):
                    x = hist[t]
                    emp.append(x.mean())
                    se.append(x.std() / np.sqrt(chains))
                    th.append(float(res[j][t]))
                    use = kind == "binomial" and est == "mle"
                    wrong.append(f1[t][j] if use else np.nan)
    assert_agree(emp, se, th, "fresh-fraction moments")
    # F1 read with alpha as an expected fraction is measurably wrong for binomial counts.
    mask = ~np.isnan(wrong)
    assert_rejects(
        np.array(emp)[mask],
        np.array(se)[mask],
        np.array(wrong)[mask],
        "F1 on binomial counts",
    )


# ---------------------------------------------------------------------------
# L3 and accumulation with both parameters refitted.
# ---------------------------------------------------------------------------


@pytest.mark.unit
def test_accumulate_mean_variance_exact():
    ns = [0, 1, 2, 3, 15, 16, 17, 18, 40, 100]
    ref = [f(sum((F(1, i * i) for i in range(1, n + 1)), F(0))) for n in ns]
    np.testing.assert_allclose(mixing.accumulate_mean_variance(ns, 1), ref, rtol=1e-15)
    np.testing.assert_allclose(
        mixing.accumulate_mean_variance(ns, 7, 2.0), [4 * r / 7 for r in ref], rtol=1e-15
    )
    big = np.array([1e3, 1e5, 1e8, 1e12])
    ref_big = np.pi**2 / 6 - sps.polygamma(1, big + 1)
    np.testing.assert_allclose(mixing.accumulate_mean_variance(big, 1), ref_big, rtol=1e-15)
    jitted = jax.jit(mixing.accumulate_mean_variance)
    np.testing.assert_allclose(jitted(17.0, 3.0), ref[6] / 3, rtol=1e-15)


@pytest.mark.unit
@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
@pytest.mark.parametrize("m", [2, 3, 7])
def test_accumulate_moments_against_rational_recursion(estimator, m):
    n_max = 8
    ref = accumulate_recursion(n_max, m, estimator)
    res = mixing.accumulate_moments(np.arange(n_max + 1), m, estimator, 0.5)
    np.testing.assert_allclose(res.expected_variance, [0.25 * f(e) for e, _ in ref], rtol=1e-14)
    np.testing.assert_allclose(res.mean_variance, [0.25 * f(v) for _, v in ref], rtol=1e-14)


@pytest.mark.unit
def test_accumulate_moments_limits():
    m = np.array([4, 10, 100])
    res = mixing.accumulate_moments(200_000, m)
    z = 1 / np.sqrt(m)
    limit = np.sin(np.pi * z) / (np.pi * z)  # Euler's product
    # e_n / e_inf = prod_{i > n} (1 - 1/(M i^2))^-1 = 1 + 1/(M n) + O(n^-2)
    np.testing.assert_allclose(res.expected_variance, limit * (1 + 1 / (m * 200_000)), rtol=1e-10)
    np.testing.assert_allclose(res.expected_variance + res.mean_variance, 1.0, rtol=1e-14)
    unb = mixing.accumulate_moments(200_000, m, "unbiased")
    assert np.all(unb.expected_variance < 1) and np.all(unb.expected_variance > 0.9 * limit)
    assert np.all(unb.mean_variance < np.pi**2 / 6 / m)
    # batches and shapes
    res = mixing.accumulate_moments(np.array([[0], [3]]), np.array([2, 5, 9]))
    assert res.expected_variance.shape == (2, 3)
    np.testing.assert_allclose(res.expected_variance[0], 1.0)


@pytest.mark.statistical
def test_accumulate_moments_monte_carlo():
    """The pooled-SS recursion (no exact independent check): 1e5 chains, M = 4."""
    rng = np.random.default_rng(777)
    chains, m, n = 100_000, 4, 4
    emp, se, th = [], [], []
    for est in ("mle", "unbiased"):
        count = np.zeros(chains)
        s1 = np.zeros(chains)
        s2 = np.zeros(chains)
        mu, sd = np.zeros(chains), np.ones(chains)
        res = mixing.accumulate_moments(np.arange(1, n + 1), m, est)
        for t in range(n):
            x = mu[:, None] + sd[:, None] * rng.standard_normal((chains, m))
            count += m
            s1 += x.sum(axis=1)
            s2 += (x * x).sum(axis=1)
            mu = s1 / count
            ss = s2 - count * mu * mu
            var = ss / (count if est == "mle" else count - 1)
            sd = np.sqrt(np.maximum(var, 0))
            for arr, theory in ((var, res[0][t]), (mu * mu, res[1][t])):
                emp.append(arr.mean())
                se.append(arr.std() / np.sqrt(chains))
                th.append(float(theory))
    assert_agree(emp, se, th, "accumulate moments")


# ---------------------------------------------------------------------------
# F3: anchored by a fixed real set.
# ---------------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("m,lam", [(4, F(1, 2)), (5, F(3, 5)), (6, F(1, 6)), (3, F(0)), (7, F(1))])
def test_anchored_against_exact_propagation(m, lam):
    n_max = 10
    ns = np.arange(n_max + 1)
    res = mixing.anchored_mean(ns, m, float(lam), 1.5, 0.0)
    ref = anchored_recursion(n_max, m, lam)
    np.testing.assert_allclose(res.variance, [2.25 * f(v) for v in ref], rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(res.mean, 0.0)
    xbar = F(-3, 4)
    cond = mixing.anchored_mean(ns, m, float(lam), 1.5, 0.0, real_mean=float(xbar))
    ref = anchored_recursion(n_max, m, lam, xbar)
    np.testing.assert_allclose(cond.mean, [f(a) for a, _ in ref], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(cond.variance, [2.25 * f(b) for _, b in ref], rtol=1e-13)


@pytest.mark.unit
def test_anchored_limits():
    r, s = 3, 5
    res = mixing.anchored_mean(10**7, r + s, s / (r + s), 2.0, 1.0)
    np.testing.assert_allclose(res.variance, 4.0 / r * (r + 3 * s) / (r + 2 * s), rtol=1e-13)
    np.testing.assert_allclose(res.mean, 1.0)
    # lam = 1: the replace chain with known sigma; lam = 0: the real-set mean
    np.testing.assert_allclose(
        mixing.anchored_mean(np.arange(6), 4, 1.0).variance, np.arange(6) / 4, rtol=1e-15
    )
    np.testing.assert_allclose(mixing.anchored_mean(np.arange(1, 6), 4, 0.0).variance, 0.25)
    # near lam = 1 the geometric sums do not cancel
    lam = 1 - 1 / 2**20
    res = mixing.anchored_mean(3, 2**20, lam)
    ref = anchored_recursion(3, 2**20, F(2**20 - 1, 2**20))
    np.testing.assert_allclose(res.variance, f(ref[3]), rtol=1e-12)
    jitted = jax.jit(lambda n, l: mixing.anchored_mean(n, 10, l).variance)
    np.testing.assert_allclose(
        jitted(4.0, 0.3), mixing.anchored_mean(4, 10, 0.3).variance, rtol=1e-15
    )


@pytest.mark.statistical
def test_anchored_monte_carlo():
    """The AR(1) model itself, simulated literally: R = 3 real points, S = 3 synthetic."""
    rng = np.random.default_rng(99)
    chains, r, s, n = 200_000, 3, 3, 4
    real = rng.standard_normal((chains, r))
    mu = np.zeros(chains)
    emp, se, th = [], [], []
    res = mixing.anchored_mean(np.arange(1, n + 1), r + s, s / (r + s))
    for t in range(n):
        syn = mu[:, None] + rng.standard_normal((chains, s))
        mu = np.concatenate([real, syn], axis=1).mean(axis=1)
        emp.append(np.mean(mu * mu))
        se.append(np.std(mu * mu) / np.sqrt(chains))
        th.append(float(res.variance[t]))
    assert_agree(emp, se, th, "anchored Var(mu_n)")


# ---------------------------------------------------------------------------
# G6 with a schedule.
# ---------------------------------------------------------------------------


def schedule_reference(n, ms, estimator):
    """Var(mu_n) (Fractions) + E sigma^2 - 2 E sigma + 1 with scipy gammaln."""
    var_mu, prod_r = F(0), F(1)
    log_es = 0.0
    for mt in ms[:n]:
        c = mt if estimator == "mle" else mt - 1
        var_mu += prod_r / mt
        prod_r *= F(mt - 1, c)
        log_es += 0.5 * math.log(2 / c) + sps.gammaln(mt / 2) - sps.gammaln((mt - 1) / 2)
    return f(var_mu), f(prod_r) - 2 * math.exp(log_es) + 1


@pytest.mark.costly
@pytest.mark.unit
@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
def test_schedule_w2_against_direct_computation(estimator):
    ms = [2, 3, 5, 4, 30, 7, 1000, 2]
    ns = np.arange(len(ms) + 1)
    res = mixing.schedule_w2(ns, np.array(ms), estimator, 1.3)
    for n in ns:
        mean_ref, std_ref = schedule_reference(n, ms, estimator)
        np.testing.assert_allclose(res.mean_part[n], 1.69 * mean_ref, rtol=1e-13, atol=1e-300)
        np.testing.assert_allclose(res.std_part[n], 1.69 * std_ref, rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(res.total, res.mean_part + res.std_part, rtol=1e-15)
    # constant schedule = theory.gaussian.expected_w2_squared
    const = mixing.schedule_w2(ns, np.full(len(ms), 9), estimator, 1.3).total
    np.testing.assert_allclose(
        const, gaussian.expected_w2_squared(ns, 9, estimator, 1.3), rtol=1e-13
    )
    # batch axes, tracing
    batch = mixing.schedule_w2(np.array([[2], [5]]), np.array([ms, ms[::-1]]), estimator)
    assert batch.total.shape == (2, 2)
    jitted = jax.jit(lambda n, s: mixing.schedule_w2(n, s, estimator).total)
    np.testing.assert_allclose(
        jitted(5, jnp.asarray(ms, float)), mixing.schedule_w2(5, ms, estimator).total, rtol=1e-14
    )


@pytest.mark.unit
def test_schedule_boundedness():
    """sum 1/M_t < inf (p > 1) keeps E[W2^2] bounded; p = 1 grows like ln(n)/M0."""
    for p, bounded in ((2.0, True), (1.0, False)):
        sched = mixing.power_schedule(8000, 10, p)
        res = mixing.schedule_w2(np.array([2000, 4000, 8000]), sched, "unbiased")
        growth = np.diff(np.asarray(res.total))
        if bounded:
            assert np.all(growth < 1e-3)
        else:
            # mean part: sum 1/M_t gains ln(2)/M0 per doubling; std part 2(1 - A_n) -> 2
            np.testing.assert_allclose(np.diff(res.mean_part), np.log(2) / 10, rtol=0.01)
            assert np.all(growth > np.log(2) / 10) and np.all(res.std_part < 2)
    # MLE: the mean part telescopes to 1 - prod (1 - 1/M_t)
    sched = np.array([3, 5, 8, 13])
    res = mixing.schedule_w2(4, sched, "mle")
    np.testing.assert_allclose(res.mean_part, 1 - np.prod(1 - 1 / sched), rtol=1e-14)


@pytest.mark.unit
def test_power_schedule():
    np.testing.assert_array_equal(mixing.power_schedule(5, 10, 2), [10, 40, 90, 160, 250])
    np.testing.assert_array_equal(mixing.power_schedule(4, 2.5, 1), [3, 5, 8, 10])
    np.testing.assert_array_equal(mixing.power_schedule(3, 7, 0), [7, 7, 7])
    # ceil(1.1 t) for t = 1..50 against exact rationals: the float product
    # lies above the integer for some t (1.1 * 50 = 55.00000000000001), where
    # a plain ceil would round up; the schedule must not.
    t = np.arange(1, 51)
    exact = [math.ceil(F("1.1") * int(i)) for i in t]
    hazards = [i for i in t if (F("1.1") * int(i)).denominator == 1 and F(1.1 * i) > F("1.1") * i]
    assert 50 in hazards  # the case exercises the rounding: a plain ceil fails it
    np.testing.assert_array_equal(mixing.power_schedule(50, 1.1, 1.0), exact)
    assert mixing.power_schedule(0, 2, 1).shape == (0,)
    assert mixing.power_schedule(3, np.array([2.0, 3.0]), 1.0).shape == (2, 3)


# ---------------------------------------------------------------------------
# Validation.
# ---------------------------------------------------------------------------

BAD_INPUTS = [
    (mixing.fresh_fraction_variance, (3, 10, 0.15), {}, "alpha", "0.15"),
    (mixing.fresh_fraction_variance, (3, 10, 1.2), {}, "alpha", "1.2"),
    (mixing.fresh_fraction_variance, (3, 10, -0.1), {"mixing": "binomial"}, "alpha", "-0.1"),
    (mixing.fresh_fraction_variance, (3, 10.5, 0.5), {}, "sample_size", "10.5"),
    (mixing.fresh_fraction_variance, (3, 1, 0.0), {}, "sample_size", "1"),
    (mixing.fresh_fraction_variance, (-1, 10, 0.5), {}, "n", "-1"),
    (mixing.fresh_fraction_variance, (1, 10, 0.5), {"estimator": "ml"}, "estimator", "'ml'"),
    (mixing.fresh_fraction_variance, (1, 10, 0.5), {"mixing": "random"}, "mixing", "'random'"),
    (mixing.fresh_fraction_variance, (1, 10, 0.5), {"sigma0": 0.0}, "sigma0", "0.0"),
    (mixing.fresh_fraction_fixed_point, (7, 0.5), {}, "alpha", "0.5"),
    (mixing.fresh_fraction_fixed_point, (0, 0.5), {}, "sample_size", "0"),
    (mixing.accumulate_mean_variance, (2.5, 4), {}, "n", "2.5"),
    (mixing.accumulate_mean_variance, (2, 0), {}, "sample_size", "0"),
    (mixing.accumulate_moments, (2, 1), {}, "sample_size", "1"),
    (mixing.accumulate_moments, (-3, 4), {}, "n", "-3"),
    (mixing.accumulate_moments, (3, 4), {"estimator": "x"}, "estimator", "'x'"),
    (mixing.anchored_mean, (2, 10, 0.25), {}, "lam", "0.25"),
    (mixing.anchored_mean, (2, 10, 1.5), {}, "lam", "1.5"),
    (mixing.anchored_mean, (2, 10, 0.5), {"sigma0": -1.0}, "sigma0", "-1.0"),
    (mixing.anchored_mean, (2, 10, 0.5), {"real_mean": np.nan}, "real_mean", "nan"),
    (mixing.schedule_w2, (2, [5, 1]), {}, "sample_sizes", "1"),
    (mixing.schedule_w2, (3, [5, 6]), {}, "n", "3"),
    (mixing.schedule_w2, (1, 5), {}, "sample_sizes", "shape ()"),
    (mixing.schedule_w2, (1, [5]), {"estimator": "mvue"}, "estimator", "'mvue'"),
    (mixing.power_schedule, (3, 1.0, 1.0), {}, "m0", "1.0"),
    (mixing.power_schedule, (3, 10, -1.0), {}, "power", "-1.0"),
    (mixing.power_schedule, (3, 10, np.inf), {}, "power", "inf"),
    (mixing.power_schedule, (-3, 10, 1.0), {}, "n", "-3"),
]


@pytest.mark.unit
@pytest.mark.parametrize("fun,args,kwargs,name,value", BAD_INPUTS)
def test_bad_inputs_raise(fun, args, kwargs, name, value):
    with pytest.raises(ValueError, match=rf"^{name} must .*; got {re.escape(value)}$"):
        fun(*args, **kwargs)


@pytest.mark.unit
def test_traced_n_rejected_where_structural():
    with pytest.raises(ValueError, match="concrete n"):
        jax.jit(lambda n: mixing.accumulate_moments(n, 5).expected_variance)(3)
    with pytest.raises(ValueError, match="concrete n"):
        jax.jit(lambda n: mixing.power_schedule(n, 5, 1.0))(3)
