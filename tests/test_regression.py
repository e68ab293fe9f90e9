r"""The regression family, its DataOps, and regression chains against ``theory.regression``.

Exact checks: ``fit`` is ``fit_stats(stats(data))``; OLS and ridge against
NumPy's least squares and a dense solve; merged summaries against the
summary of the concatenated rows; 0/1-weighted ``point_stats`` against the
kept rows; the fixed design; the record; per-chain results bit-identical
across chunk sizes; validation errors naming the bad values.

Statistical checks (float64, fixed seeds): the cross-chain mean of the test
error :math:`\lVert\hat w_n - w^*\rVert^2` at every generation 1..G against

* :func:`theory.regression.test_error` (``design="fresh"``), replace and
  accumulate (OLS, expectation over the design and the noise);
* :func:`theory.regression.ridge_test_error` for the shared fixed design
  (:func:`sim.families.regression.family_design` through
  :func:`theory.regression.ridge_spectrum`), OLS and ridge, replace and
  accumulate (expectation over the noise given X).

Each is a z-score with the Monte-Carlo standard error of the mean, judged at
the false-failure rate ``tests.stats.FALSE_FAILURE_RATE`` per test
(Bonferroni over its G generations), and each test also shows that the same
comparison rejects a wrong formula (the other regime's curve; for ridge also
the OLS curve), so it can fail.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sim.families.regression import (
    RegressionData,
    RegressionStats,
    empty_stats,
    family_design,
    merge_stats,
    point_stats,
    regression,
    regression_record,
    regression_stats,
)
from sim.regimes import Regime
from sim.runners import default_w_star, run_regression
from tests.stats import assert_agree, assert_rejects
from theory import regression as tr

F64 = jnp.float64


def _key(seed):
    return jax.random.key(seed, impl="philox4x32")


def _data(fam, seed, d, n, scale=1.0):
    w = jnp.linspace(-1.0, 1.0, d, dtype=F64) * scale
    return fam.sample(_key(seed), w, n), w


# ----------------------------------------------------------------------------- exact


@pytest.mark.costly
@pytest.mark.unit
@pytest.mark.parametrize("design", ["fresh", "fixed"])
@pytest.mark.parametrize("ridge", [0.0, 2.5])
@pytest.mark.parametrize("d", [1, 4])
def test_fit_is_fit_stats_of_stats_and_matches_numpy(design, ridge, d):
    t = 12
    fam = regression(d, t, 0.7, ridge, design, design_seed=3, dtype=F64)
    data, _ = _data(fam, 0, d, t)
    a = jax.jit(fam.fit)(None, data)
    b = jax.jit(lambda data: fam.ops.fit_stats(None, fam.ops.stats(data)))(data)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # the same computation
    eager = fam.ops.fit_stats(None, fam.ops.stats(data))
    np.testing.assert_array_equal(np.asarray(fam.fit(None, data)), np.asarray(eager))
    x, y = np.asarray(data.x), np.asarray(data.y)
    if ridge == 0:
        expect = np.linalg.lstsq(x, y, rcond=None)[0]
    else:
        expect = np.linalg.solve(x.T @ x + ridge * np.eye(d), x.T @ y)
    np.testing.assert_allclose(np.asarray(a), expect, rtol=1e-10, atol=1e-12)


@pytest.mark.unit
@pytest.mark.parametrize("d", [1, 3])
def test_merge_is_stats_of_concatenated_rows_and_empty_is_identity(d):
    fam = regression(d, 9, 1.0, 0.0, dtype=F64)
    a, _ = _data(fam, 1, d, 9)
    b, _ = _data(fam, 2, d, 5)
    ops = fam.ops
    merged = ops.merge(ops.stats(a), ops.stats(b))
    both = RegressionData(jnp.concatenate([a.x, b.x]), jnp.concatenate([a.y, b.y]))
    whole = ops.stats(both)
    assert float(ops.count(merged)) == 14.0 == float(ops.count(whole))
    for m, w in zip(merged, whole, strict=True):
        np.testing.assert_allclose(np.asarray(m), np.asarray(w), rtol=1e-13, atol=1e-13)
    s = ops.stats(a)
    e = ops.empty(jnp.zeros(d, F64))
    assert e.gram.shape == (d, d) and e.moment.shape == (d,) and e.count.dtype == F64
    for u, v in zip(ops.merge(e, s), s, strict=True):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    assert ops.merge is merge_stats and ops.empty is empty_stats


@pytest.mark.unit
@pytest.mark.parametrize("d", [1, 3])
def test_weighted_point_stats_are_stats_of_kept_rows(d):
    fam = regression(d, 11, 0.5, 1.0, dtype=F64)
    data, _ = _data(fam, 3, d, 11)
    pts = fam.ops.points(data)
    assert pts is data
    keep = np.array([1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0], bool)
    got = fam.ops.point_stats(pts, jnp.asarray(keep))
    kept = regression_stats(RegressionData(data.x[keep], data.y[keep]))
    assert float(got.count) == keep.sum()
    for u, v in zip(got, kept, strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-13, atol=1e-13)
    ones = point_stats(pts, jnp.ones(11))
    for u, v in zip(ones, regression_stats(data), strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-13, atol=1e-13)
    none = point_stats(pts, jnp.zeros(11, bool))
    assert all(not np.any(np.asarray(v)) for v in none)


@pytest.mark.unit
def test_fixed_design_is_shared_and_the_same_in_both_precisions():
    d, t = 3, 8
    fam = regression(d, t, 0.5, 0.0, "fixed", design_seed=5, dtype=F64)
    x = family_design(d, t, 5, F64)
    x32 = family_design(d, t, 5, jnp.float32)
    assert x.shape == (t, d) and not x.flags.writeable
    np.testing.assert_array_equal(x, x32.astype(np.float64))  # drawn in float32, cast
    assert not np.array_equal(x, family_design(d, t, 6, F64))
    w = jnp.ones(d, F64)
    a = fam.sample(_key(0), w, t)
    b = fam.sample(_key(1), w, t)
    np.testing.assert_array_equal(np.asarray(a.x), x)
    np.testing.assert_array_equal(np.asarray(b.x), x)
    assert not np.array_equal(np.asarray(a.y), np.asarray(b.y))  # labels are redrawn
    with pytest.raises(ValueError, match="num_samples=8 rows; cannot draw n=5"):
        fam.sample(_key(0), w, 5)
    noiseless = regression(d, t, 0.0, 0.0, "fixed", design_seed=5, dtype=F64)
    np.testing.assert_allclose(np.asarray(noiseless.sample(_key(0), w, t).y), x @ np.ones(d))
    fresh = regression(d, t, 0.5, dtype=F64)
    assert not np.array_equal(
        np.asarray(fresh.sample(_key(0), w, t).x), np.asarray(fresh.sample(_key(1), w, t).x)
    )


@pytest.mark.unit
def test_family_is_cached_and_named():
    a = regression(4, 10, 1.0, 0.5, "fixed", 2, F64)
    assert a is regression(4, 10, 1, 0.5, "fixed", 2, "float64")
    assert a is not regression(4, 10, 1.0, 0.5, "fixed", 3, F64)
    assert regression(4, 10, 1.0, design_seed=7) is regression(4, 10, 1.0, design_seed=8)
    assert "d=4" in a.name and "T=10" in a.name and "fixed2" in a.name
    assert regression(4, 10, 1.0).ops.min_count == 4
    assert regression(4, 10, 1.0, ridge=0.1).ops.min_count == 1


@pytest.mark.unit
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(dim=0), "dim=0"),
        (dict(num_samples=0), "num_samples=0"),
        (dict(dim=2.5), "dim=2.5"),
        (dict(noise=-1.0), "noise=-1.0"),
        (dict(noise=float("inf")), "noise=inf"),
        (dict(noise=float("nan")), "noise=nan"),
        (dict(ridge=-0.1), "ridge=-0.1"),
        (dict(design="random"), "design='random'"),
        (dict(design="fixed", design_seed=-1), "design_seed=-1"),
        (dict(dim=5, num_samples=5), "dim=5 >= num_samples=5"),
        (dict(dim=8, num_samples=3), "dim=8 >= num_samples=3"),
        (dict(dtype=jnp.int32), "dtype=int32"),
    ],
)
def test_bad_settings_are_named(kwargs, match):
    args = dict(dim=3, num_samples=10, noise=1.0) | kwargs
    with pytest.raises(ValueError, match=match):
        regression(**args)


@pytest.mark.unit
def test_fixed_design_ols_is_min_norm_least_squares_when_rows_repeat():
    """Repeated rows of the shared X (subsampling) can make X^T X singular: lstsq's answer."""
    d, t = 4, 6
    fam = regression(d, t, 1.0, 0.0, "fixed", design_seed=2, dtype=F64)
    data, _ = _data(fam, 5, d, t)
    rows = np.array([0, 1, 2, 0, 1, 2, 2])  # 7 >= d rows, rank 3 < d
    sub = RegressionData(data.x[rows], data.y[rows] + jnp.arange(7.0))
    w = np.asarray(fam.ops.fit_stats(None, fam.ops.stats(sub)))
    expect = np.linalg.lstsq(np.asarray(sub.x), np.asarray(sub.y), rcond=None)[0]
    assert np.all(np.isfinite(w))
    np.testing.assert_allclose(w, expect, rtol=1e-9, atol=1e-12)
    one = regression(1, 3, 1.0, 0.0, "fixed", dtype=F64)
    zero = RegressionStats(jnp.float64(2), jnp.zeros((1, 1)), jnp.zeros(1))
    np.testing.assert_array_equal(np.asarray(one.ops.fit_stats(None, zero)), [0.0])


