r"""The simulator against the closed forms of ``theory.gaussian``.

Every comparison is a z-score with the Monte-Carlo standard error of the
empirical statistic, judged at the false-failure rate ``FALSE_FAILURE_RATE``
per test function (Bonferroni over its comparisons), with fixed seeds. Each
test also shows that the same comparison rejects a deliberately wrong
formula (most often: the other estimator's formula), so it can fail.

Runs are shared between tests (module fixtures) to keep compilation down.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats as sps

from sim.runners import run_gaussian
from tests.stats import assert_agree, assert_rejects, binomial_se, z_crit_one_sided
from theory import gaussian as tg

SNAPS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 700, 1000)
KW = dict(tail_k=2.0, snapshot_fields=("log_var", "mean"), progress=False)

pytestmark = pytest.mark.statistical


def _run(seed, m, est, method, c, g, dtype=jnp.float32, eps=1e-6):
    return run_gaussian(
        jax.random.key(seed, impl="philox4x32"),
        sample_size=m,
        estimator=est,
        method=method,
        num_chains=c,
        num_generations=g,
        dtype=dtype,
        collapse_eps=eps,
        snapshot_generations=[s for s in SNAPS if s <= g],
        **KW,
    )


@pytest.fixture(scope="module")
def runs():
    """Shared runs: (method, M, estimator) -> result. Float32 unless noted."""
    return {
        # Long runs: the variance falls below 1e-30 (log < -69) on both paths.
        ("exact", 10, "unbiased"): _run(1, 10, "unbiased", "exact", 1 << 15, 1000, eps=1e-30),
        ("sample", 10, "unbiased"): _run(2, 10, "unbiased", "sample", 8192, 700, eps=1e-30),
        ("exact", 10, "mle"): _run(3, 10, "mle", "exact", 1 << 15, 200),
        ("sample", 100, "mle"): _run(4, 100, "mle", "sample", 8192, 100),
        ("exact", 2, "unbiased"): _run(5, 2, "unbiased", "exact", 1 << 15, 50),
        ("sample", 20, "unbiased", "f64"): _run(
            6, 20, "unbiased", "sample", 4096, 100, dtype=jnp.float64
        ),
    }


def _gens(r, upto=None):
    return [int(s) for s in r.snapshot_generations if s >= 1 and (upto is None or s <= upto)]


def _cfg(name):
    method, m, est = name[:3]
    return method, m, est


@pytest.mark.parametrize(
    "name",
    [
        ("exact", 10, "unbiased"),
        ("sample", 10, "unbiased"),
        ("exact", 10, "mle"),
        ("sample", 100, "mle"),
        ("exact", 2, "unbiased"),
        ("sample", 20, "unbiased", "f64"),
    ],
)
def test_log_variance_mean_and_variance(runs, name):
    """G3: E[log s2] and Var[log s2] at every snapshot generation."""
    r = runs[name]
    _, m, est = _cfg(name)
    n = np.array(_gens(r))
    lv = r.moments["log_var"]
    other = "mle" if est == "unbiased" else "unbiased"
    emp = np.concatenate([lv.mean[n], lv.var[n]])
    se = np.concatenate([lv.sem[n], lv.var_se[n]])
    theory = np.concatenate([tg.log_variance_mean(n, m, est), tg.log_variance_var(n, m)])
    assert_agree(emp, se, theory, f"log-variance moments {name}")
    wrong = np.concatenate([tg.log_variance_mean(n, m, other), tg.log_variance_var(n, m)])
    assert_rejects(emp, se, wrong, f"log-variance moments {name}, other estimator's formula")


def test_long_runs_fall_below_1e_minus_30(runs):
    """Both methods keep tracking theory after sigma^2 underflows float32's range."""
    for name, g in ((("exact", 10, "unbiased"), 1000), (("sample", 10, "unbiased"), 700)):
        r = runs[name]
        assert tg.log_variance_mean(g, 10, "unbiased") < np.log(1e-30)
        lv_final = r.snapshots["log_var"][-1]
        assert np.isfinite(lv_final).all() and np.median(lv_final) < np.log(1e-30)
        if g == 1000:  # e^-115: sigma^2 itself is below float32's smallest subnormal
            assert np.median(np.exp(lv_final)) == 0.0


