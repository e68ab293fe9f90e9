"""Exact tests of theory.regression against independent computations.

References used here (none of them shares code with the module):
* the closed forms summed in rational arithmetic (fractions.Fraction), and
  scipy.special.digamma / polygamma for large n;
* for ridge conditional on a fixed design: the chain written as an affine
  map of the stacked noise vector and propagated with NumPy linear algebra
  (the actual stacked least-squares solve every generation, no
  eigendecomposition), so E||w_n - w*||^2 = ||mean - w*||^2 +
  sigma^2 ||coefficients||_F^2 exactly; and the matrix-power form
  A^n w* + sum_j A^(n-j) B eps_j;
* a small NumPy Monte Carlo of the literal OLS chains (random Gaussian
  designs, fixed seed, Bonferroni z-tests at tests/stats.FALSE_FAILURE_RATE)
  for the expectations over the design, in particular the fresh-design
  accumulate result derived here, which has no exact independent check.

The statistical tests against the simulator live elsewhere.
"""

import jax

jax.config.update("jax_enable_x64", True)

import re  # noqa: E402
from fractions import Fraction as F  # noqa: E402

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import special as sps  # noqa: E402

from tests.stats import assert_agree, assert_rejects  # noqa: E402
from theory import regression  # noqa: E402

# ---------------------------------------------------------------------------
# Independent references.
# ---------------------------------------------------------------------------


def ols_reference(n, d, t, s2, regime, design):
    k = F(s2) * d / (t - d - 1)
    if regime == "replace":
        return n * k
    if design == "fixed":
        return k * sum((F(1, i * i) for i in range(1, n + 1)), F(0))
    return F(s2) * d * sum((F(1, i * (i * t - d - 1)) for i in range(1, n + 1)), F(0))


def affine_chain(x, w_star, lam, n, regime):
    """E||w_n - w*||^2 given X: w_t = mean_t + C_t eps, eps = (eps_1..eps_n) in R^(nT).

    Generation j's labels are X w_{j-1} + eps_j (w_0 = w*); fit t is the
    ridge solution on generation t's data (replace) or on generations 1..t
    stacked (accumulate). Returns (bias, variance / sigma^2) for t = 0..n.
    """
    t_rows, d = x.shape
    dim_eps = n * t_rows
    means = [w_star.copy()]
    coefs = [np.zeros((d, dim_eps))]
    label_means, label_coefs = [], []
    out = [(0.0, 0.0)]
    for t in range(1, n + 1):
        sel = np.zeros((t_rows, dim_eps))
        sel[:, (t - 1) * t_rows : t * t_rows] = np.eye(t_rows)
        label_means.append(x @ means[-1])
        label_coefs.append(x @ coefs[-1] + sel)
        if regime == "replace":
            xs = x
            ym, yc = label_means[-1], label_coefs[-1]
        else:
            xs = np.vstack([x] * t)
            ym = np.concatenate(label_means)
            yc = np.vstack(label_coefs)
        gram = xs.T @ xs + lam * np.eye(d)
        means.append(np.linalg.solve(gram, xs.T @ ym))
        coefs.append(np.linalg.solve(gram, xs.T @ yc))
        out.append((float(np.sum((means[-1] - w_star) ** 2)), float(np.sum(coefs[-1] ** 2))))
    return out


def matrix_power_replace(x, w_star, lam, n):
    """||(A^n - I) w*||^2 and sum_k tr(A^k B B^T A^k) for the replace chain."""
    d = x.shape[1]
    gram = x.T @ x + lam * np.eye(d)
    a = np.linalg.solve(gram, x.T @ x)
    b = np.linalg.solve(gram, x.T)
    an = np.linalg.matrix_power(a, n)
    var = sum(
        np.trace(np.linalg.matrix_power(a, k) @ b @ b.T @ np.linalg.matrix_power(a, k).T)
        for k in range(n)
    )
    return float(np.sum((an @ w_star - w_star) ** 2)), float(var)


# ---------------------------------------------------------------------------
# OLS, expectation over the design.
# ---------------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("regime", ["replace", "accumulate"])
@pytest.mark.parametrize("design", ["fixed", "fresh"])
def test_ols_against_rational_sums(regime, design):
    ns = np.array([0, 1, 2, 3, 15, 16, 17, 18, 60])
    for d, t, sigma in ((1, 3, 1.0), (2, 7, 0.5), (5, 7, 2.0), (10, 200, 1.5)):
        res = regression.test_error(ns, d, t, sigma, regime, design)
        ref = [float(ols_reference(int(n), d, t, F(sigma) ** 2, regime, design)) for n in ns]
        np.testing.assert_allclose(res, ref, rtol=1e-14)


