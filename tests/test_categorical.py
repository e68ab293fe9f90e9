"""The categorical chain: family, sampler transforms, records, and statistics against theory.

Statistical tests compare cross-chain means with the exact expectations of
``theory.categorical`` by z-scores with Monte-Carlo standard errors, at the
per-test false-failure rate of ``tests/stats.py`` (Bonferroni over the
comparisons of a test). Each one also shows a deliberately wrong formula being
rejected by the same data.
"""

import jax

jax.config.update("jax_enable_x64", True)

import math  # noqa: E402

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import stats as st  # noqa: E402

from sim.chain import params_record, replace_step  # noqa: E402
from sim.families.categorical import (  # noqa: E402  # noqa: E402
    CategoricalParams,
    Vocabulary,
    categorical,
    categorical_record,
    check_probability_vector,
    default_bucket_edges,
)
from sim.parallel import simulate  # noqa: E402
from sim.runners import run_categorical  # noqa: E402
from sim.sampling import apply_bias, sampling_bias  # noqa: E402
from tests.devices import run_on_devices  # noqa: E402
from tests.stats import (  # noqa: E402
    FALSE_FAILURE_RATE,
    assert_agree,
    assert_rejects,
    binomial_se,
    z_crit,
    z_crit_one_sided,
)
from theory import categorical as tc  # noqa: E402


def key(seed):
    return jax.random.key(seed, impl="philox4x32")


def run(vocab, m, c, g, seed=0, **kw):
    kw.setdefault("progress", False)
    return run_categorical(
        key(seed), vocabulary=vocab, sample_size=m, num_chains=c, num_generations=g, **kw
    )


# ----------------------------------------------------------------------------- validation


@pytest.mark.unit
@pytest.mark.parametrize(
    "probs, match",
    [
        ([0.5, -0.1, 0.6], r"probs\[1\]=-0.1 is negative"),
        ([0.5, float("nan"), 0.5], r"probs\[1\]=nan is not finite"),
        ([0.5, 0.4], "sums to 0.9"),
        ([[0.5, 0.5]], "1-D"),
        ([], "non-empty"),
        ("abc", "numeric"),
    ],
)
def test_bad_probability_vectors_are_named(probs, match):
    with pytest.raises(ValueError, match=match):
        Vocabulary.from_probs(probs)


@pytest.mark.unit
def test_probability_vector_tolerance_and_renormalisation():
    p = check_probability_vector([0.5, 0.5 + 1e-9])
    assert abs(p.sum() - 1) < 1e-15
    with pytest.raises(ValueError, match="sums to"):
        check_probability_vector([0.5, 0.5 + 1e-5])


@pytest.mark.unit
@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(temperature=0.0), "temperature"),
        (dict(temperature=float("inf")), "temperature"),
        (dict(top_k=0), "top_k=0"),
        (dict(top_k=2.5), "top_k=2.5"),
        (dict(top_p=0.0), "top_p=0.0"),
        (dict(top_p=1.5), "top_p=1.5"),
    ],
)
def test_bad_sampling_bias_is_named(kw, match):
    with pytest.raises(ValueError, match=match):
        sampling_bias(**kw)


@pytest.mark.unit
def test_runner_validation():
    v = Vocabulary.uniform(5)
    with pytest.raises(ValueError, match="smoothing"):
        run(v, 10, 4, 2, smoothing=-1.0)
    with pytest.raises(ValueError, match="tail_rank=6"):
        run(v, 10, 4, 2, tail_rank=6)
    with pytest.raises(ValueError, match="bucket_edges"):
        run(v, 10, 4, 2, bucket_edges=(2, 4))
    with pytest.raises(ValueError, match="vocabulary"):
        run(np.ones(5) / 5, 10, 4, 2)
    with pytest.raises(ValueError, match="first-passage field 'survival'"):
        run(v, 10, 4, 2, first_passage_fields=("survival",))


# ----------------------------------------------------------------------------- transforms


