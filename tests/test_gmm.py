"""The Gaussian-mixture family: EM, the L2 distance, the floors, the chain against theory.

Exact (unit) tests: EM in JAX against a direct NumPy EM on the same points and
start, a fixed iteration count, 1-D and 2-D, to float64 rounding; the
closed-form L2 distance against numerical quadrature (scipy ``quad`` /
``dblquad``); the floors on constructed degenerate sets; validation.

Statistical tests (z-scores with Monte-Carlo standard errors, Bonferroni at
``tests/stats.FALSE_FAILURE_RATE`` per test, each shown to reject a wrong
formula):

* K = 1 reproduces the Gaussian MLE chain: E and Var of log sigma_n^2
  (``theory.gaussian``, THEORY.md G3) at d = 1 and of log det Sigma_n
  (``theory.multivariate``, W2) at d = 2; the unbiased estimator's formula is
  rejected by the same data.
* Any K: the mixture's total covariance and mean after an M-step are the
  training points' MLE covariance and mean (``sim/families/gmm/record.py``), so
  E tr Sigma_tot,n = r^n tr Sigma_0 and E||mu_n - mu_0||^2 =
  (tr Sigma_0 / M) sum_{t<n} r^t with r = (M-1)/M; r = 1 is rejected.
* The sampler: a Kolmogorov-Smirnov test of 1-D draws against the mixture's
  CDF, rejecting the mixture with its weights swapped.
"""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import integrate  # noqa: E402
from scipy import stats as st  # noqa: E402

from sim import families  # noqa: E402
from sim.chain import root_key  # noqa: E402
from sim.families import gmm as fg  # noqa: E402
from sim.regimes import Regime  # noqa: E402
from sim.run import run  # noqa: E402
from tests.stats import FALSE_FAILURE_RATE, assert_agree, assert_rejects  # noqa: E402
from theory import gaussian as tg  # noqa: E402
from theory import multivariate as tm  # noqa: E402

SPEC = families.get("gmm")
# one compiled EM per shape and budget, shared by the tests below
EM = jax.jit(fg.em, static_argnames=("max_steps",))


def params(weights, means, covs):
    return fg.GmmParams(
        jnp.asarray(weights, jnp.float64),
        jnp.asarray(means, jnp.float64),
        jnp.asarray(covs, jnp.float64),
    )


# ------------------------------------------------------------------ NumPy reference EM


def numpy_em(x, keep, weights, means, covs, steps, cov_floor=0.0, weight_floor=0.0):
    """A direct EM (scipy densities, NumPy sums) on the points ``x[keep]``; returns the
    params and the mean log-likelihood per point of the final params."""
    x = np.asarray(x, np.float64)[np.asarray(keep, bool)]
    w, mu, cov = (np.array(a, np.float64) for a in (weights, means, covs))
    k = len(w)

    def e_step(w, mu, cov):
        dens = np.stack(
            [w[j] * st.multivariate_normal(mu[j], cov[j]).pdf(x).reshape(-1) for j in range(k)], 1
        )
        total = dens.sum(1)
        return dens / total[:, None], np.mean(np.log(total))

    resp, ll = e_step(w, mu, cov)
    for _ in range(steps):
        nk = resp.sum(0)
        w = nk / len(x)
        mu = (resp.T @ x) / nk[:, None]
        cov = np.stack(
            [((resp[:, j, None] * (x - mu[j])).T @ (x - mu[j])) / nk[j] for j in range(k)]
        )
        for j in range(k):
            lam = np.linalg.eigvalsh(cov[j])[0]
            if lam < cov_floor:
                cov[j] += (cov_floor - lam) * np.eye(x.shape[1])
        low = w < weight_floor
        w = np.where(low, weight_floor, w * (1 - low.sum() * weight_floor) / w[~low].sum())
        resp, ll = e_step(w, mu, cov)
    return w, mu, cov, ll


