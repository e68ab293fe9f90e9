"""The multivariate Gaussian family against theory.multivariate (THEORY.md W1, W2).

Statistical tests: z-scores of cross-chain statistics with their Monte-Carlo
standard errors, Bonferroni over each test's comparisons at FALSE_FAILURE_RATE
(tests/stats.py); each is also shown to reject a deliberately wrong formula
(the other estimator's theory, or the sum over i = 0..d-1 instead of 1..d).
Unit tests: the summaries' algebra (Chan's merge associative, empty its
identity, fit_stats(stats(x)) = fit(x) = numpy's mean and covariance), the
Bartlett sampler (mean scatter (M-1) I, diagonal and off-diagonal laws by KS),
float32 staying finite over the issue's long chain (d = 100, M = 316, 1,000
generations), and the refusal of d >= M.

The chains are run by vmap(scan) of the family's own transitions, with the
estimator (ddof) as per-lane data and, on the exact path, the sample size too,
so each dimension compiles once per path.
"""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.stats as st  # noqa: E402

from sim import families  # noqa: E402
from sim import random as srandom  # noqa: E402
from sim.chain import replace_transition, stats_transition  # noqa: E402
from sim.families import multivariate as mv  # noqa: E402
from tests.stats import FALSE_FAILURE_RATE, assert_agree, assert_rejects  # noqa: E402
from theory import multivariate as tm  # noqa: E402

CHAINS = 2000
GENS = 10
DDOF = {"mle": 0.0, "unbiased": 1.0}
ESTS = ("mle", "unbiased")


def _chains(d, sizes, method, seed, chains=CHAINS, gens=GENS, dtype=jnp.float64):
    """Records (log_det, trace, mse) of shape (lanes, chains, gens): lanes = sizes x ESTS."""
    lanes = [(m, DDOF[e]) for m in sizes for e in ESTS]

    def one(key, m, ddof):
        fam = mv.multivariate_family(d, ddof)

        def body(p, k):
            if method == "exact":
                p, _ = stats_transition(fam, m, k, p)
            else:
                p, _ = replace_transition(fam, sizes[0], k, p)
            r = mv.multivariate_record(p)
            return p, (r.log_det, r.trace, r.mean_sq_error)

        return jax.lax.scan(body, mv.real_params(d, dtype), jax.random.split(key, gens))[1]

    m_arr = jnp.asarray([m for m, _ in lanes], dtype)
    dd_arr = jnp.asarray([dd for _, dd in lanes], dtype)
    keys = jax.random.split(jax.random.key(seed), (len(lanes), chains))
    if method == "exact":
        f = jax.vmap(jax.vmap(one, in_axes=(0, None, None)))
        out = jax.jit(f)(keys, m_arr, dd_arr)
    else:  # the sample size sets shapes: one size per call
        f = jax.vmap(jax.vmap(lambda k, dd: one(k, None, dd), in_axes=(0, None)))
        out = jax.jit(f)(keys, dd_arr)
    return lanes, [np.asarray(o, np.float64) for o in out]


def _collect(d, sizes, method, seed):
    """Empirical statistics at generation GENS and theory, per lane."""
    lanes, (ld, tr, mse) = _chains(d, sizes, method, seed)
    n = GENS
    x = ld[..., -1]
    c = x.shape[-1]
    mean, var = x.mean(-1), x.var(-1, ddof=1)
    m4 = np.mean((x - mean[:, None]) ** 4, -1)
    out = dict(
        ld_mean=(mean, np.sqrt(var / c)),
        ld_var=(var, np.sqrt(np.maximum(m4 - var**2, 0) / c)),
        trace=(tr[..., -1].mean(-1), tr[..., -1].std(-1, ddof=1) / np.sqrt(c)),
        mse=(mse[..., -1].mean(-1), mse[..., -1].std(-1, ddof=1) / np.sqrt(c)),
    )
    est = [("mle" if dd == 0 else "unbiased") for _, dd in lanes]
    other = [("unbiased" if e == "mle" else "mle") for e in est]
    ms = [m for m, _ in lanes]

    def th(f, ests, **kw):
        return np.array([float(f(n, m, d, e, **kw)) for m, e in zip(ms, ests, strict=True)])

    theory = dict(
        ld_mean=th(tm.log_det_mean, est),
        ld_var=np.array([float(tm.log_det_var(n, m, d)) for m in ms]),
        trace=th(tm.expected_trace, est),
        mse=th(tm.mean_sq_error, est),
    )
    # deliberately wrong: the other estimator; for the variance, d independent 1-D chains
    # (d psi'((M-1)/2), ignoring Bartlett's falling degrees of freedom); and, for the
    # mean, the sum over i = 0..d-1 instead of 1..d (dimension d at M + 1)
    wrong = dict(
        ld_mean=th(tm.log_det_mean, other),
        ld_var=np.array([d * float(tm.log_det_var(n, m, 1)) for m in ms]),
        trace=th(tm.expected_trace, other),
        mse=th(tm.mean_sq_error, other),
    )
    shifted = np.array(
        [float(tm.log_det_mean(n, m + 1, d, e)) for m, e in zip(ms, est, strict=True)]
    )
    return out, theory, wrong, shifted


