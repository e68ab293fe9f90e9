"""The KDE chain against theory.kde, its record against scipy, its sampler against its law.

Statistical tests compare, generation by generation, the cross-chain mean of the
fitted distribution's variance (``variance`` = stored points' MLE variance + h^2)
with ``theory.kde`` by z-scores with its Monte-Carlo standard error (``sem``), and
the cross-chain variance of the fitted mean with its closed form (``var_se``, from
the fourth moment), Bonferroni over all comparisons of a test at
``tests/stats.FALSE_FAILURE_RATE``. Four chains: a fixed bandwidth (replace), Scott's
rule (replace: geometric growth), a fixed bandwidth with a fresh real fraction 0.2, and
a fixed bandwidth under accumulate. Each is shown to reject a wrong formula on the
same data: the Gaussian collapse formula without the h^2 term, r^n sigma0^2 (fixed h);
the growth factor with the MLE sd in place of the sample sd, r (1 + c^2 M^(-2/5))
(Scott); the Gaussian F1 formula without h^2 (fresh); the replace formula
(accumulate).

Exact unit tests: the record's ``tail_mass`` and ``heldout_loglik`` against a direct
scipy computation of the mixture of normals; the sampler by a Kolmogorov-Smirnov test
against the mixture's CDF (rejecting a bandwidth 25% off); the bandwidth rules against
``scipy.stats.gaussian_kde``'s factors; and bad settings refused in one line by name
before anything compiles.

Cost: the chains run with ``heldout_size=1`` (the log-likelihood is tested exactly,
not by Monte Carlo), one compilation each.
"""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import stats as st  # noqa: E402

from sim import families  # noqa: E402
from sim.chain import root_key  # noqa: E402
from sim.families import kde as fk  # noqa: E402
from sim.run import run  # noqa: E402
from tests.stats import FALSE_FAILURE_RATE, assert_agree, assert_rejects  # noqa: E402
from theory import kde as tk  # noqa: E402
from theory import mixing  # noqa: E402