EM_CASES = {
    "1d-K2": dict(
        real=params([0.3, 0.7], [[-1.5], [2.0]], [[[0.5]], [[1.5]]]),
        start=params([0.5, 0.5], [[-1.0], [1.0]], [[[1.0]], [[1.0]]]),
        n=300,
    ),
    "2d-K3": dict(
        real=params(
            [0.2, 0.5, 0.3],
            [[-3.0, 0.0], [0.0, 2.0], [3.0, -1.0]],
            [[[1.0, 0.3], [0.3, 0.5]], [[0.7, -0.2], [-0.2, 1.2]], [[0.4, 0.0], [0.0, 0.4]]],
        ),
        start=params(
            [1 / 3, 1 / 3, 1 / 3],
            [[-2.0, 0.5], [0.5, 1.0], [2.0, 0.0]],
            np.broadcast_to(np.eye(2), (3, 2, 2)),
        ),
        n=400,
    ),
}


@pytest.mark.unit
@pytest.mark.parametrize("case", sorted(EM_CASES))
def test_em_equals_a_numpy_em_for_a_fixed_iteration_count(case):
    c = EM_CASES[case]
    steps = 7
    data = fg.sample(jax.random.key(3), c["real"], c["n"])
    keep = np.ones(c["n"], bool)
    keep[::5] = False  # 0/1 weights, as a regime's filtered set gives them
    got, info = EM(
        data.points,
        jnp.asarray(keep, jnp.float64),
        c["start"],
        max_steps=steps,
        tol=0.0,
        cov_floor=1e-9,
        weight_floor=1e-9,
    )
    w, mu, cov, ll = numpy_em(data.points, keep, *c["start"], steps)
    np.testing.assert_allclose(got.weights, w, rtol=1e-10)
    np.testing.assert_allclose(got.means, mu, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.covs, cov, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(info.log_likelihood, ll, rtol=1e-12)
    assert int(info.iterations) == steps
    assert float(info.weight_floored) == 0 and float(info.cov_floored) == 0
    # the family's fit is this EM from the params the points were drawn from
    fam = fg.gmm(len(w), got.means.shape[1], steps, 0.0, 1e-9, 1e-9)
    via, _ = fam.fit_info(None, fg.as_sample(data.points, c["start"]))
    w_all, mu_all, _, _ = numpy_em(data.points, np.ones(c["n"]), *c["start"], steps)
    np.testing.assert_allclose(via.weights, w_all, rtol=1e-10)
    np.testing.assert_allclose(via.means, mu_all, rtol=1e-10, atol=1e-12)


@pytest.mark.unit
def test_tolerance_stops_early_and_the_budget_caps():
    c = EM_CASES["1d-K2"]
    x = fg.sample(jax.random.key(4), c["real"], c["n"]).points
    w = jnp.ones(c["n"])

    def fit(tol):  # the program of the test above (same shapes and budget)
        return EM(x, w, c["start"], max_steps=7, tol=tol, cov_floor=1e-9, weight_floor=1e-9)

    _, loose = fit(1e-2)
    _, capped = fit(0.0)
    assert 1 <= int(loose.iterations) < 7 and abs(float(loose.ll_change)) < 1e-2
    assert int(capped.iterations) == 7 and float(capped.ll_change) > 0
    assert float(capped.log_likelihood) > float(loose.log_likelihood)  # EM ascends


# -------------------------------------------------------------------- the L2 distance


@pytest.mark.unit
def test_l2_distance_equals_quadrature_1d():
    a = params([0.3, 0.7], [[-1.0], [1.5]], [[[0.4]], [[1.3]]])
    b = params([0.6, 0.4], [[-0.5], [2.5]], [[[0.9]], [[0.2]]])

    def dens(p, t):
        return sum(
            float(p.weights[k]) * st.norm.pdf(t, float(p.means[k, 0]), np.sqrt(p.covs[k, 0, 0]))
            for k in range(2)
        )

    quad, err = integrate.quad(
        lambda t: (dens(a, t) - dens(b, t)) ** 2, -15, 15, epsabs=1e-14, epsrel=1e-13, limit=200
    )
    assert err < 1e-11 * quad
    np.testing.assert_allclose(float(fg.l2_distance(a, b)), np.sqrt(quad), rtol=1e-10)
    assert float(fg.l2_distance(a, a)) < 1e-7  # sqrt of a rounding-level bracket


@pytest.mark.unit
def test_l2_distance_equals_quadrature_2d():
    a = params(
        [0.4, 0.6],
        [[-1.0, 0.0], [1.0, 0.5]],
        [[[1.0, 0.3], [0.3, 0.6]], [[0.5, -0.1], [-0.1, 0.8]]],
    )
    b = params([1.0], [[0.2, 0.1]], [[[1.5, 0.2], [0.2, 1.1]]])

    nodes, wts = np.polynomial.legendre.leggauss(400)  # Gauss-Legendre on [-10, 10]^2
    t, wt = 10.0 * nodes, 10.0 * wts
    grid = np.stack(np.meshgrid(t, t, indexing="ij"), -1)

    def dens(p):
        return sum(
            float(p.weights[k])
            * st.multivariate_normal(np.asarray(p.means[k]), np.asarray(p.covs[k])).pdf(grid)
            for k in range(len(p.weights))
        )

    quad = np.einsum("i,j,ij->", wt, wt, (dens(a) - dens(b)) ** 2)
    np.testing.assert_allclose(float(jax.jit(fg.l2_distance)(a, b)) ** 2, quad, rtol=1e-10)


# ----------------------------------------------------------------------------- floors


@pytest.mark.unit
def test_floors_fire_on_degenerate_components():
    # 2-D: 60 points around the origin, 3 copies of one far point: the second
    # component settles on the copies (zero covariance: the covariance floor), and a
    # third starts where no point is (no responsibility: the weight floor; it keeps its
    # start's mean and covariance).
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(60, 2)), np.full((3, 2), 8.0)])
    start = params(
        [0.4, 0.3, 0.3],
        [[0.0, 0.0], [8.0, 8.0], [-40.0, 40.0]],
        np.broadcast_to(np.eye(2), (3, 2, 2)),
    )
    cov_floor, weight_floor = 1e-3, 1e-4
    got, info = fg.em(
        jnp.asarray(x),
        jnp.ones(len(x)),
        start,
        max_steps=10,
        tol=0.0,
        cov_floor=cov_floor,
        weight_floor=weight_floor,
    )
    assert float(info.cov_floored) == 1 and float(info.weight_floored) == 1
    lam = np.linalg.eigvalsh(np.asarray(got.covs))
    np.testing.assert_allclose(lam[1].min(), cov_floor, rtol=1e-9)
    assert lam[0].min() > cov_floor
    np.testing.assert_allclose(float(got.weights[2]), weight_floor, rtol=1e-12)
    np.testing.assert_allclose(float(jnp.sum(got.weights)), 1.0, rtol=1e-14)
    np.testing.assert_array_equal(got.means[2], start.means[2])
    np.testing.assert_array_equal(got.covs[2], start.covs[2])
    assert np.isfinite(float(info.log_likelihood))