@pytest.mark.costly
@pytest.mark.unit
def test_bias_transforms_match_theory_one_step():
    """sim.sampling and theory's infinite-M map are independent implementations."""
    rng = np.random.default_rng(0)
    k = 23
    ps = rng.dirichlet(np.full(k, 0.3), 16)
    ps[rng.random(ps.shape) < 0.2] = 0.0
    ps[:, 0] += ps.sum(1) == 0
    ps /= ps.sum(1, keepdims=True)
    ps[1] = np.repeat([0.1, 0.05, 0.0], [5, 8, 10])  # ties
    ps[1] /= ps[1].sum()
    for kw in (
        dict(temperature=0.6),
        dict(temperature=1.7),
        dict(top_k=3),
        dict(top_p=0.7),
        dict(temperature=0.8, top_k=5, top_p=0.9),
    ):
        bias = sampling_bias(**kw)
        got = np.asarray(jax.jit(jax.vmap(lambda p, bias=bias: apply_bias(bias, p)))(ps))
        for p, g in zip(ps, got, strict=True):
            want = np.asarray(tc.sampling_transform(jnp.asarray(p), **kw))
            np.testing.assert_allclose(g, want, atol=1e-12, err_msg=str(kw))
            assert np.all(g[p == 0] == 0)


@pytest.mark.unit
def test_top_k_and_top_p_ties_go_to_the_lower_index():
    p = jnp.asarray([0.2, 0.3, 0.2, 0.3])
    q = np.asarray(apply_bias(sampling_bias(top_k=3), p))
    np.testing.assert_allclose(q, [0.2 / 0.8, 0.3 / 0.8, 0.0, 0.3 / 0.8])
    q = np.asarray(apply_bias(sampling_bias(top_p=0.5), p))  # 0.3 (idx 1), then idx 3
    np.testing.assert_allclose(q, [0, 0.5, 0, 0.5])


@pytest.mark.statistical
def test_biased_sampler_draws_from_the_transformed_model():
    """Counts from a fitted (not real) model have mean M T(p); the real one is untouched."""
    p = jnp.asarray([0.5, 0.25, 0.15, 0.1])
    bias = sampling_bias(temperature=0.5)
    fam = categorical(0.0, bias, jnp.float64)
    m, n = 50, 20_000
    keys = jax.random.split(key(3), n)
    for real in (False, True):
        params = CategoricalParams(p, jnp.asarray(real))
        x = np.asarray(jax.vmap(lambda k, params=params: fam.sample(k, params, m))(keys))
        q = np.asarray(p if real else apply_bias(bias, p))
        se = np.sqrt(m * q * (1 - q) / n)
        assert_agree(x.mean(0), se, m * q, f"counts real={real}")
        if not real:
            assert_rejects(x.mean(0), se, m * np.asarray(p), "untempered mean")


# ----------------------------------------------------------------------------- engine


@pytest.mark.costly
@pytest.mark.unit
def test_first_passage_and_vector_moments_agree_with_snapshots():
    v = Vocabulary.zipf(6, 1.0)
    g = 40
    r = run(
        v,
        5,
        300,
        g,
        snapshot_generations=tuple(range(g + 1)),
        snapshot_fields=("absorbed", "survival"),
        dtype=jnp.float64,
    )
    absorbed = r.snapshots["absorbed"]  # (G+1, C)
    first = np.where(absorbed.any(0), absorbed.argmax(0), -1)
    np.testing.assert_array_equal(r.first_passage["absorbed"], first)
    surv = r.snapshots["survival"]  # (G+1, C, B)
    assert surv.shape == (g + 1, 300, len(default_bucket_edges(6)))
    np.testing.assert_allclose(r.moments["survival"].mean, surv.mean(1), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        r.moments["survival"].var, surv.var(1, ddof=1), rtol=1e-9, atol=1e-15
    )


@pytest.mark.costly
@pytest.mark.unit
def test_results_do_not_depend_on_chunking():
    v = Vocabulary.zipf(37, 1.1)
    kw = dict(temperature=0.9, top_p=0.95, dtype=jnp.float32, block_size=64)
    a = run(v, 20, 300, 12, seed=5, chunk_chains=64, **kw)
    b = run(v, 20, 300, 12, seed=5, chunk_chains=320, **kw)
    np.testing.assert_array_equal(a.final.probs, b.final.probs)
    for f in a.moments:
        np.testing.assert_array_equal(a.moments[f].mean, b.moments[f].mean)
        np.testing.assert_array_equal(a.moments[f].m2, b.moments[f].m2)