@pytest.mark.unit
def test_ols_large_n_closed_forms():
    ns = np.array([1e3, 1e6, 1e10])
    d, t = 3, 10
    k = d / (t - d - 1)
    acc = regression.test_error(ns, d, t, 1.0, "accumulate", "fixed")
    np.testing.assert_allclose(acc, k * (np.pi**2 / 6 - sps.polygamma(1, ns + 1)), rtol=1e-14)
    # fresh: sigma^2 d/(d+1) [psi(n+1-b) - psi(1-b) - psi(n+1) + psi(1)], b = (d+1)/T
    b = (d + 1) / t
    ref = (
        d
        / (d + 1)
        * (sps.digamma(ns + 1 - b) - sps.digamma(1 - b) - sps.digamma(ns + 1) + sps.digamma(1))
    )
    fresh = regression.test_error(ns, d, t, 1.0, "accumulate", "fresh")
    np.testing.assert_allclose(fresh, ref, rtol=1e-12)
    limit = d / (d + 1) * (sps.digamma(1) - sps.digamma(1 - b))
    np.testing.assert_allclose(
        regression.test_error(1e15, d, t, 1.0, "accumulate", "fresh"), limit, rtol=1e-13
    )
    assert np.all(fresh < acc)
    # tracing, dtype, broadcasting
    jitted = jax.jit(lambda n: regression.test_error(n, 3, 10, 1.0, "accumulate", "fresh"))
    np.testing.assert_allclose(
        jitted(17.0), regression.test_error(17, 3, 10, 1.0, "accumulate", "fresh"), rtol=1e-15
    )
    out = regression.test_error(np.arange(3)[:, None], np.array([1, 2]), 9, 1.0)
    assert out.shape == (3, 2)
    assert regression.test_error(jnp.float32(2), 1, 9, jnp.float32(1)).dtype == jnp.float32


def simulate_ols(rng, chains, n, d, t, regime, design):
    """Literal OLS chains (sigma = 1, w* = 0 by translation invariance): ||w_n||^2 per fit."""
    w = np.zeros((chains, d))
    x = rng.standard_normal((chains, t, d))
    gram_sum = np.zeros((chains, d, d))
    rhs_sum = np.zeros((chains, d))
    out = []
    for _ in range(n):
        if design == "fresh":
            x = rng.standard_normal((chains, t, d))
        y = np.einsum("ctd,cd->ct", x, w) + rng.standard_normal((chains, t))
        gram = np.einsum("ctd,cte->cde", x, x)
        rhs = np.einsum("ctd,ct->cd", x, y)
        if regime == "accumulate":
            gram_sum += gram
            rhs_sum += rhs
            gram, rhs = gram_sum, rhs_sum
        w = np.linalg.solve(gram, rhs[..., None])[..., 0]
        out.append(np.sum(w * w, axis=1))
    return out


@pytest.mark.statistical
def test_ols_monte_carlo_over_designs():
    """Expectation over Gaussian designs (T - d - 3 > 0: finite variance), 4e4 chains."""
    rng = np.random.default_rng(4242)
    chains, n, d, t = 40_000, 3, 3, 9
    emp, se, th, wrong = [], [], [], []
    for regime in ("replace", "accumulate"):
        for design in ("fixed", "fresh"):
            hist = simulate_ols(rng, chains, n, d, t, regime, design)
            res = regression.test_error(np.arange(1, n + 1), d, t, 1.0, regime, design)
            fixed_acc = regression.test_error(np.arange(1, n + 1), d, t, 1.0, "accumulate")
            for i in range(n):
                emp.append(hist[i].mean())
                se.append(hist[i].std() / np.sqrt(chains))
                th.append(float(res[i]))
                use = regime == "accumulate" and design == "fresh" and i > 0
                wrong.append(float(fixed_acc[i]) if use else np.nan)
    assert_agree(emp, se, th, "OLS test error")
    mask = ~np.isnan(wrong)
    assert_rejects(
        np.array(emp)[mask],
        np.array(se)[mask],
        np.array(wrong)[mask],
        "fixed-design accumulate formula on fresh designs",
    )