@pytest.mark.statistical
@pytest.mark.parametrize("method", ["exact", "sample"])
def test_chain_moments_against_theory(method):
    """E/Var log det, E tr, E||mu||^2 at n = GENS for d in {3, 10}, M in {20, 100},
    both estimators (as lanes), against W1/W2; each wrong formula rejected."""
    results = []
    for d in (3, 10):
        if method == "exact":
            results.append(_collect(d, (20, 100), method, seed=d))
        else:
            results += [_collect(d, (m,), method, seed=d + m) for m in (20, 100)]
    keys = ("ld_mean", "ld_var", "trace", "mse")
    emp = {k: np.concatenate([r[0][k][0] for r in results]) for k in keys}
    se = {k: np.concatenate([r[0][k][1] for r in results]) for k in keys}
    theory = {k: np.concatenate([r[1][k] for r in results]) for k in keys}
    wrong = {k: np.concatenate([r[2][k] for r in results]) for k in keys}
    shifted = np.concatenate([r[3] for r in results])
    alpha = FALSE_FAILURE_RATE / len(keys)  # Bonferroni over the four families of z
    zs = {}
    for k in keys:
        zs[k] = assert_agree(emp[k], se[k], theory[k], f"{method} {k}", alpha)
        assert_rejects(emp[k], se[k], wrong[k], f"{method} {k} (wrong formula)", alpha)
    assert_rejects(emp["ld_mean"], se["ld_mean"], shifted, f"{method} sum over i=0..d-1", alpha)
    print(method, {k: np.round(v, 2).tolist() for k, v in zs.items()})