@pytest.mark.unit
def test_split_init_starts_from_equal_groups_by_first_coordinate():
    x = jnp.asarray([[5.0], [1.0], [3.0], [2.0], [9.0], [4.0]])
    keep = jnp.asarray([1.0, 1.0, 1.0, 1.0, 0.0, 1.0])  # 9.0 is not in the set
    p = jax.jit(fg.split_init, static_argnums=2)(x, keep, 2)
    # ranks 0.5..4.5 of 5 kept points, cut at 2.5: the middle point (3) goes right
    np.testing.assert_allclose(p.weights, [0.4, 0.6])
    np.testing.assert_allclose(p.means[:, 0], [1.5, 4.0])


# ------------------------------------------------------------------------- validation


BAD = [
    (dict(components=0), "components=0"),
    (dict(dim=0), "dim=0"),
    (dict(components=3, dim=2, sample_size=8), "sample_size=8"),
    (dict(cov_floor=0.0), "cov_floor=0.0"),
    (dict(weight_floor=-1e-3), "weight_floor=-0.001"),
    (dict(weight_floor=0.5), "weight_floor=0.5"),
    (dict(tol=-1.0), "tol=-1.0"),
    (dict(max_steps=0), "max_steps=0"),
    (dict(lost_weight=0.6), "lost_weight=0.6"),
    (dict(separation=-1.0), "separation=-1.0"),
    (dict(regime="accumulate"), "regime='accumulate'"),
    (dict(regime="anchored"), "regime='anchored"),
    (dict(regime=Regime.fresh(0.5, mixing="binomial")), "needs exact draws"),
    (dict(regime=Regime.replace(schedule=(10, 20))), "needs exact draws"),
]