@pytest.mark.unit
def test_ridge_allows_more_weights_than_rows():
    fam = regression(6, 4, 1.0, ridge=0.5, dtype=F64)
    data, _ = _data(fam, 4, 6, 4)
    w = np.asarray(fam.fit(None, data))
    x, y = np.asarray(data.x), np.asarray(data.y)
    np.testing.assert_allclose(w, np.linalg.solve(x.T @ x + 0.5 * np.eye(6), x.T @ y), rtol=1e-10)


@pytest.mark.costly
@pytest.mark.unit
def test_record_and_runner_validation():
    rec = regression_record((1.0, -2.0))
    r = rec(jnp.array([0.5, 0.0], F64))
    assert float(r.test_error) == 0.25 + 4.0 and float(r.weight_norm_sq) == 0.25
    assert regression_record((1.0, -2.0)) is rec
    np.testing.assert_allclose(np.linalg.norm(default_w_star(7)), 1.0)
    kw = dict(dim=3, num_samples=10, noise=1.0, num_chains=4, num_generations=2, progress=False)
    with pytest.raises(ValueError, match=r"w_star must have shape \(3,\)"):
        run_regression(_key(0), w_star=[1.0, 2.0], **kw)
    with pytest.raises(ValueError, match="budget=3, dim=3"):
        run_regression(_key(0), regime=Regime.subsample(3), **kw)
    # kind names are accepted as sweeps give them; anything else is refused by name
    with pytest.raises(ValueError, match="regime='forever' is not a Regime"):
        run_regression(_key(0), regime="forever", **kw)


