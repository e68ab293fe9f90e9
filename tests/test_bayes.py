"""The Bayesian (conjugate NIG) family: its update, its predictive samplers, its chains
against theory.bayes, and the NUTS fit against the conjugate posterior.

* Unit: the conjugate posterior against a direct NumPy computation from the raw
  points (BDA Sec. 3.3), and sequential updating (posterior as the next prior)
  against the refit of the pooled data (why ``update="sequential"`` is built as
  refit under accumulate); bad settings refused in one line naming the value.
* Statistical, each at ``FALSE_FAILURE_RATE`` (Bonferroni inside a test) and each
  shown to reject a wrong formula with the same data:
  - the predictive samplers: one point of either predictive against the Student-t
    law, and the joint predictive's scatter against its beta-prime law (KS); the
    normal with the predictive's variance, and the Student-t sampler's scatter,
    are rejected;
  - the chain, for both updates and both predictives: E[posterior mean of
    sigma^2], E[mu_n] and Var[mu_n] at every generation against theory.bayes by the
    mean's SEM and the variance's SE; the plug-in MLE chain's E sigma_n^2 is rejected,
    and so is the other predictive's formula (refit) or the refit formula
    (sequential); refit/joint's E log at the last
    generation against the stationary law (the log of the prior mean rejected);
  - NUTS against the conjugate posterior: the NUTS means of mu, sigma^2 and
    log sigma^2 on four data sets against the closed forms, by sd / sqrt(ESS) with
    numpyro's effective sample size; the posterior mean of sigma^2 taken as
    beta/alpha (one degree of freedom off) is rejected.
"""

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import special  # noqa: E402
from scipy import stats as st  # noqa: E402

from sim.chain import root_key  # noqa: E402
from sim.families import bayes as fb  # noqa: E402
from sim.families import get  # noqa: E402
from sim.families.bayes import nuts as fn  # noqa: E402
from sim.families.gaussian.family import _standardized_stats, as_sample, merge_stats  # noqa: E402
from sim.run import run  # noqa: E402
from tests.stats import FALSE_FAILURE_RATE, assert_agree, assert_rejects  # noqa: E402
from theory import bayes as tb  # noqa: E402
from theory import gaussian as tg  # noqa: E402

PRIOR = fb.Prior(0.0, 2.0, 5.0, 2.0)  # alpha0 = 5: the records' fourth moments are finite
M, REAL_MEAN, REAL_SD = 8, 0.5, 1.0
CHAINS, GENERATIONS = 20_000, 20


def direct_update(prior, x):
    """BDA Sec. 3.3 from the raw points, in NumPy float64: (mu, kappa, alpha, beta)."""
    mu0, k0, a0, b0 = prior
    x = np.asarray(x, np.float64)
    n, xbar = x.size, x.mean()
    s = np.sum((x - xbar) ** 2)
    kn = k0 + n
    return (
        (k0 * mu0 + n * xbar) / kn,
        kn,
        a0 + n / 2,
        b0 + s / 2 + k0 * n * (xbar - mu0) ** 2 / (2 * kn),
    )


def as_tuple(p: fb.BayesParams):
    a = float(p.alpha)
    return float(p.mean), float(p.kappa), a, a * float(np.exp(p.log_s2))


@pytest.mark.unit
def test_posterior_equals_the_direct_computation_and_sequential_equals_pooled():
    rng = np.random.default_rng(0)
    for prior in [PRIOR, fb.Prior(-1.5, 0.3, 0.7, 4.0)]:
        x1, x2 = rng.normal(0.4, 1.7, 13), rng.normal(-2.0, 0.3, 5)
        s1, s2 = (_standardized_stats(as_sample(x)) for x in (x1, x2))
        got = as_tuple(fb.posterior(prior, s1))
        # ~20 float64 operations on O(1) values: 64 u relative is a generous bound
        np.testing.assert_allclose(got, direct_update(prior, x1), rtol=64 * 2.0**-53)
        sequential = direct_update(direct_update(prior, x1), x2)  # the posterior as prior
        pooled = as_tuple(fb.posterior(prior, merge_stats(s1, s2)))
        np.testing.assert_allclose(pooled, sequential, rtol=64 * 2.0**-53)
        with pytest.raises(AssertionError):  # the data counted twice is not sequential
            twice = as_tuple(fb.posterior(direct_update(prior, x1), merge_stats(s1, s2)))
            np.testing.assert_allclose(twice, sequential, rtol=1e-6)