@pytest.mark.unit
@pytest.mark.parametrize("given, shown", BAD, ids=[b[1] for b in BAD])
def test_bad_settings_are_refused_in_one_line(given, shown):
    with pytest.raises(ValueError) as err:
        SPEC.settings(**given)
    msg = str(err.value)
    assert shown in msg and "\n" not in msg, msg


@pytest.mark.unit
def test_bad_input_is_refused_before_compiling():
    with pytest.raises(ValueError, match="components=0"):
        fg.gmm(0, 1)
    with pytest.raises(ValueError, match=r"weight_floor=0.4 must be < 1/components"):
        fg.gmm(3, 1, weight_floor=0.4)
    with pytest.raises(ValueError, match="sample_size=3"):
        run("gmm", root_key(0), num_chains=2, num_generations=1, sample_size=3)
    fam = fg.gmm(4, 1)
    with pytest.raises(ValueError, match="sample_size=2 points"):
        fam.fit(None, fg.as_sample(jnp.zeros((2, 1)), fg.real_params(4, 1)))


# ---------------------------------------------------------------------------- sampler


@pytest.mark.statistical
def test_sample_draws_labels_then_points():
    p = params([0.25, 0.75], [[-2.0], [1.0]], [[[0.5]], [[2.0]]])
    x = np.asarray(jax.jit(lambda k: fg.sample(k, p, 20_000).points)(jax.random.key(9)))[:, 0]

    def cdf(weights):
        return lambda t: sum(
            wk * st.norm.cdf(t, float(p.means[k, 0]), np.sqrt(float(p.covs[k, 0, 0])))
            for k, wk in enumerate(weights)
        )

    assert st.kstest(x, cdf([0.25, 0.75])).pvalue >= FALSE_FAILURE_RATE
    assert st.kstest(x, cdf([0.75, 0.25])).pvalue < FALSE_FAILURE_RATE  # weights swapped


# ---------------------------------------------------------------- chains against theory

CHAINS = 2000
GENS = (1, 2, 5, 10, 20)


def _chain(**settings):
    return run(
        "gmm",
        root_key(21),
        num_chains=CHAINS,
        num_generations=GENS[-1],
        progress=False,
        **settings,
    )


@pytest.fixture(scope="module")
def single_1d():
    return _chain(components=1, dim=1, sample_size=12, max_steps=3, tol=0.0)


@pytest.fixture(scope="module")
def mixture_1d():
    return _chain(components=2, dim=1, sample_size=100, separation=4.0, max_steps=8, tol=1e-6)


@pytest.mark.statistical
def test_one_component_reproduces_the_gaussian_mle_chain(single_1d):
    """K = 1, d = 1, M = 12: log sigma_n^2 against THEORY.md G3 (mean by sem, variance by
    var_se), the mean's squared error against G5; one M-step is the MLE, so every fit
    after the first iteration stays put (recorded: the last change is 0)."""
    n, m = np.asarray(GENS), 12
    mo = single_1d.moments["log_det_cov"]
    mse = single_1d.moments["mean_sq_error"]
    emp = np.concatenate([mo.mean[n], mo.var[n], mse.mean[n]])
    se = np.concatenate([mo.sem[n], mo.var_se[n], mse.sem[n]])
    want = np.concatenate(
        [
            tg.log_variance_mean(n, m, "mle"),
            tg.log_variance_var(n, m, "mle"),
            tg.mean_variance(n, m, "mle"),
        ]
    )
    assert_agree(emp, se, want, "K=1 Gaussian chain")
    wrong = np.concatenate(
        [
            tg.log_variance_mean(n, m, "unbiased"),
            tg.log_variance_var(n, m, "unbiased"),
            tg.mean_variance(n, m, "unbiased"),
        ]
    )
    assert_rejects(emp, se, wrong, "K=1 against the unbiased chain")
    assert np.all(np.abs(single_1d.moments["ll_change"].mean[1:]) < 1e-12)  # rounding only
    assert np.all(single_1d.moments["weight_floored"].mean == 0)
    assert np.all(single_1d.moments["cov_floored"].mean == 0)