@pytest.mark.costly
@pytest.mark.unit
def test_counts_are_conserved_and_extinction_is_permanent():
    v = Vocabulary.zipf(50, 1.2)
    fam = categorical(0.0, sampling_bias(), jnp.float32)
    step = jax.jit(jax.vmap(replace_step(fam, 40)))
    c = 256
    params = jax.tree.map(lambda x: jnp.broadcast_to(x, (c,) + x.shape), v.params(jnp.float32))
    alive = np.ones((c, 50), bool)
    for t in range(1, 30):
        keys = jax.vmap(lambda i, t=t: jax.random.fold_in(jax.random.fold_in(key(1), i), t))(
            jnp.arange(c)
        )
        params, _ = step(keys, params)
        p = np.asarray(params.probs)
        counts = p * 40
        np.testing.assert_allclose(counts, np.round(counts), atol=2e-5)
        np.testing.assert_allclose(p.sum(1), 1, atol=1e-5)
        assert not np.any((p > 0) & ~alive), "an extinct category came back"
        alive = p > 0


# ----------------------------------------------------------------------------- statistics


@pytest.mark.statistical
def test_heterozygosity_support_survival_and_tail_against_exact_theory():
    """D1, D3 and the tail-mass martingale at M=10 on a Zipf(K=30) vocabulary."""
    v = Vocabulary.zipf(30, 1.1)
    m, c, g = 10, 20_000, 40
    edges = (3, 10, 30)
    r = run(v, m, c, g, seed=11, bucket_edges=edges, tail_rank=10, dtype=jnp.float64)
    ns = np.array([1, 2, 5, 10, 20, 40])
    p_sorted = np.sort(v.probs)[::-1]
    h = np.asarray(tc.expected_heterozygosity(jnp.asarray(ns), m, jnp.asarray(v.probs)))
    surv = np.asarray(tc.survival_probability(ns, m, jnp.asarray(p_sorted)))  # (N, K)
    bucket = np.stack([surv[:, a:b].mean(1) for a, b in zip((0, 3, 10), edges, strict=True)], 1)
    tail = np.full(ns.shape, p_sorted[10:].sum())
    mo = r.moments
    checks = [
        (mo["heterozygosity"].mean[ns], mo["heterozygosity"].sem[ns], h),
        (mo["support"].mean[ns], mo["support"].sem[ns], surv.sum(1)),
        (mo["survival"].mean[ns].ravel(), mo["survival"].sem[ns].ravel(), bucket.ravel()),
        (mo["tail_mass"].mean[ns], mo["tail_mass"].sem[ns], tail),
    ]
    emp = np.concatenate([e for e, _, _ in checks])
    se = np.concatenate([s for _, s, _ in checks])
    th = np.concatenate([t for _, _, t in checks])
    assert_agree(emp, se, th, "categorical D1/D3/tail")
    # Wrong formulas are rejected by the same data: one generation too many for
    # H, the Poisson (infinite-M) survival for D3, and a decaying tail.
    assert_rejects(
        mo["heterozygosity"].mean[ns], mo["heterozygosity"].sem[ns], h * (1 - 1 / m), "H shift"
    )
    pois = np.asarray(tc.poisson_survival_from_rate(ns[:3, None], m * p_sorted[None, :]))
    assert_rejects(mo["support"].mean[ns[:3]], mo["support"].sem[ns[:3]], pois.sum(1), "Poisson")
    assert_rejects(mo["tail_mass"].mean[ns], mo["tail_mass"].sem[ns], tail * h / h[0], "tail")


@pytest.mark.statistical
def test_smoothed_heterozygosity_against_exact_affine_recursion():
    v = Vocabulary.zipf(8, 1.5)
    m, c, g, alpha = 6, 20_000, 30, 0.3
    r = run(v, m, c, g, seed=12, smoothing=alpha, dtype=jnp.float64)
    ns = np.array([1, 3, 10, 30])
    h = np.asarray(
        tc.expected_heterozygosity(jnp.asarray(ns), m, jnp.asarray(v.probs), smoothing=alpha)
    )
    mo = r.moments["heterozygosity"]
    assert_agree(mo.mean[ns], mo.sem[ns], h, "smoothed H")
    plain = np.asarray(tc.expected_heterozygosity(jnp.asarray(ns), m, jnp.asarray(v.probs)))
    assert_rejects(mo.mean[ns], mo.sem[ns], plain, "unsmoothed formula")
    # Smoothing keeps every category: no extinction, no absorption.
    assert np.all(r.moments["support"].mean == 8)
    assert np.all(r.first_passage["absorbed"] == -1)


