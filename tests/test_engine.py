"""The engine: exactness of the pieces, determinism, compilation, validation."""

import os
import subprocess
import sys
import textwrap

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from sim.chain import chain_key, params_record, replace_step, run_chain, stats_step
from sim.families.gaussian import (
    GaussianParams,
    as_sample,
    gaussian,
    gaussian_record,
    real_params,
)
from sim.parallel import _combine_blocks, simulate
from sim.random import log_gamma
from sim.runners import run_gaussian
from tests.devices import run_on_devices
from tests.stats import FALSE_FAILURE_RATE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def key(seed=0):
    return jax.random.key(seed, impl="philox4x32")


# ----------------------------------------------------------------------------- pieces


@pytest.mark.unit
@pytest.mark.parametrize("estimator,ddof", [("mle", 0), ("unbiased", 1)])
def test_fit_matches_numpy(estimator, ddof):
    x = np.random.default_rng(0).normal(3.0, 2.0, size=37)
    p = gaussian(estimator).fit(None, as_sample(jnp.asarray(x)))
    np.testing.assert_allclose(p.mean, x.mean(), rtol=1e-12)
    np.testing.assert_allclose(p.log_var, np.log(x.var(ddof=ddof)), rtol=1e-12)


@pytest.mark.unit
def test_standardized_sampling_keeps_tiny_scales():
    # sigma / |mu| far below machine epsilon: x = mu + sigma z would round to mu.
    params = GaussianParams(jnp.float32(5.0), jnp.float32(-300.0))
    fam = gaussian("unbiased")
    fitted = fam.fit(None, fam.sample(key(), params, 50))
    assert np.isfinite(fitted.log_var) and abs(float(fitted.log_var) + 300.0) < 2.0
    assert float(fitted.mean) == 5.0


@pytest.mark.statistical
@pytest.mark.parametrize("shape", [0.5, 1.0, 4.5, 499.5])
def test_log_gamma_distribution(shape):
    """KS test of the batched Marsaglia-Tsang sampler; it rejects a 3% wrong shape."""
    keys = jax.random.split(key(1), 100_000)
    draws = np.asarray(jax.jit(jax.vmap(lambda k: log_gamma(k, shape, jnp.float64)))(keys))
    ks = stats.kstest(draws, lambda v: stats.gamma(shape).cdf(np.exp(v)))
    assert ks.pvalue > FALSE_FAILURE_RATE
    wrong = stats.kstest(draws, lambda v: stats.gamma(shape * 1.03).cdf(np.exp(v)))
    assert wrong.pvalue < FALSE_FAILURE_RATE


@pytest.mark.costly
@pytest.mark.unit
@pytest.mark.parametrize("shape", [0.5, 1.0])
def test_log_gamma_fallback_loop_is_exact(shape):
    """One candidate at shape 1 rejects ~5% of lanes: the batched fallback must fix them."""
    keys = jax.random.split(key(3), 100_000)
    f = jax.jit(jax.vmap(lambda k: log_gamma(k, shape, jnp.float64, num_candidates=1)))
    draws = np.asarray(f(keys))
    assert np.isfinite(draws).all()
    ks = stats.kstest(draws, lambda v: stats.gamma(shape).cdf(np.exp(v)))
    assert ks.pvalue > FALSE_FAILURE_RATE
    # Unbatched (no vmap): the plain while loop.
    single = jax.jit(lambda k: log_gamma(k, shape, jnp.float64, num_candidates=1))
    one = [float(single(k)) for k in keys[:50]]
    np.testing.assert_allclose(one, draws[:50], rtol=1e-12)