# ---------------------------------------------------------------------------
# Ridge conditional on a fixed design.
# ---------------------------------------------------------------------------


def random_problem(seed, t, d):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((t, d)) @ np.diag(np.linspace(0.3, 2.0, d))
    return x, rng.standard_normal(d)


@pytest.mark.unit
@pytest.mark.parametrize("regime", ["replace", "accumulate"])
@pytest.mark.parametrize("lam", [0.0, 0.7, 5.0])
def test_ridge_against_stacked_least_squares(regime, lam):
    x, w = random_problem(1, 6, 3)
    n = 5
    ref = affine_chain(x, w, lam, n, regime)
    spec = regression.ridge_spectrum(x, w)
    res = regression.ridge_test_error(
        np.arange(n + 1), spec.eigenvalues, spec.signal, 0.8, lam, regime
    )
    np.testing.assert_allclose(res.bias, [b for b, _ in ref], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(res.variance, [0.64 * v for _, v in ref], rtol=1e-10)
    np.testing.assert_allclose(res.total, res.bias + res.variance, rtol=1e-15)
    if regime == "replace":
        for k in range(n + 1):
            b, v = matrix_power_replace(x, w, lam, k)
            np.testing.assert_allclose(
                [res.bias[k], res.variance[k]], [b, 0.64 * v], rtol=1e-10, atol=1e-14
            )


@pytest.mark.unit
@pytest.mark.parametrize("regime", ["replace", "accumulate"])
def test_ridge_rank_deficient_design(regime):
    """T < d: zero eigenvalues keep their full bias and get no variance (lambda > 0)."""
    x, w = random_problem(2, 2, 4)
    ref = affine_chain(x, w, 0.5, 4, regime)
    spec = regression.ridge_spectrum(x, w)
    res = regression.ridge_test_error(np.arange(5), spec.eigenvalues, spec.signal, 1.3, 0.5, regime)
    np.testing.assert_allclose(res.bias, [b for b, _ in ref], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res.variance, [1.69 * v for _, v in ref], rtol=1e-9, atol=1e-12)


@pytest.mark.costly
@pytest.mark.unit
def test_ridge_closed_forms_and_limits():
    kappa = np.array([0.5, 2.0, 7.0])
    s = np.array([0.2, 1.0, 0.3])
    ns = np.arange(0, 30, 7)
    # ridge = 0 is OLS conditional on X: n sigma^2 tr(K^-1), sigma^2 tr(K^-1) sum 1/i^2
    trace = np.sum(1 / kappa)
    rep = regression.ridge_test_error(ns, kappa, s, 1.5, 0.0)
    np.testing.assert_allclose(rep.total, 2.25 * ns * trace, rtol=1e-14)
    acc = regression.ridge_test_error(ns, kappa, s, 1.5, 0.0, "accumulate")
    h2 = [float(sum((F(1, i * i) for i in range(1, n + 1)), F(0))) for n in ns]
    np.testing.assert_allclose(acc.total, 2.25 * trace * np.array(h2), rtol=1e-14)
    # replace limits: bias -> ||w*||^2, variance -> sigma^2 sum kappa/(lam (2 kappa + lam))
    lam = 0.9
    far = regression.ridge_test_error(10**6, kappa, s, 1.5, lam)
    np.testing.assert_allclose(far.bias, s.sum(), rtol=1e-14)
    np.testing.assert_allclose(
        far.variance, 2.25 * np.sum(kappa / (lam * (2 * kappa + lam))), rtol=1e-13
    )
    # accumulate: bias stays at the one-fit ridge bias; variance by polygamma
    acc = regression.ridge_test_error(np.array([1, 40, 10**7]), kappa, s, 1.5, lam, "accumulate")
    np.testing.assert_allclose(acc.bias, np.sum(s * (lam / (kappa + lam)) ** 2), rtol=1e-14)
    a = 1 + lam / kappa
    for i, n in enumerate([1, 40, 10**7]):
        ref = np.sum((sps.polygamma(1, a) - sps.polygamma(1, a + n)) / kappa)
        np.testing.assert_allclose(acc.variance[i], 2.25 * ref, rtol=1e-12)
    # tiny eigenvalue next to a large ridge: no cancellation (variance ~ n kappa / lam^2)
    tiny = regression.ridge_test_error(3, [1e-12], [0.0], 1.0, 1.0, "accumulate")
    np.testing.assert_allclose(tiny.variance, 3e-12 * (1 - 6e-12), rtol=1e-10)
    # shapes, batches, tracing
    res = regression.ridge_test_error(np.array([[1], [2]]), kappa, s, 1.0, np.array([0.1, 1.0]))
    assert res.total.shape == (2, 2)
    jitted = jax.jit(lambda n, lam: regression.ridge_test_error(n, kappa, s, 1.0, lam).total)
    np.testing.assert_allclose(
        jitted(4.0, 0.3), regression.ridge_test_error(4, kappa, s, 1.0, 0.3).total, rtol=1e-15
    )


@pytest.mark.unit
def test_ridge_spectrum():
    x, w = random_problem(3, 7, 4)
    spec = regression.ridge_spectrum(x, w)
    np.testing.assert_allclose(np.sort(spec.eigenvalues), np.linalg.eigvalsh(x.T @ x), rtol=1e-12)
    np.testing.assert_allclose(np.sum(spec.signal), w @ w, rtol=1e-12)
    # w* along one eigenvector puts all the signal there
    evals, evecs = np.linalg.eigh(x.T @ x)
    spec = regression.ridge_spectrum(x, 2.0 * evecs[:, 1])
    np.testing.assert_allclose(spec.signal, [0, 4, 0, 0], atol=1e-12)
    batch = regression.ridge_spectrum(np.stack([x, 2 * x]), np.stack([w, w]))
    np.testing.assert_allclose(batch.eigenvalues[1], 4 * batch.eigenvalues[0], rtol=1e-12)


# ---------------------------------------------------------------------------
# Validation.
# ---------------------------------------------------------------------------

BAD_INPUTS = [
    (regression.test_error, (2, 3, 4, 1.0), {}, "num_samples", "4"),
    (regression.test_error, (2, 3, 3, 1.0), {}, "num_samples", "3"),
    (regression.test_error, (2, [1, 5], 6, 1.0), {}, "num_samples", "6"),
    (regression.test_error, (2, 0, 6, 1.0), {}, "dim", "0"),
    (regression.test_error, (2, 2.5, 6, 1.0), {}, "dim", "2.5"),
    (regression.test_error, (2, 2, 6.5, 1.0), {}, "num_samples", "6.5"),
    (regression.test_error, (-1, 2, 6, 1.0), {}, "n", "-1"),
    (regression.test_error, (1, 2, 6, -1.0), {}, "noise", "-1.0"),
    (regression.test_error, (1, 2, 6, np.inf), {}, "noise", "inf"),
    (regression.test_error, (1, 2, 6, 1.0), {"regime": "keep"}, "regime", "'keep'"),
    (regression.test_error, (1, 2, 6, 1.0), {"design": "random"}, "design", "'random'"),
    (regression.ridge_test_error, (1, [1.0, -2.0], 1.0, 1.0, 0.1), {}, "eigenvalues", "-2.0"),
    (regression.ridge_test_error, (1, [1.0, 0.0], 1.0, 1.0, 0.0), {}, "eigenvalues", "0"),
    (regression.ridge_test_error, (1, [1.0], -1.0, 1.0, 0.1), {}, "signal", "-1.0"),
    (regression.ridge_test_error, (1, [1.0], 1.0, 1.0, -0.1), {}, "ridge", "-0.1"),
    (regression.ridge_test_error, (1, [1.0], 1.0, np.nan, 0.1), {}, "noise", "nan"),
    (regression.ridge_test_error, (1, 1.0, 1.0, 1.0, 0.1), {}, "eigenvalues", "shape ()"),
    (regression.ridge_test_error, (0.5, [1.0], 1.0, 1.0, 0.1), {}, "n", "0.5"),
    (regression.ridge_test_error, (1, [1.0], 1.0, 1.0, 0.1), {"regime": "x"}, "regime", "'x'"),
    (regression.ridge_spectrum, (np.ones(3), np.ones(3)), {}, "design", "shape (3,)"),
    (regression.ridge_spectrum, (np.ones((3, 2)), np.ones(3)), {}, "w_star", "shape (3,)"),
]


@pytest.mark.unit
@pytest.mark.parametrize("fun,args,kwargs,name,value", BAD_INPUTS)
def test_bad_inputs_raise(fun, args, kwargs, name, value):
    with pytest.raises(ValueError, match=rf"^{name} must .*; got {re.escape(value)}$"):
        fun(*args, **kwargs)
