"""Data regimes (sim.regimes) against theory.mixing and against each other.

* Exact: the replace regime reproduces the plain chain's draws; accumulating
  summaries equals refitting the stored points; a regime's state does not grow
  with generations; bad settings raise errors that name the value.
* Statistical (fixed seeds; Bonferroni z-tests at tests/stats.FALSE_FAILURE_RATE
  per test function; each test also shows that a wrong formula is rejected):
  fresh real data (F1, fixed and binomial counts), accumulate (mean and variance
  refitted; L3 with known sigma), anchored (F3), sample-size schedules (G6),
  verification filters (acceptance rate given the previous fit), and the
  martingale of the fitted categorical distribution under every unfiltered
  regime.
"""

import jax

jax.config.update("jax_enable_x64", True)

import math  # noqa: E402

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import stats as sps  # noqa: E402

from sim.chain import params_record, replace_step  # noqa: E402
from sim.families.categorical import Vocabulary, categorical_verifier  # noqa: E402
from sim.families.gaussian import (  # noqa: E402
    gaussian,
    gaussian_record,
    gaussian_verifier,
    real_params,
)
from sim.parallel import simulate  # noqa: E402
from sim.regimes import Regime, run_regime  # noqa: E402
from sim.runners import run_categorical, run_gaussian  # noqa: E402
from tests.devices import run_on_devices  # noqa: E402
from tests.stats import assert_agree, assert_rejects  # noqa: E402
from theory import gaussian as theory_gaussian  # noqa: E402
from theory import mixing  # noqa: E402


def key(seed=0):
    return jax.random.key(seed)


def gauss(regime, *, m=10, chains=4000, gens=20, snaps=(), seed=0, **kw):
    kw.setdefault("method", "exact")
    return run_gaussian(
        key(seed),
        sample_size=m,
        num_chains=chains,
        num_generations=gens,
        regime=regime,
        snapshot_generations=snaps,
        snapshot_fields=("log_var", "mean") if snaps else (),
        dtype=jnp.float64,
        progress=False,
        **kw,
    )


def snapshot_moments(res):
    """E[sigma^2] and E[mu^2] (mu0 = 0) per snapshot, with their standard errors."""
    var = np.exp(res.snapshots["log_var"])
    mu2 = res.snapshots["mean"] ** 2
    n = var.shape[1]
    return (
        (var.mean(1), var.std(1, ddof=1) / math.sqrt(n)),
        (mu2.mean(1), mu2.std(1, ddof=1) / math.sqrt(n)),
    )


# ---------------------------------------------------------------------------
# Exact properties.
# ---------------------------------------------------------------------------


@pytest.mark.costly
@pytest.mark.unit
def test_replace_regime_reproduces_the_plain_chain():
    # Draw for draw: the regime's step against the plain chain's step called as one
    # step (sim.chain.replace_step). The engine's plain Gaussian chain draws a
    # generation ahead (sim.chain.AheadStep): the same draws, fused otherwise, so
    # equal to a few ulps per generation (1 ulp measured; 4 allowed per generation).
    kw = dict(sample_size=7, num_chains=64, num_generations=6, progress=False)
    regime = run_gaussian(key(3), regime=Regime.replace(), **kw)
    reference = simulate(
        key(3),
        replace_step(gaussian("unbiased"), 7),
        real_params(),
        params_record(gaussian_record()),
        num_generations=6,
        num_chains=64,
        progress=False,
    )
    np.testing.assert_array_equal(regime.final.params.log_var, reference.final.log_var)
    np.testing.assert_array_equal(regime.final.params.mean, reference.final.mean)
    plain = run_gaussian(key(3), **kw)
    ulps = 4 * 6 * np.finfo(np.float64).eps
    np.testing.assert_allclose(plain.final.log_var, reference.final.log_var, rtol=0, atol=ulps * 4)
    np.testing.assert_allclose(plain.final.mean, reference.final.mean, rtol=0, atol=ulps * 4)
    np.testing.assert_array_equal(regime.moments["train_size"].mean[1:], 7)
    vocab = Vocabulary.zipf(30, 1.1)
    kw = dict(vocabulary=vocab, sample_size=25, num_chains=32, num_generations=5, progress=False)
    plain = run_categorical(key(4), **kw)
    regime = run_categorical(key(4), regime=Regime.replace(), **kw)
    np.testing.assert_array_equal(regime.final.params.probs, plain.final.probs)


