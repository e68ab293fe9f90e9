"""Exact binomial and multinomial samplers of ``sim.random``.

Goodness of fit is Pearson's chi-square against the exact pmf (scipy), expected
cells below 10 pooled with their neighbours, each test judged at the false-failure
rate ``FALSE_FAILURE_RATE`` per test function (Bonferroni over its comparisons),
with fixed seeds. Each statistical test also shows that the same comparison
rejects a deliberately wrong distribution, so it can fail.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from sim import random as sr
from tests.stats import FALSE_FAILURE_RATE, assert_agree, assert_rejects


def key(seed=0):
    return jax.random.key(seed, impl="philox4x32")


def pooled_chisq(draws, pmf):
    """Pearson chi-square p-value of integer draws against pmf[k], k = 0..len(pmf)-1.

    Cells are pooled left to right until their expected count reaches 10 (the rest is
    merged into the last cell). Draws outside the support make the p-value 0.
    """
    draws = np.asarray(draws).ravel()
    if not np.all((draws >= 0) & (draws < len(pmf)) & (draws == np.round(draws))):
        return 0.0
    obs = np.bincount(draws.astype(np.int64), minlength=len(pmf)).astype(float)
    exp = np.asarray(pmf, float) * draws.size
    cells_o, cells_e, o, e = [], [], 0.0, 0.0
    for oi, ei in zip(obs, exp, strict=True):
        o, e = o + oi, e + ei
        if e >= 10:
            cells_o.append(o)
            cells_e.append(e)
            o, e = 0.0, 0.0
    if cells_e:
        cells_o[-1] += o
        cells_e[-1] += e
    cells_o, cells_e = np.asarray(cells_o), np.asarray(cells_e)
    if cells_e.size < 2:
        return 1.0 if cells_o.sum() == draws.size else 0.0
    stat = np.sum((cells_o - cells_e) ** 2 / cells_e)
    return float(stats.chi2.sf(stat, cells_e.size - 1))


def binom_pmf(n, q):
    return stats.binom.pmf(np.arange(int(n) + 1), int(n), q)


# (n, q): both branches, the threshold mean 10 from both sides, inversion with n > 39,
# the symmetry side q > 1/2, n = 1, and n = 1e5 with tiny and moderate q.
CASES = [
    (1, 0.3),
    (5, 0.5),
    (20, 0.45),  # mean 9, inversion, n <= 39 (no truncation)
    (45, 0.2),  # mean 9, inversion truncated at 39
    (1000, 0.0099),  # mean 9.9, just below the BTRS threshold
    (1000, 0.0101),  # mean 10.1, just above
    (22, 0.46),  # mean 10.1, BTRS with small n
    (50, 0.8),  # symmetry side, BTRS on n(1-q) = 10
    (30, 0.95),  # symmetry side, inversion
    (200, 0.5),
    (100_000, 1e-6),  # mean 0.1
    (100_000, 5e-5),  # mean 5, inversion with huge n
    (100_000, 1.2e-4),  # mean 12, BTRS
    (100_000, 0.3),
    (1 << 20, 0.5),
]
NUM_KEYS, REPS = 4096, 48  # 196,608 draws per case


def _grid(dtype):
    n = np.repeat(np.asarray([c[0] for c in CASES], np.float64)[:, None], REPS, 1)
    q = np.repeat(np.asarray([c[1] for c in CASES], np.float64)[:, None], REPS, 1)
    return jnp.asarray(n, dtype), jnp.asarray(q, dtype)


@pytest.fixture(scope="module")
def binomial_draws():
    """dtype name -> draws of shape (num_cases, NUM_KEYS * REPS), float64 on the host."""
    out = {}
    for dtype in (jnp.float32, jnp.float64):
        n, q = _grid(dtype)
        keys = jax.random.split(key(1), NUM_KEYS)
        x = jax.jit(jax.vmap(lambda k, n=n, q=q: sr.binomial(k, n, q)))(keys)
        assert x.dtype == dtype
        out[jnp.dtype(dtype).name] = np.moveaxis(np.asarray(x, np.float64), 0, 1).reshape(
            len(CASES), -1
        )
    return out


@pytest.mark.statistical
def test_binomial_goodness_of_fit(binomial_draws):
    alpha = FALSE_FAILURE_RATE / (2 * len(CASES))
    for name, draws in binomial_draws.items():
        assert not np.isnan(draws).any()
        for (n, q), x in zip(CASES, draws, strict=True):
            p = pooled_chisq(x, binom_pmf(n, q))
            assert p > alpha, f"{name} Bin({n}, {q}): chi-square p = {p:.2e}"


@pytest.mark.statistical
def test_binomial_test_rejects_wrong_distributions(binomial_draws):
    """The test above rejects Bin(n, 1.02 q) and Poisson(n q) where they differ enough
    to be seen in 196,608 draws, and the truth is accepted at the same threshold."""
    alpha = FALSE_FAILURE_RATE / (2 * len(CASES))
    wrong = {
        (200, 0.5): lambda n, q: binom_pmf(n, 1.02 * q),
        (100_000, 0.3): lambda n, q: binom_pmf(n, 1.02 * q),
        (1000, 0.0101): lambda n, q: binom_pmf(n, 1.02 * q),
        (20, 0.45): lambda n, q: stats.poisson.pmf(np.arange(n + 1), n * q),
        (50, 0.8): lambda n, q: stats.binom.pmf(n - np.arange(n + 1), n, 1 - 1.02 * (1 - q)),
        (45, 0.2): lambda n, q: stats.poisson.pmf(np.arange(n + 1), n * q),
    }
    for name, draws in binomial_draws.items():
        for (n, q), make in wrong.items():
            x = draws[CASES.index((n, q))]
            p = pooled_chisq(x, make(n, q))
            assert p < alpha, f"{name} ({n}, {q}): wrong pmf not rejected, p = {p:.2e}"


@pytest.mark.costly
@pytest.mark.unit
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_binomial_edge_cases_are_exact(dtype):
    """n = 0 or q = 0 give 0, q = 1 gives n (up to 2^24 in float32); NaN q, NaN or
    negative n give NaN; a scalar works. float64 runs with a threefry key (the
    jax.random.bits path of the random words)."""
    n = jnp.asarray([0, 0, 7, 7, 1e5, 1e5, 1, 1 << 24, 0, 3, 200, -1, 3, np.nan], dtype)
    q = jnp.asarray([0, 0.7, 0, 1, 0, 1, 1, 1, 1, 0.5, 0.5, 0.5, np.nan, 0.5], dtype)
    k0 = key(2) if dtype == jnp.float32 else jax.random.key(2, impl="threefry2x32")
    keys = jax.random.split(k0, 256)
    x = np.asarray(jax.jit(jax.vmap(lambda k: sr.binomial(k, n, q, num_candidates=1)))(keys))
    want = np.asarray([0, 0, 0, 7, 0, 1e5, 1, 1 << 24, 0], np.float64)
    np.testing.assert_array_equal(x[:, :9], np.broadcast_to(want, (256, 9)))
    assert set(np.unique(x[:, 9])) <= {0.0, 1.0, 2.0, 3.0}
    assert np.all((x[:, 10] >= 0) & (x[:, 10] <= 200) & (x[:, 10] == np.round(x[:, 10])))
    # mean of 256 iid Bin(200, 1/2) draws: SE sqrt(200 q (1 - q) / 256)
    se = np.sqrt(200 * 0.25 / 256)
    assert_agree(x[:, 10].mean(), se, 100.0, "mean of Bin(200, 1/2)")
    assert_rejects(x[:, 10].mean(), se, 200 * 0.48, "mean of Bin(200, 1/2) vs q = 0.48")
    assert np.isnan(x[:, 11:]).all()
    if dtype == jnp.float32:
        assert float(sr.binomial(key(3), jnp.asarray(5.0, dtype), jnp.asarray(1.0, dtype))) == 5.0


BTRS_CASES = [(22, 0.46), (1000, 0.0101), (200, 0.5), (100_000, 0.3), (5000, 0.9)]


@pytest.mark.statistical
def test_binomial_fallback_gives_the_same_distribution():
    """num_candidates=1 sends every lane whose first BTRS candidate is rejected (15-30 %)
    to the fallback; the fallback alone (all lanes unfinished, inversion lanes too)
    gives Bin(n, q) as well."""
    n = jnp.repeat(jnp.asarray([c[0] for c in BTRS_CASES], jnp.float64)[:, None], 32, 1)
    q = jnp.repeat(jnp.asarray([c[1] for c in BTRS_CASES], jnp.float64)[:, None], 32, 1)
    keys = jax.random.split(key(5), 4096)
    one = jax.jit(jax.vmap(lambda k: sr.binomial(k, n, q, num_candidates=1)))(keys)
    one = np.moveaxis(np.asarray(one), 0, 1).reshape(len(BTRS_CASES), -1)
    # The fallback did run: the first pass alone leaves 15-30 % of these lanes unfinished.
    first = sr._first_pass_fn(("btrs", 1))
    flat = lambda a: a.reshape(1, -1)
    salt = jnp.zeros((1,), jnp.uint32)
    unfinished = jax.jit(jax.vmap(lambda k: jnp.isnan(first(k[None], salt, flat(n), flat(q)))))
    frac = np.asarray(unfinished(keys)).reshape(len(keys), *n.shape).mean(axis=(0, 2))
    assert np.all((frac > 0.1) & (frac < 0.35)), frac

    # All lanes unfinished (x = NaN): the fallback draws every value, inversion included.
    all_cases = BTRS_CASES + [(20, 0.45), (45, 0.2), (1, 0.3)]
    nf = jnp.repeat(jnp.asarray([c[0] for c in all_cases], jnp.float64)[:, None], 32, 1)
    qf = jnp.repeat(jnp.asarray([c[1] for c in all_cases], jnp.float64)[:, None], 32, 1)

    def fallback_only(k):
        nan = jnp.full(nf.shape, jnp.nan, nf.dtype)
        row = lambda a: a.reshape(1, -1)
        salt = jnp.zeros((1,), jnp.uint32)
        return sr._finish_fn(k[None], salt, row(nf), row(qf), row(nan)).reshape(nf.shape)

    fb = np.asarray(jax.jit(jax.vmap(fallback_only))(keys))
    fb = np.moveaxis(fb, 0, 1).reshape(len(all_cases), -1)

    alpha = FALSE_FAILURE_RATE / (len(BTRS_CASES) + len(all_cases))
    for (nn, qq), x in zip(BTRS_CASES, one, strict=True):
        p = pooled_chisq(x, binom_pmf(nn, qq))
        assert p > alpha, f"num_candidates=1, Bin({nn}, {qq}): p = {p:.2e}"
    for (nn, qq), x in zip(all_cases, fb, strict=True):
        p = pooled_chisq(x, binom_pmf(nn, qq))
        assert p > alpha, f"fallback only, Bin({nn}, {qq}): p = {p:.2e}"
    # ... and the same test rejects a wrong pmf for the fallback's draws
    assert pooled_chisq(fb[2], binom_pmf(200, 0.51)) < alpha


@pytest.mark.statistical
@pytest.mark.slow
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_binomial_goodness_of_fit_large(dtype):
    """2^23 draws per case (--runslow): enough to see a 1 % error in the acceptance
    probability of part of the support (dropping BTRS's Stirling correction of k fails)."""
    cases = [(22, 0.46), (1000, 0.0101), (200, 0.5), (100_000, 0.3), (45, 0.2), (30, 0.95)]
    n = jnp.repeat(jnp.asarray([c[0] for c in cases], dtype)[:, None], 256, 1)
    q = jnp.repeat(jnp.asarray([c[1] for c in cases], dtype)[:, None], 256, 1)
    f = jax.jit(jax.vmap(lambda k: sr.binomial(k, n, q)))
    x = np.concatenate(
        [np.asarray(f(jax.random.split(key(20 + i), 4096))) for i in range(8)], axis=0
    )
    x = np.moveaxis(x, 0, 1).reshape(len(cases), -1)
    alpha = FALSE_FAILURE_RATE / len(cases)
    for (nn, qq), xi in zip(cases, x, strict=True):
        p = pooled_chisq(xi, binom_pmf(nn, qq))
        assert p > alpha, f"Bin({nn}, {qq}): p = {p:.2e}"
    assert pooled_chisq(x[2], binom_pmf(200, 0.501)) < alpha


@pytest.mark.unit
def test_inversion_resolves_float32_tail_probabilities():
    """Bin(1, q) by inversion in float32: X = 1 iff the side bit is set and V < ~q, so
    the threshold on the 31 low bits sits at q 2^32 to float32 rounding, far below the
    6e-8 resolution of a 24-bit uniform (which would make q = 2e-8 impossible)."""
    for q in (2e-8, 3e-7, 1e-4):
        r = jnp.float32(q / (1 - q))
        base = np.uint32(1 << 31)
        j = np.arange(0, int(4 * q * 2**32) + 64, max(1, int(q * 2**32) // 4096), dtype=np.uint64)
        words = jnp.asarray((base + j).astype(np.uint32))
        x = np.asarray(sr._inversion(words, jnp.ones(words.shape, jnp.float32), r, 9))
        assert set(np.unique(x)) <= {0.0, 1.0}
        switch = j[np.argmax(x == 0)]  # first low-bit value that gives X = 0
        assert np.all(x[j < switch] == 1) and np.all(x[j >= switch] == 0)
        step = max(1, int(q * 2**32) // 4096)
        assert abs(switch - q * 2.0**32) <= 2 + step + 1e-4 * q * 2.0**32
        # the bottom side (side bit 0) gives X = 0 for V < 1 - q: its first words
        ones = jnp.ones(words.shape, jnp.float32)
        assert np.all(np.asarray(sr._inversion(words - base, ones, r, 9)) == 0)


@pytest.mark.unit
def test_inversion_truncation_bounds():
    """inversion_max_mean(J) keeps the Poisson tail beyond J below 1e-12 (scipy), and that
    bounds the binomial tail of the same mean (the truncation of the mean < 10 branch)."""
    for terms in (9, 14, 19, 24, 29, 39):
        mu = sr.inversion_max_mean(terms)
        assert stats.poisson.sf(terms, mu) < sr.TRUNCATION
        assert stats.poisson.sf(terms, mu * 1.001) > sr.TRUNCATION
    assert sr.inversion_max_mean(sr.INVERSION_TERMS) >= sr.BTRS_MIN_MEAN
    for n in (40, 100, 10_000, 10**7):
        assert stats.binom.sf(39, n, sr.BTRS_MIN_MEAN / n) <= stats.poisson.sf(39, 10.0)


@pytest.mark.costly
@pytest.mark.unit
def test_batch_invariance_and_no_nan():
    """A key's draws are bit-identical in vmap batches of 1, 7 and 64 (fallback on; the
    multinomial in batches of 7 and 64), and in an unbatched call."""
    n = jnp.asarray([[1, 30, 500, 1e5, 22, 0]] * 4, jnp.float32)
    q = jnp.asarray([[0.3, 0.2, 0.5, 0.01, 0.46, 0.5]] * 4, jnp.float32)
    keys = jax.random.split(key(6), 64)
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(100, 0.3), size=64).astype(np.float32)
    probs[:, ::7] = 0.0
    probs = jnp.asarray(probs)
    bin_out, multi_out = [], []
    for b in (1, 7, 64):
        f = jax.jit(jax.vmap(lambda k: sr.binomial(k, n, q, num_candidates=1)))
        bin_out.append(np.asarray(f(keys[:b])))
    for b in (7, 64):
        g = jax.jit(jax.vmap(lambda k, p: sr.multinomial(k, 5000, p)))
        multi_out.append(np.asarray(g(keys[:b], probs[:b])))
    for b, x in zip((1, 7, 64), bin_out, strict=True):
        np.testing.assert_array_equal(x, bin_out[-1][:b])
        assert not np.isnan(x).any()
    np.testing.assert_array_equal(multi_out[0], multi_out[1][:7])
    assert np.all(multi_out[-1].sum(1) == 5000)
    # unbatched call = the same key in a batch
    np.testing.assert_array_equal(
        np.asarray(sr.binomial(keys[3], n, q, num_candidates=1)), bin_out[-1][3]
    )


# ---------------------------------------------------------------------------- multinomial


@pytest.mark.costly
@pytest.mark.unit
@pytest.mark.parametrize("k", [1, 2, 1025])
def test_multinomial_sums_to_total_and_zeros_stay_zero(k):
    """Exact sums for totals 0..1e5 (a traced total), zeros kept, one-hot probs (K = 2
    with a threefry key)."""
    rng = np.random.default_rng(k)
    p = rng.dirichlet(np.full(k, 0.5)).astype(np.float32)
    if k > 2:
        p[rng.choice(k, k // 3, replace=False)] = 0.0
    onehot = np.zeros(k, np.float32)
    onehot[k // 2] = 1.0
    probs = jnp.asarray(np.stack([p, onehot, p * 3.7]))  # unnormalised is fine
    f = jax.jit(jax.vmap(lambda kk, pp, t: sr.multinomial(kk, t, pp), (0, 0, None)))
    keys = jax.random.split(key(7) if k != 2 else jax.random.key(7, impl="threefry2x32"), 3)
    for total in (0, 1, 7, 1000, 100_000):
        x = np.asarray(f(keys, probs, jnp.int32(total)))
        assert x.dtype == np.int32 and x.shape == (3, k)
        np.testing.assert_array_equal(x.sum(1), total)
        assert np.all(x >= 0)
        assert np.all(x[:, np.asarray(probs[0]) == 0][[0, 2]] == 0)
        assert x[1, k // 2] == total


@pytest.mark.statistical
def test_multinomial_marginals():
    """Each count is Bin(total, p_i): a K = 37 vector with masses from 0.3 to 1e-7 and
    zeros, float32 and float64, and a concentrated K = 1000 vector (adjacent heavy
    categories, so deep tree levels hold nodes that need BTRS and the fallback)."""
    p37 = np.asarray([0.3, 0.2, 0.1, 1e-7, 0.05, 0.0, 3e-4] + [0.01] * 30)
    p37 = p37 / p37.sum()
    check37 = [0, 1, 3, 5, 6, 20]
    p1000 = np.zeros(1000)
    p1000[[500, 501, 502, 503, 10, 11, 999]] = [0.2, 0.25, 0.1, 0.15, 0.1, 0.1, 0.1]
    p1000[::50] += 1e-5
    p1000 = p1000 / p1000.sum()
    check1000 = [500, 501, 503, 10, 999, 50]
    runs = [
        (jnp.float32, p37, 1000, check37, 65536),
        (jnp.float64, p37, 1000, check37, 65536),
        (jnp.float32, p1000, 100_000, check1000, 8192),
    ]
    alpha = FALSE_FAILURE_RATE / sum(len(r[3]) for r in runs)
    for dtype, p, total, check, chains in runs:
        keys = jax.random.split(key(8), chains)
        pj = jnp.asarray(p, dtype)
        x = np.asarray(jax.jit(jax.vmap(lambda k, pj=pj, t=total: sr.multinomial(k, t, pj)))(keys))
        np.testing.assert_array_equal(x.sum(1), total)
        assert np.all(x[:, p == 0] == 0)
        for i in check:
            pi = float(np.asarray(pj, np.float64)[i] / np.asarray(pj, np.float64).sum())
            val = pooled_chisq(x[:, i], binom_pmf(total, pi))
            assert val > alpha, f"{jnp.dtype(dtype).name} K={len(p)} category {i}: p = {val:.2e}"
        # the same test rejects a 2 % error in the largest category's probability
        i = int(np.argmax(p))
        assert pooled_chisq(x[:, i], binom_pmf(total, 1.02 * p[i])) < alpha


@pytest.mark.statistical
def test_multinomial_joint_distribution_small_k():
    """K = 3, total = 5: all 21 outcomes against the exact multinomial pmf, and the same
    test rejects probabilities off by 5 % relative (float64; float32 is covered by the
    marginals)."""
    p = np.asarray([0.5, 0.3, 0.2])
    outcomes = [(a, b, 5 - a - b) for a in range(6) for b in range(6 - a)]
    index = {o: i for i, o in enumerate(outcomes)}
    pmf = np.asarray([stats.multinomial.pmf(o, 5, p) for o in outcomes])
    p_wrong = np.asarray([0.5 * 1.05, 0.3, 0.2 - 0.025])
    pmf_wrong = np.asarray([stats.multinomial.pmf(o, 5, p_wrong) for o in outcomes])
    keys = jax.random.split(key(9), 200_000)
    pj = jnp.asarray(p, jnp.float64)
    x = np.asarray(jax.jit(jax.vmap(lambda k: sr.multinomial(k, 5, pj)))(keys))
    table = np.full((6, 6), -1)
    for (a, b, _), i in index.items():
        table[a, b] = i
    codes = table[x[:, 0], x[:, 1]]
    assert np.all(codes >= 0) and np.all(x.sum(1) == 5)
    assert pooled_chisq(codes, pmf) > FALSE_FAILURE_RATE
    assert pooled_chisq(codes, pmf_wrong) < FALSE_FAILURE_RATE