SMALL = dict(num_samples=6, noise=1.0, num_chains=256, num_generations=3, dtype=F64)


@functools.cache
def _small_run(d, design, ridge, budget=0, chunk_chains=None):
    """Small accumulate (or, with a budget, subsample) runs shared by the tests below."""
    regime = Regime.subsample(budget) if budget else Regime.accumulate()
    kw = dict(SMALL, dim=d, ridge=ridge, design=design, regime=regime, block_size=32)
    return run_regression(_key(2), chunk_chains=chunk_chains, progress=False, **kw)


@pytest.mark.costly
@pytest.mark.unit
@pytest.mark.parametrize("d, design, ridge", [(1, "fresh", 0.3), (3, "fixed", 0.0)])
def test_chains_bit_identical_across_chunk_sizes(d, design, ridge):
    """Per-chain weights do not depend on how chains are chunked (Cholesky and eigh solves)."""
    a = _small_run(d, design, ridge, chunk_chains=32)
    b = _small_run(d, design, ridge)
    np.testing.assert_array_equal(a.final.params, b.final.params)
    np.testing.assert_array_equal(a.moments["test_error"].mean, b.moments["test_error"].mean)


@pytest.mark.costly
@pytest.mark.unit
def test_subsample_with_the_whole_pool_is_accumulate():
    """subsample(budget = every point ever stored) trains on exactly the accumulated rows.

    Fixed design, OLS: the pool holds g copies of X with their labels, and the
    stored points go through ``points``/``point_stats`` instead of ``stats``.
    """
    g, t = SMALL["num_generations"], SMALL["num_samples"]
    acc = _small_run(3, "fixed", 0.0)
    sub = _small_run(3, "fixed", 0.0, budget=t * g)
    np.testing.assert_allclose(sub.final.params, acc.final.params, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(sub.moments["train_size"].mean[1:], t * np.arange(1, g + 1))
    np.testing.assert_array_equal(acc.moments["train_size"].mean[1:], t * np.arange(1, g + 1))


# ----------------------------------------------------------------------------- statistical

D, T, NOISE, G = 5, 25, 1.0, 10
# Chains per run: the fresh-design accumulate curve is only ~10 standard errors
# from the fixed-design one at 16384 chains; every other wrong curve is > 40 away.
CHAINS = {"fresh": 16384, "fixed": 4096}
RIDGE = 6.0
W_STAR = default_w_star(D)
GENS = np.arange(1, G + 1)


def _run(seed, design, ridge, regime):
    return run_regression(
        _key(seed),
        dim=D,
        num_samples=T,
        noise=NOISE,
        ridge=ridge,
        design=design,
        design_seed=1,
        regime=regime,
        num_chains=CHAINS[design],
        num_generations=G,
        dtype=F64,
        progress=False,
    )


@pytest.fixture(scope="module")
def runs():
    """(design, ridge, regime kind) -> result; every run has its own seed."""
    out = {}
    seed = 10
    for design, ridge in (("fresh", 0.0), ("fixed", 0.0), ("fixed", RIDGE)):
        for kind in ("replace", "accumulate"):
            regime = Regime.replace() if kind == "replace" else Regime.accumulate()
            out[design, ridge, kind] = _run(seed, design, ridge, regime)
            seed += 1
    return out


def _fixed_theory(ridge, kind):
    spec = tr.ridge_spectrum(family_design(D, T, 1, F64), np.asarray(W_STAR))
    res = tr.ridge_test_error(GENS, spec.eigenvalues, spec.signal, NOISE, ridge, kind)
    return tr.RidgeError(*(np.asarray(v, np.float64) for v in res))


@pytest.mark.statistical
@pytest.mark.parametrize("kind", ["replace", "accumulate"])
def test_fresh_design_ols_matches_test_error(runs, kind):
    """L1/L2, fresh design: E||w_n - w*||^2 = n k (replace) or the accumulate sum."""
    r = runs["fresh", 0.0, kind]
    te = r.moments["test_error"]
    theory = np.asarray(tr.test_error(GENS, D, T, NOISE, kind, "fresh"))
    assert_agree(te.mean[GENS], te.sem[GENS], theory, f"fresh OLS {kind}")
    other = "accumulate" if kind == "replace" else "replace"
    wrong = np.asarray(tr.test_error(GENS, D, T, NOISE, other, "fresh"))
    assert_rejects(te.mean[GENS], te.sem[GENS], wrong, f"{other} curve for fresh OLS {kind}")
    if kind == "accumulate":  # the fixed-design sum is a different (larger) curve
        wrong = np.asarray(tr.test_error(GENS, D, T, NOISE, kind, "fixed"))
        assert_rejects(te.mean[GENS], te.sem[GENS], wrong, "fixed-design accumulate curve")
    np.testing.assert_array_equal(
        r.moments["train_size"].mean[GENS], T * (GENS if kind == "accumulate" else 1)
    )


@pytest.mark.statistical
@pytest.mark.parametrize("ridge", [0.0, RIDGE])
@pytest.mark.parametrize("kind", ["replace", "accumulate"])
def test_fixed_design_matches_ridge_test_error(runs, kind, ridge):
    """L1 (OLS) and ridge given the shared design X: E[||w_n - w*||^2 | X]."""
    r = runs["fixed", ridge, kind]
    te = r.moments["test_error"]
    theory = _fixed_theory(ridge, kind).total
    assert_agree(te.mean[GENS], te.sem[GENS], theory, f"fixed design, ridge={ridge}, {kind}")
    other = "accumulate" if kind == "replace" else "replace"
    wrong = _fixed_theory(ridge, other).total
    assert_rejects(te.mean[GENS], te.sem[GENS], wrong, f"{other} curve, ridge={ridge}, {kind}")
    if ridge:  # the OLS curve for a ridge chain, and a penalty scaled by the row count
        ols = _fixed_theory(0.0, kind).total
        assert_rejects(te.mean[GENS], te.sem[GENS], ols, f"OLS curve for ridge {kind}")
        scaled = _fixed_theory(ridge * T, kind).total
        assert_rejects(te.mean[GENS], te.sem[GENS], scaled, f"lambda*T curve for ridge {kind}")


@pytest.mark.statistical
def test_fixed_design_ridge_bias_and_weights(runs):
    """Given X, the mean fit is E[w_n | X] = V diag(a^n) V^T w* (replace) or A w* (accumulate).

    Checked through ||w_n||^2: its mean is ||E w_n||^2 + the variance part, i.e.
    test_error's total minus bias plus ||E w_n||^2; tested at every generation.
    """
    x = family_design(D, T, 1, F64)
    evals, evecs = np.linalg.eigh(x.T @ x)
    coords = evecs.T @ np.asarray(W_STAR)
    a = evals / (evals + RIDGE)
    for kind in ("replace", "accumulate"):
        r = runs["fixed", RIDGE, kind]
        th = _fixed_theory(RIDGE, kind)
        shrink = a[None, :] ** GENS[:, None] if kind == "replace" else np.broadcast_to(a, (G, D))
        mean_norm = ((shrink * coords) ** 2).sum(-1)
        wn = r.moments["weight_norm_sq"]
        expect = mean_norm + th.variance
        assert_agree(wn.mean[GENS], wn.sem[GENS], expect, f"E||w_n||^2 ridge {kind}")
        wrong = np.full(G, float(np.sum(np.square(W_STAR)))) + th.variance  # no shrinkage
        assert_rejects(wn.mean[GENS], wn.sem[GENS], wrong, f"unshrunk mean, ridge {kind}")