@pytest.mark.statistical
def test_absorption_time_and_fixation_law():
    """D4 (exact mean absorption time) and D2 (absorbed on i with probability p_i)."""
    p = np.array([0.5, 0.3, 0.2])
    v = Vocabulary.from_probs(p)
    m, c, g = 12, 20_000, 600
    r = run(v, m, c, g, seed=13, dtype=jnp.float64)
    t = r.first_passage["absorbed"]
    assert np.all(t >= 1), "some chains not absorbed: raise G"
    exact = float(tc.mean_absorption_time(m, jnp.asarray(p), method="exact"))
    se = t.std(ddof=1) / math.sqrt(c)
    assert_agree(t.mean(), se, exact, "mean absorption time")
    diffusion = float(tc.mean_absorption_time(m, jnp.asarray(p), method="diffusion"))
    assert_rejects(t.mean(), se, diffusion, "diffusion approximation at M=12")
    winner = np.argmax(r.final.probs, -1)
    assert np.all(r.final.probs.max(-1) == 1)
    observed = np.bincount(winner, minlength=3)
    pval = st.chisquare(observed, c * np.asarray(tc.fixation_probability(jnp.asarray(p)))).pvalue
    assert pval > FALSE_FAILURE_RATE, (observed, pval)
    assert st.chisquare(observed, c * np.full(3, 1 / 3)).pvalue < FALSE_FAILURE_RATE


@pytest.mark.statistical
def test_top_k_kills_the_tail_at_once_and_temperature_sharpens():
    v = Vocabulary.zipf(60, 1.0)
    m, c, g = 200, 1000, 12
    kw = dict(
        snapshot_generations=tuple(range(g + 1)), snapshot_fields=("support",), dtype=jnp.float32
    )
    top = run(v, m, c, g, seed=14, top_k=7, **kw)
    assert top.snapshots["support"][2:].max() <= 7
    assert top.snapshots["support"][1].max() > 7  # fit 1 is from real data, untruncated
    plain = run(v, m, c, g, seed=14, **kw)
    cold = run(v, m, c, g, seed=14, temperature=0.7, **kw)
    # One-sided: under tau < 1 the head's mass grows faster than without bias
    # (theory: p_n proportional to p0^(tau^-(n-1)) in the infinite-M limit).
    n = g
    d = cold.moments["mode_mass"].mean[n] - plain.moments["mode_mass"].mean[n]
    se = math.hypot(cold.moments["mode_mass"].sem[n], plain.moments["mode_mass"].sem[n])
    assert d / se > z_crit(1), (d, se)
    limit = np.asarray(tc.deterministic_trajectory(n, jnp.asarray(v.probs), temperature=0.7))
    assert limit.max() > v.probs.max()


@pytest.mark.statistical
def test_survival_probability_binomial_se_is_valid_at_generation_one():
    """At n=1 the survival of category i is exactly 1-(1-p_i)^M: a direct check of the sampler."""
    v = Vocabulary.zipf(20, 1.3)
    m, c = 15, 20_000
    r = run(v, m, c, 1, seed=15, bucket_edges=tuple(range(1, 21)), dtype=jnp.float32)
    p = np.sort(v.probs)[::-1]
    want = 1 - (1 - p) ** m
    emp = r.moments["survival"].mean[1]
    assert_agree(emp, binomial_se(want, c), want, "survival at n=1")
    pois = np.asarray(tc.poisson_survival_from_rate(1, m * p))
    np.testing.assert_allclose(pois, 1 - np.exp(-m * p), rtol=1e-12)
    assert_rejects(emp, binomial_se(want, c), pois, "Poisson at n=1")


@pytest.mark.unit
def test_record_fields_on_a_known_distribution():
    v = Vocabulary.from_probs([0.5, 0.25, 0.25, 0.0])
    rec = categorical_record(v, 1, default_bucket_edges(4))
    p = CategoricalParams(jnp.asarray([0.0, 0.5, 0.5, 0.0]), jnp.asarray(False))
    r = rec(p)
    assert float(r.support) == 2
    np.testing.assert_allclose(float(r.entropy), math.log(2))
    np.testing.assert_allclose(float(r.heterozygosity), 0.5)
    np.testing.assert_allclose(float(r.tv), 0.5)
    np.testing.assert_allclose(float(r.kl), 0.5 * math.log(2) * 2)
    np.testing.assert_allclose(float(r.tail_mass), 1.0)  # ranks 2-4 hold everything
    np.testing.assert_allclose(float(r.mode_mass), 0.5)
    assert float(r.absorbed) == 0
    np.testing.assert_allclose(np.asarray(r.survival), [0.0, 2 / 3])


