"""The Poisson chain against theory.poisson, and its sampler against the Poisson law.

Statistical tests compare, generation by generation, the cross-chain mean and
variance of the fitted rate and the fraction of extinct chains with the exact
``theory.poisson`` values, by z-scores with their Monte-Carlo standard errors
(the mean's ``sem``, the variance's ``var_se`` from the fourth moment, the
binomial SE of a fraction at the predicted probability), Bonferroni over all
comparisons of a test at ``tests/stats.FALSE_FAILURE_RATE``. The same data
reject deliberately wrong formulas: the survival law indexed one fit late
(:math:`g_{n+1}` in place of :math:`g_n`) and the variance
:math:`(n+1)\\lambda_0/M`. The sampler ``sim.random.poisson`` is tested by a
chi-square goodness of fit against scipy's Poisson pmf, which rejects a mean
3% off (or 1 off for a small mean).

Cost: each distinct program compiles once (the exact gamma-binomial Poisson
sampler is 10-20 CPU seconds of XLA compilation per program on this 2-core
CPU), so the file runs four programs: the chain with ``method="sample"`` at
(M, lam0) = (5, 0.4), with ``method="exact"`` at (2, 1.5), the sampler alone,
and the family's ``sample`` / ``sample_stats`` pair.
"""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import stats as st  # noqa: E402

from sim import random as sr  # noqa: E402
from sim.chain import root_key  # noqa: E402
from sim.families import poisson as fp  # noqa: E402
from sim.run import run  # noqa: E402
from tests.stats import (  # noqa: E402
    FALSE_FAILURE_RATE,
    assert_agree,
    assert_rejects,
    binomial_se,
)
from theory import poisson as tp  # noqa: E402

pytestmark = pytest.mark.statistical

CHAINS = 40_000
GENERATIONS = 30
# (method, M, lam0): absorption is quick (P(extinct) = 0.14 / 0.05 at fit 1, 0.87 / 0.83 at 30)
CHAIN_CASES = [("sample", 5, 0.4), ("exact", 2, 1.5)]


@pytest.fixture(scope="module", params=CHAIN_CASES, ids=lambda c: f"{c[0]}-M{c[1]}-lam{c[2]}")
def chain(request):
    method, m, lam0 = request.param
    res = run(
        "poisson",
        root_key(12),
        num_chains=CHAINS,
        num_generations=GENERATIONS,
        sample_size=m,
        lam0=lam0,
        method=method,
        progress=False,
    )
    return res, m, lam0


def _columns(res, m, lam0, wrong: bool = False):
    """(empirical, se, theory) per comparison; generation 0 (a constant) is left out."""
    n = res.generations[1:]
    rate, extinct = res.moments["rate"], res.moments["extinct"]
    shift = 1 if wrong else 0
    mean_th = np.asarray(tp.expected_rate(n, m, lam0))
    var_th = np.asarray(tp.rate_variance(n + shift, m, lam0))
    zero_th = np.asarray(tp.zero_probability(n + shift, m, lam0))
    zero_ok = np.asarray(tp.zero_probability(n, m, lam0))
    return {
        "mean": (rate.mean[1:], rate.sem[1:], mean_th),
        "var": (rate.var[1:], rate.var_se[1:], var_th),
        # the SE at the correct probability: the test's null is the right formula
        "extinct": (extinct.mean[1:], binomial_se(zero_ok, res.num_chains), zero_th),
    }


def test_mean_variance_and_extinction_agree_with_theory(chain):
    res, m, lam0 = chain
    cols = _columns(res, m, lam0)
    emp, se, th = (np.concatenate([c[i] for c in cols.values()]) for i in range(3))
    z = assert_agree(emp, se, th, f"poisson M={m} lam0={lam0}")
    assert z.size == 3 * GENERATIONS


def test_wrong_formulas_are_rejected(chain):
    res, m, lam0 = chain
    wrong = _columns(res, m, lam0, wrong=True)
    # the same Bonferroni count as the agreement test (3 G comparisons)
    alpha = FALSE_FAILURE_RATE / 3
    assert_rejects(*wrong["extinct"], "survival law with g_{n+1}", alpha=alpha)
    assert_rejects(*wrong["var"], "variance (n+1) lam0 / M", alpha=alpha)