@pytest.mark.costly
@pytest.mark.unit
def test_accumulated_summaries_equal_refitting_the_stored_points():
    # subsample with a budget of every point ever drawn refits the stored pool;
    # accumulate merges per-generation summaries. Same draws, same fits.
    m, g = 6, 8
    fam = gaussian("unbiased")
    kw = dict(
        sample_size=m,
        real=real_params(1.5, 2.0, jnp.float64),
        record=gaussian_record(1.5, 2.0),
        num_chains=32,
        num_generations=g,
        progress=False,
    )
    acc = run_regime(key(5), fam, Regime.accumulate(), **kw)
    stored = run_regime(key(5), fam, Regime.subsample(m * g), **kw)
    for f in ("mean", "log_var"):
        np.testing.assert_allclose(
            getattr(acc.final.params, f), getattr(stored.final.params, f), rtol=1e-12, atol=1e-12
        )
    np.testing.assert_array_equal(acc.moments["train_size"].mean, stored.moments["train_size"].mean)
    assert acc.moments["train_size"].mean[-1] == m * g
    # Categorical: pooled counts and a full subsample of the pooled tokens agree exactly.
    kw = dict(vocabulary=Vocabulary.zipf(20, 1.0), sample_size=15, num_chains=16, progress=False)
    acc = run_categorical(key(6), num_generations=5, regime=Regime.accumulate(), **kw)
    full = run_categorical(key(6), num_generations=5, regime=Regime.subsample(75), **kw)
    np.testing.assert_array_equal(acc.final.pool, full.final.pool)
    np.testing.assert_array_equal(acc.final.params.probs, full.final.params.probs)


def _state_bytes(res):
    return sum(np.asarray(x).nbytes for x in jax.tree.leaves(res.final)) // res.num_chains


@pytest.mark.costly
@pytest.mark.unit
@pytest.mark.parametrize("method", ["exact", "sample"])
def test_accumulate_state_does_not_grow_with_generations(method):
    sizes = {
        g: _state_bytes(gauss(Regime.accumulate(), chains=8, gens=g, method=method))
        for g in (3, 40)
    }
    assert sizes[3] == sizes[40], sizes
    vocab = Vocabulary.zipf(20, 1.0)
    cat = {
        g: _state_bytes(
            run_categorical(
                key(),
                vocabulary=vocab,
                sample_size=10,
                num_chains=8,
                num_generations=g,
                regime=Regime.accumulate(),
                progress=False,
            )
        )
        for g in (3, 40)
    }
    assert cat[3] == cat[40], cat
    # The stored pool of subsample does grow: M points per generation.
    pool = {
        g: _state_bytes(gauss(Regime.subsample(10), chains=8, gens=g, method="sample"))
        for g in (3, 40)
    }
    assert pool[40] - pool[3] == 37 * 10 * (8 + 1), pool  # float64 point + bool weight


@pytest.mark.unit
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Regime.fresh(1.5), "alpha=1.5"),
        (lambda: Regime.fresh(-0.1), "alpha=-0.1"),
        (lambda: Regime.anchored(2.0), "lam=2.0"),
        (lambda: Regime.subsample(-3), "budget=-3"),
        (lambda: Regime.subsample(2.5), "budget=2.5"),
        (lambda: Regime.fresh(0.1, mixing="poisson"), "mixing='poisson'"),
        (lambda: Regime.replace(schedule=(10, 0)), "schedule entry=0"),
        (lambda: Regime("sideways"), "kind='sideways'"),
        (lambda: gaussian_verifier(accept_good=1.2), "accept_good=1.2"),
        (lambda: gaussian_verifier(k=-1), "k=-1"),
        (lambda: Regime.replace(schedule=(5, 6), verifier=gaussian_verifier()), "schedule"),
    ],
)
def test_bad_regimes_raise(make, match):
    with pytest.raises(ValueError, match=match.replace("(", r"\(").replace(")", r"\)")):
        make()