@pytest.mark.costly
@pytest.mark.unit
def test_log_gamma_traced_shape():
    """A per-lane (traced) shape gives the static-shape draws, fallback included, and
    passes the KS test per shape (sample-size schedules use it)."""
    shapes = np.array([0.5, 1.0, 4.5, 499.5])
    keys = jax.random.split(key(4), 40_000)
    lane_shape = jnp.asarray(np.repeat(shapes, 10_000))
    traced = jax.jit(jax.vmap(lambda k, a: log_gamma(k, a, jnp.float64, num_candidates=1)))
    draws = np.asarray(traced(keys, lane_shape))
    for i, a in enumerate(shapes):
        part = slice(10_000 * i, 10_000 * (i + 1))
        static = jax.jit(jax.vmap(lambda k, a=a: log_gamma(k, a, jnp.float64, num_candidates=1)))
        np.testing.assert_allclose(draws[part], np.asarray(static(keys[part])), rtol=1e-12)
    default = np.asarray(
        jax.jit(jax.vmap(lambda k, a: log_gamma(k, a, jnp.float64)))(keys, lane_shape)
    )
    for i, a in enumerate(shapes):
        part = default[10_000 * i : 10_000 * (i + 1)]
        ks = stats.kstest(part, lambda v, a=a: stats.gamma(a).cdf(np.exp(v)))
        assert ks.pvalue > FALSE_FAILURE_RATE / len(shapes), (a, ks.pvalue)


@pytest.mark.unit
def test_log_gamma_float32_tiny_values():
    keys = jax.random.split(key(2), 20_000)
    draws = np.asarray(jax.vmap(lambda k: log_gamma(k, 0.5, jnp.float32))(keys))
    assert draws.dtype == np.float32 and np.isfinite(draws).all()


@pytest.mark.unit
def test_record_formulas_against_scipy():
    mu0, s0, k = 0.3, 1.7, 2.0
    rec = gaussian_record(mu0, s0, k, 1e-3)
    mean, log_var = 1.1, np.log(0.6**2)
    r = rec(GaussianParams(jnp.float64(mean), jnp.float64(log_var)))
    s = 0.6
    np.testing.assert_allclose(r.w2_squared, (mean - mu0) ** 2 + (s - s0) ** 2, rtol=1e-12)
    np.testing.assert_allclose(r.tail_own, 2 * stats.norm.sf(k * s0 / s), rtol=1e-10)
    real = stats.norm(mean, s)
    np.testing.assert_allclose(
        r.tail_real, real.cdf(mu0 - k * s0) + real.sf(mu0 + k * s0), rtol=1e-10
    )
    assert float(r.collapsed) == 0.0
    tiny = rec(GaussianParams(jnp.float32(0.0), jnp.float32(-5000.0)))
    assert float(tiny.tail_own) == 0.0 and float(tiny.collapsed) == 1.0
    assert np.isfinite([float(v) for v in tiny]).all()


@pytest.mark.unit
def test_combine_blocks_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, size=1000)
    sizes = [100, 250, 1, 649]
    blocks, counts, i = [], [], 0
    for s in sizes:
        b = x[i : i + s]
        i += s
        m = b.mean()
        blocks.append([m, ((b - m) ** 2).sum(), ((b - m) ** 3).sum(), ((b - m) ** 4).sum()])
        counts.append(s)
    mean, m2, m3, m4 = _combine_blocks(np.array(counts), np.array(blocks))
    np.testing.assert_allclose(mean, x.mean(), rtol=1e-12)
    np.testing.assert_allclose([m2, m3, m4], [stats.moment(x, k) for k in (2, 3, 4)], rtol=1e-10)