@pytest.mark.parametrize(
    "name",
    [
        ("exact", 10, "unbiased"),
        ("sample", 10, "unbiased"),
        ("exact", 2, "unbiased"),
        ("sample", 100, "mle"),
    ],
)
def test_log_variance_quantiles(runs, name):
    """G10 via the saddlepoint: fraction of chains below theoretical quantiles ~ Binomial."""
    r = runs[name]
    _, m, est = _cfg(name)
    gens = _gens(r)
    qs = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    emp, theory, wrong = [], [], []
    for j, n in enumerate(gens, start=list(r.snapshot_generations).index(gens[0])):
        lv = r.snapshots["log_var"][j].astype(np.float64)
        thr = np.asarray(tg.log_variance_quantile(qs, n, m, est))
        emp.append((lv[None, :] <= thr[:, None]).mean(1))
        theory.append(qs)
        # Wrong: the normal (CLT) quantiles, which ignore the skew of log chi^2.
        normal = tg.log_variance_mean(n, m, est) + np.sqrt(
            tg.log_variance_var(n, m)
        ) * sps.norm.ppf(qs)
        wrong.append((lv[None, :] <= np.asarray(normal)[:, None]).mean(1))
    emp, theory = np.concatenate(emp), np.concatenate(theory)
    se = binomial_se(theory, r.num_chains)
    assert_agree(emp, se, theory, f"quantiles {name}")
    if m == 2:  # strongly skewed: the normal approximation is visibly wrong
        assert_rejects(np.concatenate(wrong), se, theory, "normal quantiles at M=2")
    wrong_est = "mle" if est == "unbiased" else "unbiased"
    thr_wrong = [np.asarray(tg.log_variance_quantile(0.5, n, m, wrong_est)) for n in gens]
    snaps = [r.snapshots["log_var"][list(r.snapshot_generations).index(n)] for n in gens]
    emp_w = np.array([(s <= t).mean() for s, t in zip(snaps, thr_wrong, strict=True)])
    assert_rejects(emp_w, binomial_se(0.5, r.num_chains), 0.5, "other estimator's median")


@pytest.mark.parametrize(
    "name,eps",
    [
        (("exact", 10, "unbiased"), 1e-30),
        (("sample", 10, "unbiased"), 1e-30),
        (("exact", 10, "mle"), 1e-6),
    ],
)
def test_collapse_probability(runs, name, eps):
    """P(sigma_n^2 < eps sigma0^2): the fraction collapsed against G10."""
    r = runs[name]
    _, m, est = _cfg(name)
    n = np.arange(1, len(r.generations))[::7]
    p = np.asarray(tg.collapse_probability(n, m, eps, est))
    emp = r.moments["collapsed"].mean[n]
    se = binomial_se(p, r.num_chains)
    assert (emp > 0.05).any() and (emp < 0.95).any()  # the test spans the transition
    assert_agree(emp, se, p, f"collapse probability {name}")
    other = "mle" if est == "unbiased" else "unbiased"
    assert_rejects(
        emp,
        se,
        np.asarray(tg.collapse_probability(n, m, eps, other)),
        "other estimator's collapse probability",
    )


@pytest.mark.parametrize(
    "name",
    [
        ("exact", 10, "unbiased"),
        ("exact", 10, "mle"),
        ("sample", 100, "mle"),
        ("exact", 2, "unbiased"),
    ],
)
def test_expected_tail_mass_from_real_mean(runs, name):
    """G7b: the mean over chains of the fit's mass beyond k sigma0 from the real mean."""
    r = runs[name]
    _, m, est = _cfg(name)
    n = np.array(_gens(r))
    tr = r.moments["tail_real"]
    theory = np.asarray(tg.expected_tail_mass(n, m, 2.0, est))
    assert_agree(tr.mean[n], tr.sem[n], theory, f"expected tail mass {name}")
    # Wrong: the median chain's own tails (G7a): the typical chain loses its tails,
    # the average chain does not.
    wrong = np.asarray(tg.median_tail_mass(n, m, 2.0, est))
    assert_rejects(tr.mean[n], tr.sem[n], wrong, "median own-tail formula for the mean")


def test_median_tail_mass(runs):
    """G7a: the median over chains of the own-tail mass (a monotone function of sigma)."""
    r = runs[("exact", 10, "unbiased")]
    # Past n ~ 50 the median own-tail mass underflows to exactly 0 (2 Phi(-600)):
    # ties would make "<= median" meaningless, so test where it is representable.
    gens = [n for n in _gens(r) if tg.median_tail_mass(n, 10, 2.0, "unbiased") > 1e-250]
    assert len(gens) >= 5
    idx = [list(r.snapshot_generations).index(n) for n in gens]
    own = 2 * sps.norm.sf(2.0 * np.exp(-0.5 * r.snapshots["log_var"][idx].astype(np.float64)))
    med = np.asarray(tg.median_tail_mass(np.array(gens), 10, 2.0, "unbiased"))
    frac = (own <= med[:, None]).mean(1)
    se = binomial_se(0.5, r.num_chains)
    assert_agree(frac, se, 0.5, "fraction below the median own tail")
    wrong = np.asarray(tg.median_tail_mass(np.array(gens), 10, 2.0, "mle"))
    assert_rejects((own <= wrong[:, None]).mean(1), se, 0.5, "MLE median on unbiased chains")