@pytest.mark.unit
def test_bad_combinations_raise():
    with pytest.raises(ValueError, match="schedule has 3 sizes but num_generations=5"):
        gauss(Regime.replace(schedule=(5, 6, 7)), gens=5)
    with pytest.raises(ValueError, match="draws='exact'"):
        gauss(Regime.replace(schedule=(5,) * 5), gens=5, method="sample")
    with pytest.raises(ValueError, match="verifier judges points"):
        gauss(Regime.replace(verifier=gaussian_verifier()), method="exact")
    with pytest.raises(ValueError, match="binomial"):
        gauss(Regime.fresh(0.5, mixing="binomial"), method="sample")
    with pytest.raises(ValueError, match="known_variance needs a regime"):
        run_gaussian(key(), sample_size=5, num_chains=2, num_generations=2, known_variance=1.0)
    with pytest.raises(ValueError, match="regime must be a Regime"):
        run_regime(
            key(),
            gaussian(),
            "accumulate",
            sample_size=5,
            real=real_params(),
            record=gaussian_record(),
            num_chains=2,
            num_generations=2,
        )


# ---------------------------------------------------------------------------
# Statistical tests against theory.mixing.
# ---------------------------------------------------------------------------

SNAPS = (1, 2, 5, 12, 30)


@pytest.mark.statistical
@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
def test_fresh_fraction_matches_f1(estimator):
    m, alpha = 10, 0.2
    res = gauss(Regime.fresh(alpha), m=m, chains=20000, gens=30, snaps=SNAPS, estimator=estimator)
    (ev, ev_se), (vm, vm_se) = snapshot_moments(res)
    n = np.asarray(SNAPS)
    th = mixing.fresh_fraction_variance(n, m, alpha, estimator)
    assert_agree(
        np.r_[ev, vm],
        np.r_[ev_se, vm_se],
        np.r_[th.expected_variance, th.mean_variance],
        f"F1 {estimator}",
    )
    replace = mixing.fresh_fraction_variance(n, m, 0.0, estimator)  # no real data
    assert_rejects(
        np.r_[ev, vm],
        np.r_[ev_se, vm_se],
        np.r_[replace.expected_variance, replace.mean_variance],
        "F1 vs alpha=0",
    )


@pytest.mark.statistical
def test_fresh_fraction_sample_path_and_binomial_count():
    m, alpha, snaps = 10, 0.3, (1, 3, 10)
    res = gauss(
        Regime.fresh(alpha),
        m=m,
        chains=6000,
        gens=10,
        snaps=snaps,
        method="sample",
        estimator="mle",
    )
    (ev, ev_se), (vm, vm_se) = snapshot_moments(res)
    th = mixing.fresh_fraction_variance(np.asarray(snaps), m, alpha, "mle")
    assert_agree(
        np.r_[ev, vm],
        np.r_[ev_se, vm_se],
        np.r_[th.expected_variance, th.mean_variance],
        "F1 sample path",
    )
    res = gauss(
        Regime.fresh(0.5, mixing="binomial"),
        m=4,
        chains=20000,
        gens=30,
        snaps=SNAPS,
        estimator="unbiased",
    )
    (ev, ev_se), (vm, vm_se) = snapshot_moments(res)
    n = np.asarray(SNAPS)
    th = mixing.fresh_fraction_variance(n, 4, 0.5, "unbiased", mixing="binomial")
    assert_agree(
        np.r_[ev, vm],
        np.r_[ev_se, vm_se],
        np.r_[th.expected_variance, th.mean_variance],
        "F1 binomial count",
    )
    fixed = mixing.fresh_fraction_variance(n, 4, 0.5, "unbiased", mixing="fixed")
    assert_rejects(vm, vm_se, fixed.mean_variance, "binomial vs fixed count")