@pytest.mark.unit
def test_simulate_moments_match_per_chain_values():
    """Every generation kept as a snapshot: the device reductions equal NumPy's."""
    g = 12
    r = run_gaussian(
        key(5),
        sample_size=6,
        estimator="mle",
        num_chains=777,
        num_generations=g,
        dtype=jnp.float64,
        snapshot_generations=range(g + 1),
        snapshot_fields=("log_var", "mean"),
        progress=False,
    )
    lv = r.snapshots["log_var"]
    np.testing.assert_allclose(r.moments["log_var"].mean, lv.mean(1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(r.moments["log_var"].m2, lv.var(1), rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(
        r.moments["mean"].m4, stats.moment(r.snapshots["mean"], 4, axis=1), rtol=1e-8, atol=1e-15
    )
    np.testing.assert_array_equal(lv[-1], r.final.log_var)


@pytest.mark.costly
@pytest.mark.unit
def test_sample_path_equals_single_chain_reference():
    """simulate runs exactly the steps of run_chain (same keys), batched."""
    step = stats_step(gaussian("unbiased"), 8)
    rec = params_record(gaussian_record())
    r = simulate(
        key(4),
        step,
        real_params(dtype=jnp.float64),
        rec,
        num_generations=25,
        num_chains=64,
        progress=False,
    )
    for i in (0, 17, 63):
        one = run_chain(chain_key(key(4), i), step, real_params(dtype=jnp.float64), 25, rec)
        np.testing.assert_allclose(one.log_var[-1], r.final.log_var[i], rtol=1e-12)
        np.testing.assert_allclose(one.mean[-1], r.final.mean[i], rtol=1e-12)


# ----------------------------------------------------------------------------- determinism

_DET_SCRIPT = textwrap.dedent("""
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    from sim.runners import run_gaussian
    out = {}
    for method in ("sample", "exact"):
        for chunk in (256, 2048):
            r = run_gaussian(jax.random.key(11, impl="philox4x32"), sample_size=7,
                             estimator="unbiased", method=method, num_chains=1500,
                             num_generations=30, dtype=jnp.float32, chunk_chains=chunk,
                             block_size=256, segment_length=7, snapshot_generations=[3, 30],
                             progress=False)
            out[f"{method}/{chunk}/final"] = r.final.log_var.tolist()
            out[f"{method}/{chunk}/mean"] = [r.moments[f].mean.tolist() for f in r.moments]
            out[f"{method}/{chunk}/m4"] = [r.moments[f].m4.tolist() for f in r.moments]
            out[f"{method}/{chunk}/snap"] = r.snapshots["log_var"].tolist()
    out["devices"] = len(jax.devices())
    json.dump(out, open(sys.argv[1], "w"))
""")


def _run_det(tmp_path, ndev):
    return run_on_devices(_DET_SCRIPT, ndev, tmp_path)


@pytest.mark.multiprocess
def test_bit_identical_across_chunks_and_devices(tmp_path):
    one, four = _run_det(tmp_path, 1), _run_det(tmp_path, 4)
    assert one.pop("devices") == 1 and four.pop("devices") == 4
    assert one == four  # every per-chain value and every moment, bit for bit
    for method in ("sample", "exact"):
        for what in ("final", "mean", "m4", "snap"):
            assert one[f"{method}/256/{what}"] == one[f"{method}/2048/{what}"], (method, what)


@pytest.mark.unit
def test_same_seed_same_numbers_other_seed_other_numbers():
    kw = dict(sample_size=5, num_chains=300, num_generations=10, progress=False)
    a, b, c = (run_gaussian(key(s), **kw).final.log_var for s in (3, 3, 4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.multiprocess
def test_mulhi_fallback_keeps_philox_bits(tmp_path):
    """sim._compat swaps the lowering of mulhi; the random bits must not change."""
    code = (
        "import jax, numpy as np, sys\n"
        "k = jax.random.key(7, impl='philox4x32')\n"
        "b = jax.jit(lambda k: jax.random.bits(jax.random.fold_in(k, 3), (1000,), jax.numpy.uint32))(k)\n"
        "np.save(sys.argv[1], np.asarray(b))\n"
    )
    (tmp_path / "bits.py").write_text(code)
    out = tmp_path / "native.npy"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    subprocess.run([sys.executable, str(tmp_path / "bits.py"), str(out)], check=True, env=env)
    import sim  # noqa: F401  (applies the fallback in this process)

    ours = jax.jit(lambda k: jax.random.bits(jax.random.fold_in(k, 3), (1000,), jnp.uint32))(key(7))
    np.testing.assert_array_equal(np.load(out), np.asarray(ours))


# ----------------------------------------------------------------------------- compilation


@pytest.mark.unit
def test_no_recompilation_on_second_call():
    from sim import families, parallel

    kw = dict(
        sample_size=9,
        estimator="mle",
        method="sample",
        num_chains=500,
        num_generations=8,
        dtype=jnp.float32,
        progress=False,
    )
    run_gaussian(key(0), **kw)
    misses = parallel._segment_fn.cache_info().misses
    spec = families.get("gaussian")
    settings = spec.settings(sample_size=9, estimator="mle", method="sample", dtype=jnp.float32)
    program = spec.program(settings, (), 500, 8)
    fn = parallel._segment_fn(program.step, program.record, (), (), 512, 8, None, None)
    size = fn._cache_size()
    run_gaussian(key(1), **kw)
    assert parallel._segment_fn.cache_info().misses == misses
    assert fn._cache_size() == size == 1


@pytest.mark.unit
def test_step_runs_under_jit_without_retracing():
    step = chex.assert_max_traces(stats_step(gaussian("mle"), 10), n=1)
    f = jax.jit(jax.vmap(step))
    p = jax.tree.map(lambda x: jnp.broadcast_to(x, (4,)), real_params(dtype=jnp.float32))
    keys = jax.random.split(key(0), 4)
    f(keys, p)
    f(jax.random.split(key(1), 4), p)


# ----------------------------------------------------------------------------- validation


@pytest.mark.unit
@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(sample_size=1), "sample_size=1"),
        (dict(sample_size=2.5), "sample_size=2.5"),
        (dict(estimator="biased"), "estimator='biased'"),
        (dict(method="fast"), "method='fast'"),
        (dict(num_chains=0), "num_chains=0"),
        (dict(num_generations=0), "num_generations=0"),
        (dict(tail_k=-1.0), "tail_k=-1.0"),
        (dict(sigma0=0.0), "sigma0=0.0"),
        (dict(collapse_eps=0.0), "collapse_eps=0.0"),
        (dict(snapshot_generations=[99]), "99"),
        (dict(snapshot_generations=[1], snapshot_fields=("nope",)), "nope"),
        (dict(block_size=3), "block_size=3"),
    ],
)
def test_bad_inputs_name_the_value(kwargs, match):
    base = dict(
        sample_size=5,
        estimator="mle",
        method="sample",
        num_chains=10,
        num_generations=5,
        progress=False,
    )
    with pytest.raises(ValueError, match=match):
        run_gaussian(key(), **{**base, **kwargs})


@pytest.mark.unit
def test_bad_inputs_lower_level():
    with pytest.raises(ValueError, match="shape=0"):
        log_gamma(key(), 0.0)
    with pytest.raises(ValueError, match="sample_size=1"):
        run_gaussian(key(), sample_size=1, method="exact", num_chains=1, num_generations=1)
    with pytest.raises(ValueError, match="estimator='x'"):
        gaussian("x")
    with pytest.raises(ValueError, match="M=1"):
        gaussian("mle").fit(None, as_sample(jnp.ones(1)))
    with pytest.raises(ValueError, match="sample_size=0"):
        replace_step(gaussian("mle"), 0)


@pytest.mark.unit
def test_special_functions_used_by_records_are_finite_in_float32():
    rec = gaussian_record(0.0, 1.0, 2.0, 1e-6)
    lv = jnp.asarray([-1e4, -100.0, 0.0, 50.0], jnp.float32)
    r = jax.vmap(rec)(GaussianParams(jnp.zeros(4, jnp.float32), lv))
    for v in r:
        assert np.isfinite(np.asarray(v)).all()
    np.testing.assert_allclose(r.tail_own[2], special.erfc(2 / np.sqrt(2)), rtol=1e-6)


@pytest.mark.unit
def test_lane_groups_change_no_number_and_refuse_bad_widths():
    """Lane groups (``sim.parallel.segment``) only reorder the work: a program whose
    batched arithmetic does not round by batch shape (the Gaussian chain: pairwise
    trees) gives the same bits in groups of 8 lanes as in one vmap; a width that is
    not a power of two is refused by name."""
    from sim import families
    from sim.parallel import simulate_points

    prog = families.get("gaussian").program(
        families.get("gaussian").settings(sample_size=6), (), 64, 3
    )
    go = lambda **kw: simulate_points(
        jnp.reshape(key(5), (1,)),
        prog.step,
        prog.init,
        prog.record,
        num_generations=3,
        num_chains=64,
        chunk_chains=32,
        block_size=32,
        progress=False,
        **kw,
    )[0]
    plain, grouped = go(), go(lane_group=8)
    for a, b in zip(
        jax.tree.leaves((plain.final, plain.moments)),
        jax.tree.leaves((grouped.final, grouped.moments)),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for bad in (0, 3, 2.5):
        with pytest.raises(ValueError, match=f"lane_group={bad}"):
            go(lane_group=bad)