@pytest.mark.costly
@pytest.mark.unit
def test_stats_algebra_and_fit():
    """merge is associative with empty as identity; fit_stats(stats(x)) = fit(x) =
    numpy's mean and covariance (to float64 rounding)."""
    d, tol = 4, 1e-11
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(m, d)) @ rng.normal(size=(d, d)) + 3.0 for m in (7, 9, 12)]
    fam = mv.multivariate(d, "unbiased")
    ops = fam.ops
    st_ = [ops.stats(mv.as_sample(jnp.asarray(x))) for x in xs]

    def cov(s):  # the scatter the summary stands for: G diag(e^{2t}) G^T
        g = np.asarray(s.factor) * np.exp(np.asarray(s.log_scales))[None, :]
        return g @ g.T

    left = ops.merge(ops.merge(st_[0], st_[1]), st_[2])
    right = ops.merge(st_[0], ops.merge(st_[1], st_[2]))
    allx = np.concatenate(xs)
    scatter = (allx - allx.mean(0)).T @ (allx - allx.mean(0))
    for s in (left, right):
        assert float(s.count) == len(allx)
        np.testing.assert_allclose(np.asarray(s.mean), allx.mean(0), rtol=tol, atol=tol)
        np.testing.assert_allclose(cov(s), scatter, rtol=tol, atol=tol * np.abs(scatter).max())
    empty = ops.empty(mv.real_params(d))
    for s in (ops.merge(st_[0], empty), ops.merge(empty, st_[0])):
        np.testing.assert_allclose(cov(s), cov(st_[0]), rtol=tol, atol=tol * 10)
        np.testing.assert_allclose(np.asarray(s.mean), np.asarray(st_[0].mean), rtol=tol)
    both_empty = ops.merge(empty, empty)
    assert float(both_empty.count) == 0 and np.all(np.asarray(both_empty.log_scales) == -np.inf)
    # fit = fit_stats(stats) = numpy
    for est, ddof in (("mle", 0), ("unbiased", 1)):
        f = mv.multivariate(d, est)
        p = f.fit(None, mv.as_sample(jnp.asarray(xs[2])))
        q = f.ops.fit_stats(None, f.ops.stats(mv.as_sample(jnp.asarray(xs[2]))))
        chol = np.asarray(p.unit_lower) * np.exp(np.asarray(p.log_scales))[None, :]
        sigma = chol @ chol.T
        ref = np.cov(xs[2].T, ddof=ddof)
        np.testing.assert_allclose(sigma, ref, rtol=tol, atol=tol * np.abs(ref).max())
        np.testing.assert_allclose(float(p.log_det), np.linalg.slogdet(ref)[1], rtol=tol)
        np.testing.assert_array_equal(np.diagonal(np.asarray(p.unit_lower)), 1.0)  # unit
        assert np.all(np.triu(np.asarray(p.unit_lower), 1) == 0)  # lower-triangular
        np.testing.assert_allclose(float(p.log_det), 2 * np.asarray(p.log_scales).sum(), rtol=tol)
        for a, b in zip(p, q, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # points / point_stats reproduce the summary of the same sample
    key = jax.random.key(1)
    par = f.fit(None, mv.as_sample(jnp.asarray(xs[0])))
    data = f.sample(key, par, 20)
    s1, s2 = f.ops.stats(data), f.ops.point_stats(f.ops.points(data), jnp.ones(20))
    np.testing.assert_allclose(cov(s1), cov(s2), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.asarray(s1.mean), np.asarray(s2.mean), rtol=1e-9, atol=1e-12)


@pytest.mark.statistical
def test_bartlett_sampler():
    """Mean of A A^T against (M-1) I (z per entry); A_ii^2 ~ chi2_{M-i} and A_ij ~ N(0,1)
    by KS (each KS also rejects chi2_{M-i+1}, the sum from i = 0)."""
    d, df, n = 4, 11, 4000
    keys = jax.random.split(jax.random.key(5), n)
    a = jax.jit(jax.vmap(lambda k: srandom.bartlett(k, df, d, jnp.float64)))(keys)
    lower = np.asarray(a.lower)
    s = lower @ np.transpose(lower, (0, 2, 1))
    iu = np.triu_indices(d)
    emp, se = s.mean(0)[iu], s.std(0, ddof=1)[iu] / np.sqrt(n)
    assert_agree(emp, se, (df * np.eye(d))[iu], "E[A A^T] = df I")
    assert_rejects(emp, se, ((df + 1) * np.eye(d))[iu], "df + 1")
    np.testing.assert_allclose(np.asarray(a.log_diag), np.log(np.diagonal(lower, 0, 1, 2)))
    ks_alpha = FALSE_FAILURE_RATE / (d + 1)
    for i in range(d):
        x = lower[:, i, i] ** 2
        assert st.kstest(x, st.chi2(df - i).cdf).pvalue > ks_alpha, f"diag {i}"
        assert st.kstest(x, st.chi2(df - i + 1).cdf).pvalue < ks_alpha, f"diag {i} wrong df"
    off = lower[:, np.tril_indices(d, -1)[0], np.tril_indices(d, -1)[1]].ravel()
    assert st.kstest(off, st.norm.cdf).pvalue > ks_alpha
    # log det against its law (sum of independent log chi-squares): theory mean and variance
    logdet = 2 * np.asarray(a.log_diag).sum(-1)
    ref_mean = float(tm.log_det_mean(1, df + 1, d, "mle")) + d * np.log(df + 1)
    ref_var = float(tm.log_det_var(1, df + 1, d))
    assert_agree(logdet.mean(), np.sqrt(ref_var / n), ref_mean, "E log det S")


@pytest.mark.costly
@pytest.mark.unit
def test_float32_long_chain_stays_finite():
    """d = 100, M = 316, 1,000 generations in float32 on the exact path (the issue's
    case): every record finite, log det (about -1.8e4, far beyond float32's range of
    det) against theory, and the spectrum, taken in logs, summing to the log det."""
    d, m, gens, chains = 100, 316, 1000, 8
    fam = mv.multivariate_family(d, 0.0)

    def one(key):
        def body(p, k):
            p, _ = stats_transition(fam, m, k, p)
            r = mv.multivariate_record(p)
            return p, (r.log_det, r.trace, r.mean_sq_error, r.w2_squared)

        p0 = mv.real_params(d, jnp.float32)
        last, out = jax.lax.scan(body, p0, jax.random.split(key, gens))
        return out, mv.record.log_eigenvalues(last)

    keys = jax.random.split(jax.random.key(9), chains)
    out, log_eig = jax.jit(jax.vmap(one))(keys)
    for x in out:
        assert x.dtype == jnp.float32 and np.all(np.isfinite(np.asarray(x)))
    ld = np.asarray(out[0], np.float64)[:, -1]
    assert ld.max() < -1.5e4  # det itself underflowed after ~20 generations
    se = np.sqrt(float(tm.log_det_var(gens, m, d)) / chains)
    assert_agree(ld.mean(), se, float(tm.log_det_mean(gens, m, d, "mle")), "f32 E log det")
    log_eig = np.asarray(log_eig, np.float64)
    assert np.all(np.isfinite(log_eig)) and np.all(np.diff(log_eig, axis=-1) >= 0)
    # float32 rounding of 100 terms of size ~200 each: 1e-3 relative is generous
    np.testing.assert_allclose(log_eig.sum(-1), ld, rtol=1e-3)


@pytest.mark.unit
def test_refuses_dim_not_below_sample_size():
    spec = families.get("multivariate")
    with pytest.raises(ValueError, match=r"dim=5 must be < sample_size=5"):
        spec.settings(dim=5, sample_size=5)
    with pytest.raises(ValueError, match=r"dim=8 must be < sample_size=6"):
        spec.settings(dim=8, sample_size=6)
    fam = mv.multivariate(3)
    with pytest.raises(ValueError, match=r"sample_size=3.*dim=3"):
        fam.fit(None, mv.as_sample(jnp.zeros((3, 3))))