@pytest.mark.statistical
@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
def test_accumulate_matches_pooled_moments(estimator):
    m = 5
    res = gauss(Regime.accumulate(), m=m, chains=20000, gens=30, snaps=SNAPS, estimator=estimator)
    (ev, ev_se), (vm, vm_se) = snapshot_moments(res)
    n = np.asarray(SNAPS)
    th = mixing.accumulate_moments(n, m, estimator)
    assert_agree(
        np.r_[ev, vm],
        np.r_[ev_se, vm_se],
        np.r_[th.expected_variance, th.mean_variance],
        f"accumulate {estimator}",
    )
    replace = theory_gaussian.expected_variance(n, m, estimator) if estimator == "mle" else None
    if replace is not None:
        assert_rejects(ev, ev_se, replace, "accumulate vs replace")
    assert_rejects(vm, vm_se, n / m, "accumulate vs replace mean drift")


@pytest.mark.statistical
def test_accumulate_known_variance_matches_l3_index():
    m = 4
    res = gauss(Regime.accumulate(), m=m, chains=20000, gens=30, snaps=SNAPS, known_variance=1.0)
    _, (vm, vm_se) = snapshot_moments(res)
    n = np.asarray(SNAPS)
    assert_agree(vm, vm_se, mixing.accumulate_mean_variance(n, m), "L3 (sum to n)")
    # THEORY.md L3 as printed sums to n + 1 with n counting fits: rejected.
    assert_rejects(vm, vm_se, mixing.accumulate_mean_variance(n + 1, m), "L3 sum to n+1")
    np.testing.assert_array_equal(np.exp(res.snapshots["log_var"]), 1.0)


@pytest.mark.statistical
def test_anchored_matches_f3():
    m, lam = 10, 0.6
    res = gauss(Regime.anchored(lam), m=m, chains=20000, gens=30, snaps=SNAPS, known_variance=1.0)
    _, (vm, vm_se) = snapshot_moments(res)
    n = np.asarray(SNAPS)
    th = mixing.anchored_mean(n, m, lam)
    assert_agree(vm, vm_se, th.variance, "F3")
    assert_rejects(vm, vm_se, mixing.anchored_mean(n, m, 1 - lam).variance, "F3 roles swapped")
    # The anchor set is drawn once: the real set's summary never changes after fit 1.
    assert float(res.moments["train_size"].mean[-1]) == m


@pytest.mark.statistical
def test_anchored_sample_path_matches_f3():
    m, lam, snaps = 8, 0.5, (1, 4, 15)
    res = gauss(
        Regime.anchored(lam),
        m=m,
        chains=8000,
        gens=15,
        snaps=snaps,
        known_variance=1.0,
        method="sample",
    )
    _, (vm, vm_se) = snapshot_moments(res)
    assert_agree(vm, vm_se, mixing.anchored_mean(np.asarray(snaps), m, lam).variance, "F3 sample")


@pytest.mark.statistical
def test_schedule_matches_g6():
    g = 40
    for power in (0.0, 1.5):
        sched = tuple(int(x) for x in mixing.power_schedule(g, 4, power))
        res = gauss(Regime.replace(schedule=sched), m=4, chains=20000, gens=g)
        w2 = res.moments["w2_squared"]
        gens = np.asarray([1, 5, 20, 40])
        th = mixing.schedule_w2(gens, np.asarray(sched, float), "unbiased")
        assert_agree(w2.mean[gens], w2.sem[gens], th.total, f"G6 p={power}")
        const = theory_gaussian.expected_w2_squared(gens, 4, "unbiased")
        if power > 0:
            assert_rejects(w2.mean[gens], w2.sem[gens], const, "G6 vs constant schedule")
        np.testing.assert_array_equal(res.moments["train_size"].mean[1:], sched)


# ---------------------------------------------------------------------------
# Verification filters.
# ---------------------------------------------------------------------------