@pytest.mark.statistical
def test_one_component_in_two_dimensions_follows_the_wishart_log_det():
    res = run(
        "gmm",
        root_key(22),
        num_chains=1000,
        num_generations=10,
        components=1,
        dim=2,
        sample_size=10,
        max_steps=2,
        tol=0.0,
        progress=False,
    )
    n, m = np.asarray([1, 3, 10]), 10
    mo = res.moments["log_det_cov"]
    emp = np.concatenate([mo.mean[n], mo.var[n]])
    se = np.concatenate([mo.sem[n], mo.var_se[n]])
    want = np.concatenate([tm.log_det_mean(n, m, 2, "mle"), tm.log_det_var(n, m, 2)])
    assert_agree(emp, se, want, "K=1, d=2 log det")
    wrong = np.concatenate([tm.log_det_mean(n, m, 2, "unbiased"), tm.log_det_var(n, m, 2)])
    assert_rejects(emp, se, wrong, "K=1, d=2 against the unbiased log det")


@pytest.mark.statistical
def test_mixture_total_moments_follow_the_mle_covariance_chain(mixture_1d):
    """K = 2: E tr Sigma_tot,n = r^n tr Sigma_0 and E||mu_n - mu_0||^2 by W1 (exact for
    any sampled law while no floor fires); r = 1 (no shrinkage) is rejected."""
    n, m = np.asarray(GENS), 100
    tr0 = 1.0 + 4.0  # d + s^2 / 4 for two components at +-s/2, s = 4
    tr, mse = mixture_1d.moments["trace_cov"], mixture_1d.moments["mean_sq_error"]
    emp = np.concatenate([tr.mean[n], mse.mean[n]])
    se = np.concatenate([tr.sem[n], mse.sem[n]])
    want = tr0 * np.concatenate([tg.expected_variance(n, m, "mle"), tg.mean_variance(n, m, "mle")])
    assert_agree(emp, se, want, "mixture total moments")
    wrong = tr0 * np.concatenate(
        [tg.expected_variance(n, m, "unbiased"), tg.mean_variance(n, m, "unbiased")]
    )
    assert_rejects(emp, se, wrong, "mixture total moments against r = 1")
    # A floored weight or covariance (a degenerate component, here in under 1% of
    # the chains) moves the total moments by
    # O(K weight_floor) = O(1e-6), far below their standard errors.
    assert np.all(mixture_1d.moments["weight_floored"].mean < 0.01)
    assert np.all(mixture_1d.moments["cov_floored"].mean < 0.01)
    np.testing.assert_allclose(
        SPEC.theory(SPEC.settings(components=2, sample_size=100), n)["trace_cov"]["mean"],
        want[: len(n)],
        rtol=1e-12,
    )


@pytest.mark.unit
def test_record_sorts_components_by_mean():
    rec = fg.gmm_record(2, 1, 4.0, 0.01)
    p = params([0.995, 0.005], [[3.0], [-1.0]], [[[2.0]], [[0.5]]])
    info = fg.GmmInfo(*(jnp.zeros(()),) * 5)
    r = rec(p, info)
    np.testing.assert_array_equal(r.weights, [0.005, 0.995])
    np.testing.assert_array_equal(r.means[:, 0], [-1.0, 3.0])
    np.testing.assert_array_equal(r.variances[:, 0], [0.5, 2.0])
    assert float(r.lost) == 1.0  # 0.005 < lost_weight = 0.01
    real = fg.real_params(2, 1, 4.0, jnp.float64)
    assert float(rec(real, info).l2_distance) < 1e-7
    assert float(rec(real, info).lost) == 0.0


@pytest.mark.unit
def test_chain_records_start_at_the_real_mixture(mixture_1d):
    mo = mixture_1d.moments
    np.testing.assert_allclose(mo["means"].mean[0, :, 0], [-2.0, 2.0])
    assert np.all(mo["means"].mean[:, 0, 0] < mo["means"].mean[:, 1, 0])
    assert mo["l2_distance"].mean[0] < 1e-7 and np.all(mo["l2_distance"].mean[1:] > 1e-3)
    assert mo["em_iterations"].mean[0] == 0 and np.all(mo["em_iterations"].mean[1:] >= 1)