# (label, settings, chains, generations); accumulate stores M t points per chain at fit t
CASES = {
    "fixed": (dict(sample_size=10, bandwidth=0.5, rule="fixed"), 10_000, 30),
    "scott": (dict(sample_size=32, rule="scott"), 10_000, 10),
    "fresh": (dict(sample_size=10, bandwidth=0.5, regime="fresh", alpha=0.2), 10_000, 20),
    "accumulate": (
        dict(sample_size=10, bandwidth=0.5, rule="fixed", regime="accumulate"),
        5_000,
        12,
    ),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def chain(request):
    settings, chains, g = CASES[request.param]
    res = run(
        "kde",
        root_key(31),
        num_chains=chains,
        num_generations=g,
        heldout_size=1,
        progress=False,
        **settings,
    )
    return request.param, settings, res


def _theory(label, settings, n):
    m, h = settings["sample_size"], settings.get("bandwidth")
    if label == "fixed":
        return tk.expected_variance(n, m, h), tk.mean_variance(n, m, h)
    if label == "scott":
        return tk.rule_expected_variance(n, m, 1.0, "scott"), tk.rule_mean_variance(n, m)
    if label == "fresh":
        return tuple(tk.fresh_moments(n, m, h, settings["alpha"]))
    return tuple(tk.accumulate_moments(n, m, h))


def _wrong_variance(label, settings, n):
    m, h = settings["sample_size"], settings.get("bandwidth")
    r = (m - 1) / m
    if label == "fixed":
        return r**n  # the Gaussian MLE collapse, without the h^2 term
    if label == "scott":
        return (r * (1 + m**-0.4)) ** n  # the rule with the MLE sd
    if label == "fresh":  # the Gaussian F1 chain, without the kernel's h^2
        return mixing.fresh_fraction_variance(n, m, settings["alpha"]).expected_variance
    return tk.expected_variance(n, m, h)  # the replace chain's formula


@pytest.mark.statistical
def test_variance_and_mean_agree_with_theory(chain):
    label, settings, res = chain
    n = res.generations[1:]
    var_th, mean_var_th = (np.asarray(x) for x in _theory(label, settings, n))
    v, mu = res.moments["variance"], res.moments["mean"]
    emp = np.concatenate([v.mean[1:], mu.mean[1:], mu.var[1:]])
    se = np.concatenate([v.sem[1:], mu.sem[1:], mu.var_se[1:]])
    th = np.concatenate([var_th, np.zeros(n.size), mean_var_th])
    z = assert_agree(emp, se, th, f"kde {label}")
    assert z.size == 3 * n.size
    # generation 0 is the real N(0, 1) held as a one-point KDE: exactly
    assert v.mean[0] == 1.0 and mu.mean[0] == 0.0


@pytest.mark.statistical
def test_wrong_formulas_are_rejected(chain):
    label, settings, res = chain
    n = res.generations[1:]
    v = res.moments["variance"]
    # the Bonferroni count of the agreement test (3 G comparisons)
    alpha = FALSE_FAILURE_RATE / 3
    wrong = np.asarray(_wrong_variance(label, settings, n))
    assert_rejects(v.mean[1:], v.sem[1:], wrong, f"kde {label}: wrong variance", alpha=alpha)


@pytest.mark.statistical
def test_variance_grows_the_opposite_of_collapse(chain):
    label, settings, res = chain
    v = res.moments["variance"]
    g = len(res.generations) - 1
    # at the last generation the mean variance exceeds the real one by many SEs
    assert (v.mean[g] - 1.0) / v.sem[g] > 10, (label, v.mean[g], v.sem[g])
    if label == "accumulate":
        # fit t stores every point so far: t M of them
        fits = np.arange(1, g + 1)
        np.testing.assert_array_equal(res.moments["train_size"].mean[1:], 10 * fits)


# ------------------------------------------------------------------------- the record, exact

POINTS = np.array([-1.3, 0.2, 0.25, 2.0, 3.1])


def _params(points, h, capacity=8):
    x = np.zeros(capacity)
    x[: len(points)] = points
    return fk.KDEParams(jnp.asarray(x), jnp.asarray(float(len(points))), jnp.asarray(h))


@pytest.mark.unit
@pytest.mark.parametrize("h", [0.05, 0.7])
def test_record_against_scipy(h):
    rec = jax.jit(fk.kde_record(0.5, 2.0, 1.5, 40))(_params(POINTS, h))
    # tail mass of the mixture, by scipy's normal survival functions
    lo, hi = 0.5 - 1.5 * 2.0, 0.5 + 1.5 * 2.0
    tail = np.mean(st.norm.cdf(lo, POINTS, h) + st.norm.sf(hi, POINTS, h))
    np.testing.assert_allclose(rec.tail_mass, tail, rtol=1e-12, atol=1e-15)
    # log-likelihood of the shared held-out sample, by scipy's gaussian_kde at bandwidth h
    y = np.asarray(fk.heldout_sample(40, 0.5, 2.0, jnp.float64))
    kde = st.gaussian_kde(POINTS, bw_method=h / np.std(POINTS, ddof=1))
    np.testing.assert_allclose(rec.heldout_loglik, np.mean(kde.logpdf(y)), rtol=1e-10)
    s = np.var(POINTS)
    np.testing.assert_allclose(rec.points_var, s, rtol=1e-13)
    np.testing.assert_allclose(rec.variance, s + h * h, rtol=1e-13)
    np.testing.assert_allclose(rec.mean, POINTS.mean(), rtol=1e-13)
    assert rec.fit_bandwidth == h


@pytest.mark.unit
def test_real_params_record_the_real_distribution():
    rec = fk.kde_record(0.5, 2.0, 1.5, 40)(fk.real_params(8, 0.5, 2.0, jnp.float64))
    y = np.asarray(fk.heldout_sample(40, 0.5, 2.0, jnp.float64))
    np.testing.assert_allclose(rec.heldout_loglik, np.mean(st.norm.logpdf(y, 0.5, 2.0)), 1e-12)
    np.testing.assert_allclose(rec.tail_mass, 2 * st.norm.sf(1.5), rtol=1e-12)
    assert rec.variance == 4.0 and rec.mean == 0.5


@pytest.mark.unit
@pytest.mark.parametrize("rule", ["scott", "silverman"])
def test_rules_are_scipys_bandwidths(rule):
    fam = fk.kde(8, rule)
    fitted = fam.fit(None, jnp.asarray(POINTS))
    ref = st.gaussian_kde(POINTS, bw_method=rule)
    np.testing.assert_allclose(fitted.bandwidth, np.sqrt(ref.covariance[0, 0]), rtol=1e-13)
    assert float(fitted.count) == POINTS.size


@pytest.mark.statistical
def test_sampler_draws_the_mixture():
    h, n = 0.3, 40_000
    params = _params(POINTS, h)
    x = np.asarray(jax.jit(lambda k: fk.sample(k, params, n))(root_key(4)))

    def cdf(scale):
        return lambda t: np.mean(st.norm.cdf(np.asarray(t)[:, None], POINTS, scale), axis=1)

    p = st.kstest(x, cdf(h)).pvalue
    assert p >= FALSE_FAILURE_RATE, p
    # the same test rejects the mixture with a bandwidth 25% off
    assert st.kstest(x, cdf(1.25 * h)).pvalue < FALSE_FAILURE_RATE


# ------------------------------------------------------------------------------- bad input

BAD = [
    (dict(bandwidth=0.0), "bandwidth=0.0"),
    (dict(bandwidth=-0.5), "bandwidth=-0.5"),
    (dict(bandwidth=float("inf")), "bandwidth=inf"),
    (dict(rule="gaussian"), "rule='gaussian'"),
    (dict(sample_size=1), "sample_size=1"),
    (dict(sigma0=0.0), "sigma0=0.0"),
    (dict(heldout_size=0), "heldout_size=0"),
    (dict(regime="fresh", alpha=1.5), "alpha=1.5"),
]


@pytest.mark.unit
@pytest.mark.parametrize("given, shown", BAD, ids=[b[1] for b in BAD])
def test_bad_settings_are_refused_in_one_line(given, shown):
    # the spec's check refuses it (run calls it before building or compiling anything)
    with pytest.raises(ValueError) as checked:
        families.get("kde").settings(**given)
    with pytest.raises(ValueError) as err:
        run("kde", root_key(0), num_chains=4, num_generations=2, progress=False, **given)
    msg = str(err.value)
    assert msg == str(checked.value)
    assert shown in msg and "\n" not in msg, msg


@pytest.mark.unit
def test_family_builders_refuse_bad_arguments():
    for call, shown in (
        (lambda: fk.kde(8, "fixed", 0.0), "bandwidth=0.0"),
        (lambda: fk.kde(8, "nope"), "rule='nope'"),
        (lambda: fk.kde(0), "capacity=0"),
        (lambda: fk.kde_family(8, "fixed", -1.0), "bandwidth=-1.0"),
    ):
        with pytest.raises(ValueError, match=shown.replace("(", r"\(")):
            call()