@pytest.mark.statistical
@pytest.mark.parametrize("accept_good, accept_bad", [(1.0, 0.0), (0.8, 0.3)])
def test_gaussian_verifier_acceptance_given_previous_fit(accept_good, accept_bad):
    # Fit 1 sees real data (unfiltered); fit 2 keeps each draw of fit 1 with
    # probability q = a_g P1(|X| <= k) + a_b (1 - P1(|X| <= k)), so
    # train_size_2 - M q has mean zero given fit 1.
    m, k = 12, 1.0
    ver = gaussian_verifier(0.0, 1.0, k, accept_good=accept_good, accept_bad=accept_bad)
    res = run_gaussian(
        key(9),
        sample_size=m,
        num_chains=20000,
        num_generations=2,
        regime=Regime.replace(verifier=ver),
        snapshot_generations=(1, 2),
        snapshot_fields=("mean", "log_var", "train_size"),
        dtype=jnp.float64,
        progress=False,
    )
    mu, sd = res.snapshots["mean"][0], np.exp(0.5 * res.snapshots["log_var"][0])
    assert np.all(res.snapshots["train_size"][0] == m)  # real data are not filtered
    inside = sps.norm.cdf((k - mu) / sd) - sps.norm.cdf((-k - mu) / sd)
    kept = res.snapshots["train_size"][1]
    resid = kept - m * (accept_good * inside + accept_bad * (1 - inside))
    se = resid.std(ddof=1) / math.sqrt(resid.size)
    assert_agree(resid.mean(), se, 0.0, "verifier acceptance")
    swapped = kept - m * (accept_bad * inside + accept_good * (1 - inside))
    assert_rejects(swapped.mean(), se, 0.0, "verifier with its rates swapped")


@pytest.mark.statistical
def test_categorical_verifier_acceptance_given_previous_fit():
    vocab, m, r = Vocabulary.zipf(40, 1.1), 50, 8
    ver = categorical_verifier(vocab, float(vocab.probs[r - 1]), accept_good=0.9, accept_bad=0.2)
    res = run_categorical(
        key(10),
        vocabulary=vocab,
        sample_size=m,
        num_chains=8000,
        num_generations=2,
        tail_rank=r,
        regime=Regime.replace(verifier=ver),
        snapshot_generations=(1, 2),
        snapshot_fields=("tail_mass", "train_size"),
        dtype=jnp.float64,
        progress=False,
    )
    tail = res.snapshots["tail_mass"][0]  # fit 1's mass on ranks > r: the bad tokens
    resid = res.snapshots["train_size"][1] - m * (0.9 * (1 - tail) + 0.2 * tail)
    se = resid.std(ddof=1) / math.sqrt(resid.size)
    assert_agree(resid.mean(), se, 0.0, "categorical verifier acceptance")
    assert_rejects(resid.mean(), se, -m * 0.1, "acceptance off by 0.1")


@pytest.mark.statistical
def test_fitted_distribution_is_a_martingale_without_filters():
    # With no smoothing, bias or filter, every regime's fit is unbiased for the
    # previous one, so E[tail mass] stays at p0's; a verifier that rejects tail
    # tokens breaks it (the test detects that).
    vocab, r = Vocabulary.zipf(60, 1.1), 6
    p_tail = float(vocab.probs[r:].sum())
    kw = dict(
        vocabulary=vocab,
        sample_size=30,
        num_chains=2048,
        num_generations=15,
        tail_rank=r,
        dtype=jnp.float64,
        progress=False,
    )
    gens = np.asarray([1, 5, 15])
    # (subsample's pooled counts are checked exactly against accumulate above)
    for regime in (
        Regime.accumulate(),
        Regime.anchored(0.5),
        Regime.fresh(0.2, schedule=tuple(range(10, 40, 2))),
    ):
        res = run_categorical(key(11), regime=regime, **kw)
        tm = res.moments["tail_mass"]
        assert_agree(tm.mean[gens], tm.sem[gens], p_tail, regime.label)
    ver = categorical_verifier(vocab, float(vocab.probs[r - 1]), accept_bad=0.5)
    res = run_categorical(key(11), regime=Regime.replace(verifier=ver), **kw)
    tm = res.moments["tail_mass"]
    assert_rejects(tm.mean[gens], tm.sem[gens], p_tail, "filtered chain is not a martingale")