def test_extinction_is_absorbing(chain):
    res, _, _ = chain
    first = res.first_passage["extinct"]
    final = np.asarray(res.final.rate)
    assert np.all(final[first >= 0] == 0)  # once 0, always 0
    assert np.all((final == 0) == (first >= 0))  # 0 at the end means it was absorbed
    survivors = final[final > 0]
    m = chain[1]
    counts = survivors * m  # M lam_n is the integer total of the last training set
    np.testing.assert_allclose(counts, np.round(counts), rtol=4e-16)
    assert np.all(np.round(counts) >= 1)
    # the fraction extinct by G is the record's mean at G, chain for chain
    assert np.mean(first >= 0) == res.moments["extinct"].mean[-1]


# ----------------------------------------------------------------------------- the family


def test_stats_of_sample_equal_sample_stats():
    fam = fp.poisson()
    n = 7

    @jax.jit
    def pair(keys, rates):
        def one(k, r):
            params = fp.PoissonParams(r)
            return fam.ops.stats(fam.sample(k, params, n)), fam.ops.sample_stats(k, params, n)

        return jax.vmap(one)(keys, rates)

    rates = jnp.tile(jnp.asarray([0.0, 0.3, 2.5, 40.0]), 500)
    keys = jax.random.split(root_key(3), rates.shape[0])
    direct, via = pair(keys, rates)
    np.testing.assert_array_equal(np.asarray(direct.count), np.full(rates.shape, n))
    np.testing.assert_array_equal(np.asarray(direct.count), np.asarray(via.count))
    np.testing.assert_array_equal(np.asarray(direct.total), np.asarray(via.total))
    assert np.all(np.asarray(via.total)[np.asarray(rates) == 0] == 0)


# ----------------------------------------------------------------------------- the sampler

MEANS = (0.0, 0.3, 5.0, 60.0, 1e4)
DRAWS = 50_000


def _wrong_mean(mu):
    return mu + 1.0 if mu < 1 else mu * 1.03


def _chi2_p_value(x, mu):
    """Chi-square goodness of fit of integer draws ``x`` to Poisson(mu).

    Bins are runs of consecutive integers, each with expected count >= 20 and
    probability >= 1% (at most 100 bins), the outer ones holding the tails.
    """
    n = x.size
    hi = int(mu + 12 * np.sqrt(mu) + 30)
    pmf = st.poisson.pmf(np.arange(hi + 1), mu)
    need = max(20.0 / n, 0.01)
    edges, acc = [], 0.0
    for k in range(hi + 1):
        acc += pmf[k]
        if acc >= need and st.poisson.sf(k, mu) >= need:
            edges.append(k)
            acc = 0.0
    # bin j holds edges[j-1] < x <= edges[j]; the last bin everything above the last edge
    cdf = st.poisson.cdf(np.asarray(edges), mu)
    probs = np.diff(np.concatenate([[0.0], cdf, [1.0]]))
    observed = np.bincount(np.searchsorted(edges, x, side="left"), minlength=len(probs))
    stat = np.sum((observed - n * probs) ** 2 / (n * probs))
    return float(st.chi2.sf(stat, len(probs) - 1))


@pytest.fixture(scope="module")
def draws():
    @jax.jit
    def go(key):
        keys = jax.random.split(key, (len(MEANS), DRAWS))
        means = jnp.asarray(MEANS)
        return jax.vmap(lambda ks, mu: jax.vmap(lambda k: sr.poisson(k, mu))(ks))(keys, means)

    return np.asarray(go(root_key(5)))


def test_sampler_draws_are_poisson(draws):
    assert draws.dtype == np.float64
    np.testing.assert_array_equal(draws, np.round(draws))
    assert np.all(draws >= 0)
    assert np.all(draws[0] == 0)  # mu = 0: exactly 0
    tested = [(mu, x) for mu, x in zip(MEANS, draws, strict=True) if mu > 0]
    alpha = FALSE_FAILURE_RATE / len(tested)  # Bonferroni over the means
    for mu, x in tested:
        p = _chi2_p_value(x.astype(np.int64), mu)
        assert p > alpha, f"mu={mu}: chi-square p = {p:.3g} <= {alpha:.3g}"


def test_sampler_test_rejects_a_wrong_mean(draws):
    tested = [(mu, x) for mu, x in zip(MEANS, draws, strict=True) if mu > 0]
    alpha = FALSE_FAILURE_RATE / len(tested)
    for mu, x in tested:
        p = _chi2_p_value(x.astype(np.int64), _wrong_mean(mu))
        assert p <= alpha, f"mu={mu}: Poisson({_wrong_mean(mu)}) not rejected, p = {p:.3g}"