@pytest.mark.unit
def test_simulate_rejects_unknown_fields():
    v = Vocabulary.uniform(3)
    fam = categorical()
    with pytest.raises(ValueError, match="record field 'nope'"):
        simulate(
            key(0),
            replace_step(fam, 5),
            v.params(),
            params_record(categorical_record(v, 1, (1, 3))),
            num_generations=2,
            num_chains=4,
            first_passage_fields=("nope",),
            progress=False,
        )


@pytest.mark.statistical
def test_rare_words_against_the_poisson_survival_bounds():
    """D5: a word of real expected count lambda = M p survives n fits with probability
    >= 1 - exp(-lambda g_n) >= 1 - exp(-lambda/n) (Suresh et al.; a lower bound for the
    binomial chain at every M) and <= 1 - exp(-3 lambda/n) while n << M. One-sided
    z-tests on each rare word's survival fraction."""
    m, c = 400, 20_000
    rates = np.array([0.5, 1.0, 2.0, 4.0])
    p = np.concatenate([[1 - rates.sum() / m], rates[::-1] / m])  # sorted: head, then rare
    v = Vocabulary.from_probs(p)
    k = len(p)
    r = run(v, m, c, 40, seed=16, bucket_edges=tuple(range(1, k + 1)), dtype=jnp.float64)
    ns = np.array([1, 2, 5, 10, 20, 40])
    emp = r.moments["survival"].mean[ns][:, 1:][:, ::-1]  # (N, 4) in the order of `rates`
    lo_paper, up = (np.asarray(x) for x in tc.suresh_survival_bounds_from_rate(ns[:, None], rates))
    lo = np.asarray(tc.poisson_survival_from_rate(ns[:, None], rates))
    exact = np.asarray(tc.survival_probability(ns, m, jnp.asarray(rates / m)))
    se = binomial_se(exact, c)
    crit = z_crit_one_sided(3 * emp.size)
    assert np.all((emp - lo) / se > -crit), (emp - lo) / se
    assert np.all((emp - lo_paper) / se > -crit)
    assert np.all((up - emp) / se > -crit), (up - emp) / se
    assert np.all(lo_paper <= lo + 1e-15) and np.all(lo <= up)
    # A wrong claim -- that the paper's lower bound is also an upper bound -- is rejected.
    assert np.any((lo_paper - emp) / se < -crit)


_DEVICE_SCRIPT = """
import hashlib, json, sys
import jax, jax.numpy as jnp, numpy as np
from sim.families.categorical import Vocabulary
from sim.runners import run_categorical

out = {"devices": len(jax.devices())}
v = Vocabulary.zipf(300, 1.1)
for chunk in (128, 512):
    for kw in (dict(temperature=0.9, top_p=0.95),):
        r = run_categorical(jax.random.key(3, impl="philox4x32"), vocabulary=v,
                            sample_size=2000, num_chains=512, num_generations=6,
                            chunk_chains=chunk, block_size=128, progress=False,
                            dtype=jnp.float32, **kw)
        tag = f"{'bias' if kw else 'plain'}/{chunk}"
        out[tag + "/final"] = hashlib.sha1(np.asarray(r.final.probs).tobytes()).hexdigest()
        out[tag + "/moments"] = hashlib.sha1(
            b"".join(m.mean.tobytes() + m.m2.tobytes() for m in r.moments.values())
        ).hexdigest()
json.dump(out, open(sys.argv[1], "w"))
"""


@pytest.mark.multiprocess
def test_bit_identical_on_one_and_four_devices(tmp_path):
    """The sampler's cross-batch fallback and the transforms keep per-chain values
    and moments bit-identical across device counts and chunk sizes."""
    runs = {ndev: run_on_devices(_DEVICE_SCRIPT, ndev, tmp_path) for ndev in (1, 4)}
    assert runs[1].pop("devices") == 1 and runs[4].pop("devices") == 4
    assert runs[1] == runs[4]
    for what in ("final", "moments"):
        assert runs[1][f"bias/128/{what}"] == runs[1][f"bias/512/{what}"]