_DEVICE_SCRIPT = """
import json, sys
import jax
import jax.numpy as jnp
import numpy as np
jax.config.update("jax_enable_x64", True)
from sim.families.categorical import Vocabulary
from sim.families.categorical import categorical_verifier
from sim.families.gaussian import gaussian_verifier
from sim.regimes import Regime
from sim.runners import run_categorical, run_gaussian

out = {"devices": jax.device_count()}
key = jax.random.key(7, impl="philox4x32")
gauss = {
    "subsample": (Regime.subsample(12), "sample"),
    "verify": (Regime.fresh(0.25, verifier=gaussian_verifier(k=1.0, accept_bad=0.2)), "sample"),
    "binomial": (Regime.fresh(0.3, mixing="binomial", schedule=tuple(range(5, 13))), "exact"),
}
chunks = (64,) if jax.device_count() == 1 else (256,)
for name, (regime, method) in gauss.items():
    for chunk in chunks:
        res = run_gaussian(key, sample_size=6, num_chains=200, num_generations=8, regime=regime,
                           method=method, chunk_chains=chunk, block_size=64, progress=False)
        out[f"{name}/{chunk}/final"] = np.asarray(res.final.params.log_var).tolist()
        out[f"{name}/{chunk}/moments"] = res.moments["log_var"].mean.tolist()
vocab = Vocabulary.zipf(30, 1.1)
regime = Regime.subsample(40, verifier=categorical_verifier(vocab, 0.02, accept_bad=0.3))
for chunk in chunks:
    res = run_categorical(key, vocabulary=vocab, sample_size=20, num_chains=200,
                          num_generations=6, regime=regime, chunk_chains=chunk, block_size=64,
                          progress=False)
    out[f"cat/{chunk}/final"] = np.asarray(res.final.params.probs).tolist()
json.dump(out, open(sys.argv[1], "w"))
"""


@pytest.mark.multiprocess
def test_regimes_bit_identical_across_devices_and_chunks(tmp_path):
    """Per-chain values and moments are bit-identical between 1 device in chunks of 64
    chains (4 chunks) and 4 devices in chunks of 256 (one chunk, 64 chains per device):
    another batch shape, chunking and sharding at once, traced counts (a random real
    count, a schedule) included."""
    runs = {ndev: run_on_devices(_DEVICE_SCRIPT, ndev, tmp_path) for ndev in (1, 4)}
    assert runs[1].pop("devices") == 1 and runs[4].pop("devices") == 4
    assert len(runs[1]) == len(runs[4]) == 7
    for name, value in runs[1].items():
        assert runs[4][name.replace("/64/", "/256/")] == value, name


@pytest.mark.statistical
def test_zero_sized_parts():
    """alpha or lambda at 0 or 1 leave one part empty (points draws included)."""
    snaps = (1, 3, 8)
    res = gauss(Regime.fresh(1.0), m=6, chains=4000, gens=8, snaps=snaps, method="sample")
    (ev, ev_se), (vm, vm_se) = snapshot_moments(res)
    th = mixing.fresh_fraction_variance(np.asarray(snaps), 6, 1.0, "unbiased")
    assert_agree(
        np.r_[ev, vm],
        np.r_[ev_se, vm_se],
        np.r_[th.expected_variance, th.mean_variance],
        "alpha=1: real data only",
    )
    kw = dict(m=6, chains=64, gens=8, snaps=snaps, method="sample")
    plain = gauss(Regime.replace(), **kw)
    for regime in (Regime.fresh(0.0), Regime.anchored(1.0)):
        res = gauss(regime, **kw)
        np.testing.assert_allclose(
            res.snapshots["log_var"], plain.snapshots["log_var"], rtol=1e-14, err_msg=regime.label
        )
    # lambda = 0: every fit is the anchor set's, fixed after fit 1.
    res = gauss(Regime.anchored(0.0), **kw)
    np.testing.assert_array_equal(res.snapshots["mean"][1:], res.snapshots["mean"][[0, 0]])