@pytest.mark.unit
@pytest.mark.parametrize(
    "setting, value, shown",
    [
        ("kappa0", 0.0, "kappa0=0.0"),
        ("alpha0", 0.0, "alpha0=0.0"),
        ("alpha0", -1.0, "alpha0=-1.0"),
        ("beta0", -2.0, "beta0=-2.0"),
        ("real_sd", 0.0, "real_sd=0.0"),
        ("update", "sideways", "update='sideways'"),
        ("predictive", "cauchy", "predictive='cauchy'"),
        ("fit", "laplace", "fit='laplace'"),
    ],
)
def test_bad_settings_are_refused_in_one_line(setting, value, shown):
    with pytest.raises(ValueError) as err:
        get("bayes").settings(**{setting: value})
    assert shown in str(err.value) and "\n" not in str(err.value), str(err.value)


@pytest.mark.unit
def test_settings_that_do_not_combine_are_refused():
    spec = get("bayes")
    for given, shown in [
        (dict(update="sequential", regime="accumulate"), "regime='accumulate'"),
        (dict(predictive="student_t", method="exact"), "predictive='student_t'"),
        (dict(fit="nuts", predictive="student_t"), "predictive='student_t'"),
    ]:
        with pytest.raises(ValueError, match=shown):
            spec.settings(**given)


# ------------------------------------------------------------------------ the samplers


@pytest.fixture(scope="module")
def predictive_draws():
    post = fb.BayesParams(*(jax.numpy.asarray(v) for v in (0.3, 4.0, 2.5, np.log(1.2))))
    keys = jax.random.split(root_key(3), 4000)

    @jax.jit
    def go(keys):
        joint = jax.vmap(lambda k: fb.sample_joint(k, post, 6))(keys)
        t = jax.vmap(lambda k: fb.sample_student_t(k, post, 6))(keys)
        return joint, t

    return post, *go(keys)


@pytest.mark.statistical
def test_predictive_samplers_follow_their_laws(predictive_draws):
    post, joint, tdraws = predictive_draws
    mu, k, a = 0.3, 4.0, 2.5
    b = a * 1.2
    t_law = st.t(df=2 * a, loc=mu, scale=np.sqrt(b * (1 + 1 / k) / a))
    first = {
        name: np.asarray(d.loc + np.exp(d.log_scale) * d.z[:, 0])
        for name, d in (("joint", joint), ("student_t", tdraws))
    }
    # S / (2 b) of the joint predictive: sigma^2 chi2_{M-1} / (2b) = G_{(M-1)/2} / G_a
    scatter = {
        name: np.asarray(np.exp(_scatter(d))) / (2 * b)
        for name, d in (("joint", joint), ("student_t", tdraws))
    }
    bp = st.betaprime(2.5, a)
    crit = FALSE_FAILURE_RATE / 3
    p = [
        st.kstest(first["joint"], t_law.cdf).pvalue,
        st.kstest(first["student_t"], t_law.cdf).pvalue,
        st.kstest(scatter["joint"], bp.cdf).pvalue,
    ]
    assert min(p) >= crit, p
    normal = st.norm(mu, np.sqrt(t_law.var()))
    wrong = [
        st.kstest(first["student_t"], normal.cdf).pvalue,
        st.kstest(scatter["student_t"], bp.cdf).pvalue,
    ]
    assert max(wrong) < crit, wrong


def _scatter(d):
    return jax.vmap(lambda x: _standardized_stats(x).log_m2)(d)


# -------------------------------------------------------------------------- the chains

# sequential/student_t (the exact recursion with the slowest program, 10 s of compiling
# here) runs with --runslow; the other three run always
CASES = [
    ("refit", "joint"),
    ("refit", "student_t"),
    ("sequential", "joint"),
    pytest.param(("sequential", "student_t"), marks=pytest.mark.slow),
]


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def chain(request):
    update, predictive = request.param
    res = run(
        "bayes",
        root_key(21),
        num_chains=CHAINS,
        num_generations=GENERATIONS,
        sample_size=M,
        update=update,
        predictive=predictive,
        mu0=PRIOR.mu0,
        kappa0=PRIOR.kappa0,
        alpha0=PRIOR.alpha0,
        beta0=PRIOR.beta0,
        real_mean=REAL_MEAN,
        real_sd=REAL_SD,
        progress=False,
    )
    return res, update, predictive