@pytest.mark.parametrize(
    "name",
    [
        ("exact", 10, "unbiased"),
        ("exact", 10, "mle"),
        ("sample", 100, "mle"),
        ("sample", 20, "unbiased", "f64"),
    ],
)
def test_w2_and_mean_variance(runs, name):
    """G5, G6: E[W2^2] and Var(mu_n), where the cross-chain mean is measurable.

    These are means of heavy-tailed quantities (the CV^2 of sigma_n^2 grows like
    ((M+1)/(M-1))^n), so they are tested only up to the generation where the
    log-normal proxy says the sample mean is close to normal (see
    experiments.common.mean_is_measurable); beyond it the test could not hold.
    """
    from experiments.common import mean_is_measurable

    r = runs[name]
    _, m, est = _cfg(name)
    c = r.num_chains
    n = np.array(
        [
            g
            for g in range(1, len(r.generations))
            if mean_is_measurable(float(tg.variance_cv2(g, m)), c)
        ]
    )
    assert len(n) >= 5
    w2, mu = r.moments["w2_squared"], r.moments["mean"]
    emp = np.concatenate([w2.mean[n], mu.var[n]])
    se = np.concatenate([w2.sem[n], mu.var_se[n]])
    theory = np.concatenate([tg.expected_w2_squared(n, m, est), tg.mean_variance(n, m, est)])
    assert_agree(emp, se, theory, f"W2 and Var(mu) {name}")
    other = "mle" if est == "unbiased" else "unbiased"
    wrong = np.concatenate([tg.expected_w2_squared(n, m, other), tg.mean_variance(n, m, other)])
    assert_rejects(emp, se, wrong, "other estimator's W2 and Var(mu)")


def test_expected_std_and_variance(runs):
    """G2, G4: E[sigma_n], E[sigma_n^2] from per-chain snapshots, where measurable."""
    from experiments.common import mean_is_measurable

    for name in (("exact", 10, "mle"), ("exact", 10, "unbiased")):
        r = runs[name]
        _, m, est = _cfg(name)
        c = r.num_chains
        gens = [g for g in _gens(r) if mean_is_measurable(float(tg.variance_cv2(g, m)), c)]
        idx = [list(r.snapshot_generations).index(g) for g in gens]
        lv = r.snapshots["log_var"][idx].astype(np.float64)
        s, v = np.exp(lv / 2), np.exp(lv)
        n = np.array(gens)
        emp = np.concatenate([s.mean(1), v.mean(1)])
        se = np.concatenate([s.std(1, ddof=1), v.std(1, ddof=1)]) / np.sqrt(c)
        theory = np.concatenate([tg.expected_std(n, m, est), tg.expected_variance(n, m, est)])
        assert_agree(emp, se, theory, f"E sigma, E sigma^2 {name}")
        other = "mle" if est == "unbiased" else "unbiased"
        wrong = np.concatenate([tg.expected_std(n, m, other), tg.expected_variance(n, m, other)])
        assert_rejects(emp, se, wrong, "other estimator's moments")


def test_markov_tail_bound_holds(runs):
    """G9: P(sigma_n > eps) <= (sigma0/eps) exp(-n/(4M-1)), one-sided at the stated rate."""
    r = runs[("exact", 10, "unbiased")]
    gens = _gens(r)
    idx = [list(r.snapshot_generations).index(g) for g in gens]
    sigma = np.exp(r.snapshots["log_var"][idx].astype(np.float64) / 2)
    crit = z_crit_one_sided(len(gens) * 3)  # one-sided: a bound, not an equality
    rejected = False
    for eps in (0.1, 0.5, 1.0):
        frac = (sigma > eps).mean(1)
        bound = np.minimum(np.asarray(tg.markov_tail_bound(np.array(gens), 10, eps)), 1.0)
        se = binomial_se(np.clip(bound, 1e-12, 1 - 1e-12), r.num_chains)
        assert np.all(frac <= bound + crit * se), (eps, frac, bound)
        # The same check rejects a bound ten times too tight.
        wrong = bound / 10
        se_w = binomial_se(np.clip(wrong, 1e-12, 1 - 1e-12), r.num_chains)
        rejected |= bool(np.any(frac > wrong + crit * se_w))
    assert rejected


def test_sample_and_exact_agree_in_distribution(runs):
    """Two-sample KS on log s2: the sample path and the exact path are one Markov chain."""
    a = runs[("exact", 10, "unbiased")]
    b = runs[("sample", 10, "unbiased")]
    for n in (10, 100, 700):
        la = a.snapshots["log_var"][list(a.snapshot_generations).index(n)]
        lb = b.snapshots["log_var"][list(b.snapshot_generations).index(n)]
        assert sps.ks_2samp(la, lb).pvalue > 1e-4 / 3, n
    # The same test tells different chains apart: unbiased sample path vs MLE exact path.
    c = runs[("exact", 10, "mle")]
    lc = c.snapshots["log_var"][list(c.snapshot_generations).index(100)]
    lb = b.snapshots["log_var"][list(b.snapshot_generations).index(100)]
    assert sps.ks_2samp(lc, lb).pvalue < 1e-4