def _theory(fn_, n, update, predictive):
    return np.asarray(fn_(n, M, *PRIOR, REAL_MEAN, REAL_SD, update=update, predictive=predictive))


@pytest.mark.statistical
def test_chain_moments_agree_with_theory_and_reject_wrong_formulas(chain):
    res, update, predictive = chain
    n = res.generations[1:]
    vm, mean = res.moments["var_mean"], res.moments["mean"]
    emp = np.concatenate([vm.mean[1:], mean.mean[1:], mean.var[1:]])
    se = np.concatenate([vm.sem[1:], mean.sem[1:], mean.var_se[1:]])
    th = np.concatenate(
        [_theory(f, n, update, predictive) for f in (tb.expected_var_mean, tb.expected_mean)]
        + [_theory(tb.mean_variance, n, update, predictive)]
    )
    z = assert_agree(emp, se, th, f"bayes {update}/{predictive}")
    assert z.size == 3 * GENERATIONS
    alpha = FALSE_FAILURE_RATE / z.size  # each rejection at the agreement test's Bonferroni
    mle = np.asarray(tg.expected_variance(n, M, "mle", REAL_SD))
    assert_rejects(vm.mean[1:], vm.sem[1:], mle, "the plug-in MLE chain's E sigma^2", alpha)
    # refit: the other predictive's formula; sequential (where the two predictives differ
    # by 2% and the martingale correlates the generations): the refit formula
    if update == "refit":
        other = dict(update=update, predictive="student_t" if predictive == "joint" else "joint")
    else:
        other = dict(update="refit", predictive=predictive)
    late = slice(GENERATIONS // 2, None)  # where the formulas have drifted apart
    wrong = _theory(tb.expected_var_mean, n, **other)
    assert_rejects(vm.mean[1:][late], vm.sem[1:][late], wrong[late], f"{other}'s formula", alpha)

    if (update, predictive) == ("refit", "joint"):
        _stationary_log(res)


def _stationary_log(res):
    """refit/joint: E log var_mean at the last generation against the stationary law."""
    # the moments' distance to stationarity is O(drift_rate^G) = 0.7^20 = 8e-4 of O(1)
    assert float(tb.drift_rate(M, PRIOR.kappa0, PRIOR.alpha0)) ** GENERATIONS < 1e-3
    lv = res.moments["log_var_mean"]
    th = float(tb.stationary_log_var_mean(M, PRIOR.alpha0, PRIOR.beta0))
    assert_agree(lv.mean[-1], lv.sem[-1], th, "stationary E log var_mean")
    prior_mean = np.log(PRIOR.beta0 / (PRIOR.alpha0 - 1))
    assert_rejects(lv.mean[-1], lv.sem[-1], prior_mean, "log of the prior mean")


# ---------------------------------------------------------------------- NUTS vs closed form


@pytest.mark.statistical
def test_nuts_posterior_moments_agree_with_the_conjugate_posterior():
    rng = np.random.default_rng(4)
    data = [
        rng.normal(0.5, 1.3, 12),
        rng.normal(-1.0, 0.5, 12),
        rng.normal(3.0, 2.0, 12),
        rng.normal(0.0, 1.0, 12),
    ]
    stats = jax.tree.map(lambda *x: np.stack(x), *[_standardized_stats(as_sample(x)) for x in data])
    keys = jax.random.split(root_key(5), len(data))
    draws, accept = jax.jit(jax.vmap(lambda k, s: fn.nuts_samples(k, s, PRIOR, 200, 300, 4)))(
        keys, stats
    )
    emp, se, th, wrong = [], [], [], []
    for i, x in enumerate(data):
        mom = fn.posterior_moments(np.asarray(draws[i]))
        mu, k, a, b = direct_update(PRIOR, x)
        assert min(m[2] for m in mom.values()) > 150, mom  # effective sample sizes
        emp += [mom[q][0] for q in ("mu", "sigma2", "log_sigma2")]
        se += [mom[q][3] for q in ("mu", "sigma2", "log_sigma2")]
        th += [mu, b / (a - 1), np.log(b) - special.digamma(a)]
        wrong.append(b / a)
    assert np.all(np.asarray(accept) > 0.6), accept
    z = assert_agree(emp, se, th, "NUTS vs conjugate posterior moments")
    sig = slice(1, None, 3)
    assert_rejects(
        np.asarray(emp)[sig],
        np.asarray(se)[sig],
        wrong,
        "E sigma^2 = beta/alpha",
        FALSE_FAILURE_RATE / z.size,
    )
