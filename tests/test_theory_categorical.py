"""Exact tests of theory.categorical against independent computations.

References used here (none of them shares code with the module):
* the binomial Wright-Fisher matrix from scipy.stats.binom and NumPy matrix
  powers; brute-force enumeration of every count path with math.comb;
* the full multinomial chain on compositions (itertools + scipy.stats
  .multinomial), propagated exactly, with and without additive smoothing;
* a NumPy linear solve, and sum_n P(T > n) from the propagated composition
  chain, for absorption times;
* the truncated Poisson chain (scipy.stats.poisson) and a plain Python loop
  for g_k;
* a NumPy re-implementation of temperature / top-k / top-p (stable sorts).

The statistical tests against the simulator live elsewhere.
"""

import jax

jax.config.update("jax_enable_x64", True)

import itertools  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.stats as st  # noqa: E402

from theory import categorical  # noqa: E402

pytestmark = pytest.mark.unit

# ---------------------------------------------------------------------------
# Independent references.
# ---------------------------------------------------------------------------


def wf_matrix(m):
    """Binomial Wright-Fisher matrix P[x, y] = Bin(y; m, x/m) (scipy)."""
    x = np.arange(m + 1)
    return st.binom.pmf(x[None, :], m, x[:, None] / m)


def survival_ref(ns, m, ps):
    """P(X_n > 0) by matrix powers: X_1 ~ Bin(m, p), X_{t+1} ~ Bin(m, X_t/m)."""
    mat = wf_matrix(m)
    ps = np.asarray(ps, float)
    out = np.zeros((len(ns),) + ps.shape)
    dist = st.binom.pmf(np.arange(m + 1)[:, None], m, ps.reshape(-1)[None, :]).T  # (P, m+1)
    for i, n in enumerate(ns):
        if n == 0:
            out[i] = ps > 0
        else:
            d = dist @ np.linalg.matrix_power(mat, n - 1)
            out[i] = d[:, 1:].sum(axis=1).reshape(ps.shape)  # no cancellation
    return out


def survival_paths(n, m, p):
    """P(X_n > 0) by summing over every path x_1..x_n (exact rational-free enumeration)."""

    def pmf(y, q):
        return math.comb(m, y) * q**y * (1 - q) ** (m - y)

    if n == 0:
        return float(p > 0)
    total = 0.0
    for path in itertools.product(range(m + 1), repeat=n):
        prob = pmf(path[0], p)
        for a, b in zip(path[:-1], path[1:], strict=False):
            prob *= pmf(b, a / m)
        if path[-1] > 0:
            total += prob
    return total


def compositions(m, k):
    return np.array([c for c in itertools.product(range(m + 1), repeat=k) if sum(c) == m])


def composition_chain(m, k, alpha=0.0):
    """States (compositions of m into k parts) and the smoothed multinomial transition matrix."""
    states = compositions(m, k)
    fits = (states + alpha) / (m + k * alpha)
    mat = np.array([st.multinomial.pmf(states, m, q) for q in fits])
    return states, fits, mat


def composition_distributions(ns, m, p0, alpha=0.0):
    """Distribution over count states of fit n (n >= 1) for every n in ns."""
    states, fits, mat = composition_chain(m, len(p0), alpha)
    d = st.multinomial.pmf(states, m, p0)
    out, cur, done = {}, d, 1
    for n in sorted(ns):
        while done < n:
            cur, done = cur @ mat, done + 1
        out[n] = cur
    return states, fits, mat, out


def transform_ref(p, temperature=1.0, top_k=None, top_p=None):
    """Temperature, top-k, top-p on a probability vector, NumPy (independent code)."""
    p = np.asarray(p, float)
    with np.errstate(divide="ignore"):
        logp = np.log(p)
    logp = logp / temperature
    q = np.exp(logp - logp.max())
    q /= q.sum()
    if top_k is not None:
        order = np.argsort(-q, kind="stable")
        keep = np.zeros(q.size, bool)
        keep[order[:top_k]] = True
        q = np.where(keep, q, 0.0)
        q /= q.sum()
    if top_p is not None:
        order = np.argsort(-q, kind="stable")
        before = np.concatenate([[0.0], np.cumsum(q[order])[:-1]])
        keep = np.zeros(q.size, bool)
        keep[order[before < top_p]] = True
        q = np.where(keep, q, 0.0)
        q /= q.sum()
    return q


# ---------------------------------------------------------------------------
# Survival (D3).
# ---------------------------------------------------------------------------

NS = [0, 1, 2, 3, 7, 20]


@pytest.mark.costly
@pytest.mark.parametrize("m", [2, 3, 5])
def test_survival_against_matrix_powers(m):
    ps = np.array([0.0, 1.0, 1.0 / m, 0.3, 0.5, 0.99, 1e-9])
    got = np.asarray(categorical.survival_probability(NS, m, ps))
    np.testing.assert_allclose(got, survival_ref(NS, m, ps), rtol=0, atol=1e-14)
    assert np.all(got[:, 0] == 0.0) and np.all(got[:, 1] == 1.0)
    # tiny p: relative accuracy of small survival probabilities (no cancellation)
    np.testing.assert_allclose(got[1:, -1], survival_ref(NS[1:], m, [1e-9])[:, 0], rtol=1e-12)


def test_survival_against_path_enumeration():
    for m, p in ((2, 0.3), (3, 0.5), (3, 0.1)):
        ns = [0, 1, 2, 3, 4]
        got = categorical.survival_probability(ns, m, p)
        want = [survival_paths(n, m, p) for n in ns]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)


def test_survival_banded_matrix_against_dense():
    # M = 400 uses the banded path (half-width 110 < M/2); scipy's dense matrix is the reference.
    m = 400
    assert categorical._band_layout(m) is not None
    ps = np.array([0.0025, 0.01, 0.1, 0.5, 0.87, 1.0])
    ns = [1, 2, 10, 100, 400]
    got = np.asarray(categorical.survival_probability(ns, m, ps))
    np.testing.assert_allclose(got, survival_ref(ns, m, ps), rtol=1e-12, atol=1e-14)


@pytest.mark.costly
def test_survival_shape_dtype_and_jit():
    assert categorical.survival_probability(3, 10, 0.2).shape == ()
    assert categorical.survival_probability(3, 10, np.full((2, 3), 0.2)).shape == (2, 3)
    assert categorical.survival_probability([3], 10, 0.2).shape == (1,)
    out = categorical.survival_probability((0, 5, 2, 5), 10, np.full((2, 3), 0.2))
    assert out.shape == (4, 2, 3)
    np.testing.assert_array_equal(out[1], out[3])
    assert out.dtype == jnp.float64
    out32 = categorical.survival_probability([1, 4], 10, np.float32(0.2))
    assert out32.dtype == jnp.float32
    np.testing.assert_allclose(out32, survival_ref([1, 4], 10, [0.2])[:, 0], rtol=1e-5)
    # p may be traced; n and sample_size may not
    jitted = jax.jit(lambda p: categorical.survival_probability(4, 10, p))
    np.testing.assert_allclose(jitted(0.2), survival_ref([4], 10, [0.2])[0, 0], atol=1e-14)
    with pytest.raises(ValueError, match="concrete n"):
        jax.jit(lambda n: categorical.survival_probability(n, 10, 0.2))(3)
    with pytest.raises(ValueError, match="concrete sample_size"):
        jax.jit(lambda m: categorical.survival_probability(3, m, 0.2))(10)


@pytest.mark.costly
def test_survival_is_absorbing_and_tends_to_fixation():
    m = 20
    ps = np.array([0.05, 0.3, 0.5, 0.95])
    ns = np.arange(0, 60)
    got = np.asarray(categorical.survival_probability(ns, m, ps))
    assert np.all(np.diff(got, axis=0) <= 1e-15)  # non-increasing in n
    assert np.all(got >= ps - 1e-15)  # never below the fixation probability
    far = categorical.survival_probability(2000, m, ps)  # second eigenvalue 1 - 1/M
    np.testing.assert_allclose(far, ps, rtol=1e-12)
    # restarted chain: P(X_n > 0 | X_1 = c) = survival_probability(n - 1, M, c / M)
    mat = wf_matrix(m)
    for c in (1, 4):
        for n in (2, 9):
            want = 1 - np.linalg.matrix_power(mat, n - 1)[c, 0]
            np.testing.assert_allclose(
                categorical.survival_probability(n - 1, m, c / m), want, atol=1e-14
            )


# ---------------------------------------------------------------------------
# Composition chain: heterozygosity (D1), support size (D3), fixation (D2).
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.0, 0.5, 2.0])
def test_heterozygosity_against_composition_chain(alpha):
    p0 = np.array([0.5, 0.3, 0.2])
    ns = [1, 2, 3, 10]
    for m in (3, 5):
        states, fits, _, dists = composition_distributions(ns, m, p0, alpha)
        h_fit = 1 - np.sum(fits**2, axis=1)
        want = [1 - np.sum(p0**2)] + [dists[n] @ h_fit for n in ns]
        got = categorical.expected_heterozygosity(np.array([0] + ns), m, p0, alpha)
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_heterozygosity_closed_forms_and_limits():
    p0 = np.array([0.6, 0.25, 0.15, 0.0])
    h0 = 1 - np.sum(p0**2)
    n = np.arange(0, 50)
    np.testing.assert_allclose(
        categorical.expected_heterozygosity(n, 7, p0), h0 * (1 - 1 / 7) ** n, rtol=1e-13
    )
    # smoothing: fixed point H* = (K-1) a (2M + K a) / (M + 2 M K a + K^2 a^2), K counts zeros
    m, a, k = 7, 0.3, 4
    h_star = (k - 1) * a * (2 * m + k * a) / (m + 2 * m * k * a + (k * a) ** 2)
    np.testing.assert_allclose(
        categorical.expected_heterozygosity(10**6, m, p0, a), h_star, rtol=1e-12
    )
    # large smoothing: uniform, (K-1)/K
    np.testing.assert_allclose(categorical.expected_heterozygosity(3, m, p0, 1e9), 3 / 4, rtol=1e-6)
    # broadcasting over n, sample_size, smoothing and batch rows; traced arguments
    out = categorical.expected_heterozygosity(
        np.array([1, 2])[:, None, None], np.array([5, 9])[None, :, None], np.stack([p0, p0[::-1]])
    )
    assert out.shape == (2, 2, 2)
    jitted = jax.jit(categorical.expected_heterozygosity)
    np.testing.assert_allclose(
        jitted(4, 7, p0, a), categorical.expected_heterozygosity(4, 7, p0, a), rtol=1e-14
    )
    out32 = categorical.expected_heterozygosity(4, 7, p0.astype(np.float32), np.float32(a))
    assert out32.dtype == jnp.float32


@pytest.mark.costly
def test_support_size_and_fixation_against_composition_chain():
    m = 4
    p0 = np.array([0.6, 0.3, 0.1])
    ns = [1, 2, 5, 400]
    states, _, _, dists = composition_distributions(ns, m, p0)
    support = np.count_nonzero(states, axis=1)
    want = [3.0] + [dists[n] @ support for n in ns[:-1]]
    got = categorical.expected_support_size([0] + ns[:-1], m, p0)
    np.testing.assert_allclose(got, want, rtol=1e-13)
    # = sum of the marginal survivals, batch rows too
    batch = np.array([p0, [0.5, 0.5, 0.0]])
    np.testing.assert_allclose(
        categorical.expected_support_size([2, 5], m, batch),
        np.sum(categorical.survival_probability([2, 5], m, batch), axis=-1),
        rtol=1e-15,
    )
    # D2: after 400 fits the chain sits at vertex i with probability p0_i
    vertex_mass = [
        dists[400][np.all(states == m * np.eye(3, dtype=int)[i], axis=1)][0] for i in range(3)
    ]
    np.testing.assert_allclose(vertex_mass, categorical.fixation_probability(p0), atol=1e-12)
    np.testing.assert_allclose(categorical.expected_support_size(400, m, p0), 1.0, atol=1e-12)


# ---------------------------------------------------------------------------
# Absorption time (D4).
# ---------------------------------------------------------------------------


def absorption_two_ref(m, p):
    """Two categories: NumPy solve on x = 1..m-1 plus the first step from p."""
    mat = wf_matrix(m)
    q = mat[1:m, 1:m]
    t = np.linalg.solve(np.eye(m - 1) - q, np.ones(m - 1))
    w = st.binom.pmf(np.arange(1, m), m, p)
    return 1.0 + w @ t if 0 < p < 1 else 0.0


def absorption_by_propagation(m, p0):
    """E[T] = sum_{n >= 0} P(T > n), propagating the composition chain."""
    states, _, mat, dists = composition_distributions([1], m, p0)
    transient = np.count_nonzero(states, axis=1) >= 2
    total = 1.0 if np.count_nonzero(p0) >= 2 else 0.0  # P(T > 0)
    cur = dists[1]
    while True:
        tail = cur[transient].sum()  # P(T > n) for the current n
        total += tail
        if tail < 1e-15:
            return total
        cur = cur @ mat


@pytest.mark.costly
def test_absorption_two_categories_against_numpy_solve():
    ps = [0.1, 0.97, 0.5]  # the batch shape of the diffusion test below: shared compilations
    for m in (5, 30, 1000):
        got = categorical.mean_absorption_time(m, np.array([[p, 1 - p] for p in ps]))
        want = [absorption_two_ref(m, p) for p in ps]
        np.testing.assert_allclose(got, want, rtol=1e-10)
    # M = 2 by hand: T = 1 if X_1 in {0, 2} (prob 1/2), else 1 + Geometric(1/2) fits
    assert float(categorical.mean_absorption_time(2, [0.5, 0.5])) == pytest.approx(2.0, rel=1e-14)
    edges = categorical.mean_absorption_time(5, np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]]))
    np.testing.assert_allclose(edges, [0.0, 0.0, absorption_two_ref(5, 0.5)], rtol=1e-12)


@pytest.mark.costly
def test_absorption_three_and_four_categories_against_propagation():
    for m, p0 in ((4, [0.2, 0.3, 0.5]), (8, [0.6, 0.3, 0.1]), (3, [0.1, 0.2, 0.3, 0.4])):
        got = float(categorical.mean_absorption_time(m, p0))
        np.testing.assert_allclose(got, absorption_by_propagation(m, np.array(p0)), rtol=1e-11)


@pytest.mark.costly
def test_absorption_zero_categories_batches_and_tracing():
    m = 8
    two = float(categorical.mean_absorption_time(m, [0.3, 0.7]))
    assert float(categorical.mean_absorption_time(m, [0.3, 0.0, 0.7])) == pytest.approx(two)
    batch = np.array([[0.3, 0.0, 0.7], [0.6, 0.3, 0.1], [0.0, 1.0, 0.0]])
    got = np.asarray(categorical.mean_absorption_time(m, batch))
    np.testing.assert_allclose(got[0], two, rtol=1e-12)
    np.testing.assert_allclose(got[1], categorical.mean_absorption_time(m, batch[1]), rtol=1e-12)
    assert got[2] == 0.0
    traced = jax.jit(lambda p: categorical.mean_absorption_time(m, p))(batch)
    np.testing.assert_allclose(traced, got, rtol=1e-12)
    with pytest.raises(ValueError, match="method='diffusion'"):
        categorical.mean_absorption_time(200, np.full(3, 1 / 3))
    with pytest.raises(ValueError, match="max_states"):
        categorical.mean_absorption_time(10, [0.5, 0.5], max_states=0)


@pytest.mark.costly
def test_diffusion_error_within_stated_bound():
    """0 <= diffusion - exact <= ln(M)/3 + 1 fits (docstring of mean_absorption_time)."""
    ps = np.array([[p, 1 - p] for p in (0.1, 0.3, 0.5)])
    rel = {}
    for m in (10, 30, 100, 1000):
        exact = np.asarray(categorical.mean_absorption_time(m, ps))
        diff = np.asarray(categorical.mean_absorption_time(m, ps, "diffusion"))
        assert np.all(diff - exact >= 0) and np.all(diff - exact <= np.log(m) / 3 + 1), m
        rel[m] = (diff - exact) / exact
    for m in (10, 30):
        p3 = np.array([[1 / 3, 1 / 3, 1 / 3], [0.8, 0.1, 0.1], [0.5, 0.4, 0.1]])
        exact = np.asarray(categorical.mean_absorption_time(m, p3))
        diff = np.asarray(categorical.mean_absorption_time(m, p3, "diffusion"))
        assert np.all(diff - exact >= 0) and np.all(diff - exact <= np.log(m) / 3 + 1), m
    # the docstring table (p = 0.5 and 0.1 rows, as printed)
    np.testing.assert_allclose(
        [rel[m][2] for m in (10, 30, 100, 1000)], [0.101, 0.041, 0.015, 0.0020], rtol=0.03
    )
    np.testing.assert_allclose(
        [rel[m][0] for m in (10, 30, 100, 1000)], [0.130, 0.063, 0.025, 0.0036], rtol=0.03
    )
    # closed form of the diffusion (Kimura: two categories; Littler: K)
    np.testing.assert_allclose(
        categorical.mean_absorption_time(50, [0.2, 0.8], "diffusion"),
        -100 * (0.2 * np.log(0.2) + 0.8 * np.log(0.8)),
        rtol=1e-14,
    )


# ---------------------------------------------------------------------------
# Poisson limit and Suresh et al. (D5).
# ---------------------------------------------------------------------------


def test_suresh_g_recursion_and_bounds():
    kmax = 10_000
    ref = [1.0]
    for _ in range(kmax - 1):
        ref.append(-math.expm1(-ref[-1]))
    ref = np.array(ref)
    k = np.arange(1, kmax + 1)
    got = np.asarray(categorical.suresh_g(k))
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert got[0] == 1.0 and got[1] == pytest.approx(1 - math.exp(-1), rel=1e-15)
    assert np.all(1 / k <= got) and np.all(got <= 2 / k) and np.all(got <= 3 / k)
    assert abs(kmax * got[-1] - 2) < 0.01  # Kolmogorov: g_k ~ 2/k
    np.testing.assert_allclose(
        categorical.suresh_g(np.array([[3, 1], [7, 2]])), ref[[[2, 0], [6, 1]]]
    )
    np.testing.assert_allclose(jax.jit(categorical.suresh_g)(jnp.array([5, 9])), ref[[4, 8]])


@pytest.mark.costly
def test_poisson_survival_against_truncated_poisson_chain():
    top = 300
    x = np.arange(top + 1)
    mat = st.poisson.pmf(x[None, :], x[:, None])  # X_{t+1} ~ Poisson(X_t)
    ns = np.array([1, 2, 3, 5, 10, 30])
    counts = np.array([0, 1, 2, 5])
    want = np.array(
        [[1 - np.linalg.matrix_power(mat, n - 1)[c, 0] if c else 0.0 for c in counts] for n in ns]
    )
    got = categorical.poisson_survival_probability(ns[:, None], counts[None, :])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    # rate version = count version averaged over X_1 ~ Poisson(rate)
    rates = np.array([0.0, 0.5, 3.0])
    pmf = st.poisson.pmf(x[None, :], rates[:, None])  # (rates, counts)
    by_count = np.asarray(categorical.poisson_survival_probability(ns[:, None], x[None, :]))
    np.testing.assert_allclose(
        categorical.poisson_survival_from_rate(ns[:, None], rates[None, :]),
        by_count @ pmf.T,
        rtol=1e-12,
        atol=1e-15,
    )
    np.testing.assert_allclose(
        categorical.poisson_survival_from_rate(0, rates), rates > 0, rtol=0, atol=0
    )


@pytest.mark.costly
def test_suresh_bounds_bracket_the_poisson_chain():
    n = np.concatenate([np.arange(1, 2001), [5000, 10_000]])[:, None]
    counts = np.array([0, 1, 2, 5, 20, 100])[None, :]
    pois = np.asarray(categorical.poisson_survival_probability(n, counts))
    for c in (2.0, 3.0):
        lo, hi = (np.asarray(a) for a in categorical.suresh_survival_bounds(n, counts, c))
        assert np.all(lo <= pois * (1 + 1e-12)) and np.all(pois <= hi * (1 + 1e-12))
    rates = np.array([0.0, 0.5, 5.0, 50.0])[None, :]
    pois = np.asarray(categorical.poisson_survival_from_rate(n, rates))
    lo, hi = (np.asarray(a) for a in categorical.suresh_survival_bounds_from_rate(n, rates))
    assert np.all(lo <= pois * (1 + 1e-12)) and np.all(pois <= hi * (1 + 1e-12))
    lo, hi = categorical.suresh_survival_bounds(4, 1)
    assert (float(lo), float(hi)) == (0.25, 0.75)


@pytest.mark.costly
def test_suresh_bounds_and_binomial_chain_at_large_m():
    """M = 2000: Poisson <= binomial always (convex order); the C = 3 upper bound holds for n <= M."""
    m = 2000
    counts = np.array([1, 2, 5, 10, 20])
    rates = np.array([0.5, 2.0, 20.0])
    ns = np.array([2, 3, 5, 10, 50, 200, 1000, 2000, 8000])
    # one pass: P(X_n > 0 | X_1 = c) = survival(n - 1, M, c/M); from real data: survival(n, M, rate/M)
    steps = np.unique(np.concatenate([ns - 1, ns]))
    table = np.asarray(
        categorical.survival_probability(steps, m, np.concatenate([counts, rates]) / m)
    )
    binom_c = table[np.searchsorted(steps, ns - 1)][:, : counts.size]
    binom_r = table[np.searchsorted(steps, ns)][:, counts.size :]
    pois_c = np.asarray(categorical.poisson_survival_probability(ns[:, None], counts[None, :]))
    pois_r = np.asarray(categorical.poisson_survival_from_rate(ns[:, None], rates[None, :]))
    assert np.all(binom_c >= pois_c) and np.all(binom_r >= pois_r)
    np.testing.assert_allclose(binom_c[:4], pois_c[:4], rtol=2e-3)  # n <= 10: Poisson limit
    lo, hi = (
        np.asarray(a) for a in categorical.suresh_survival_bounds(ns[:, None], counts[None, :])
    )
    assert np.all(lo <= binom_c)
    small = ns <= m
    assert np.all(binom_c[small] <= hi[small])
    assert np.all(binom_c[ns == 8000] > hi[ns == 8000])  # fails at n = 4M: the range is real
    lo, hi = (
        np.asarray(a)
        for a in categorical.suresh_survival_bounds_from_rate(ns[:, None], rates[None, :])
    )
    assert np.all(lo <= binom_r) and np.all(binom_r[small] <= hi[small])
    # the proved constant C = 2 brackets the Poisson chain but not the binomial one beyond n ~ 0.1 M
    _, hi2 = (
        np.asarray(a) for a in categorical.suresh_survival_bounds(ns[:, None], counts[None, :], 2.0)
    )
    assert np.all(binom_c[ns <= 50] <= hi2[ns <= 50]) and np.any(
        binom_c[ns == 200] > hi2[ns == 200]
    )


# ---------------------------------------------------------------------------
# Biased sampling, infinite M.
# ---------------------------------------------------------------------------


@pytest.mark.costly
def test_sampling_transform_hand_cases():
    # Hugging Face order: temperature, then top-k, then top-p.
    got = categorical.sampling_transform([0.5, 0.25, 0.15, 0.1], 0.5, 3, 0.9)
    np.testing.assert_allclose(got, [0.8, 0.2, 0.0, 0.0], rtol=1e-14)
    # ties go to the lower index (top-k and top-p)
    np.testing.assert_allclose(
        categorical.sampling_transform([0.1, 0.4, 0.2, 0.2, 0.1], top_k=2), [0, 2 / 3, 1 / 3, 0, 0]
    )
    np.testing.assert_allclose(categorical.sampling_transform([0.4, 0.4, 0.2], top_k=1), [1, 0, 0])
    np.testing.assert_allclose(
        categorical.sampling_transform([0.2, 0.4, 0.4], top_p=1e-9), [0, 1, 0]
    )
    # top_p = 1 keeps everything with positive mass; zeros stay zero
    p = np.array([0.5, 0.3, 0.2, 0.0])
    np.testing.assert_allclose(categorical.sampling_transform(p, top_p=1.0), p, rtol=1e-15)
    np.testing.assert_allclose(categorical.sampling_transform(p, 3.0), transform_ref(p, 3.0))
    # random cases against the NumPy reference
    rng = np.random.default_rng(3)
    k = 6  # one shape: one compilation
    for _ in range(30):
        p = rng.dirichlet(np.full(k, 0.7))
        p[rng.random(k) < 0.2] = 0.0
        if p.sum() == 0:
            p[0] = 1.0
        p /= p.sum()
        tau = float(rng.choice([0.3, 1.0, 2.5]))
        top_k = int(rng.integers(1, k + 2))
        top_p = float(rng.choice([0.2, 0.5, 0.9, 1.0]))
        np.testing.assert_allclose(
            categorical.sampling_transform(p, tau, top_k, top_p),
            transform_ref(p, tau, top_k, top_p),
            rtol=1e-12,
            atol=1e-300,
        )


@pytest.mark.costly
def test_trajectory_temperature_closed_form_and_limits():
    rng = np.random.default_rng(0)
    p0 = rng.dirichlet(np.ones(6))
    ns = np.arange(0, 9)
    for tau in (0.5, 0.9, 1.5, 3.0):
        got = np.asarray(categorical.deterministic_trajectory(ns, p0, tau))
        for i, n in enumerate(ns):
            logq = np.log(p0) * tau ** (-(max(n, 1) - 1))
            want = np.exp(logq - logq.max())
            np.testing.assert_allclose(got[i], want / want.sum(), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(
        categorical.deterministic_trajectory(3, [0.2, 0.8], 0.5),
        [0.0016, 0.4096] / np.float64(0.4112),
    )
    # tau < 1: uniform on the argmax set (ties kept); tau > 1: uniform on the support
    p = np.array([0.3, 0.3, 0.2, 0.2, 0.0])
    np.testing.assert_array_equal(
        categorical.deterministic_trajectory(80, p, 0.5), [0.5, 0.5, 0.0, 0.0, 0.0]
    )
    np.testing.assert_allclose(
        categorical.deterministic_trajectory(300, p, 3.0), [0.25, 0.25, 0.25, 0.25, 0.0], rtol=1e-14
    )
    # n = 0 and n = 1 are p0 (fit 1 uses real data); shapes
    out = categorical.deterministic_trajectory([0, 1, 2], np.stack([p, p[::-1]]), 0.5)
    assert out.shape == (3, 2, 5)
    np.testing.assert_allclose(out[0], out[1])
    # traced p and temperature
    jitted = jax.jit(lambda q, t: categorical.deterministic_trajectory(4, q, t))
    np.testing.assert_allclose(
        jitted(p0, 0.7), categorical.deterministic_trajectory(4, p0, 0.7), rtol=1e-13
    )


def test_trajectory_top_k_and_top_p():
    p = np.array([0.1, 0.4, 0.2, 0.2, 0.1])
    got = np.asarray(categorical.deterministic_trajectory([1, 2, 3, 10], p, top_k=3))
    np.testing.assert_allclose(got[0], p)
    for row in got[1:]:  # fixed after one step
        np.testing.assert_allclose(row, [0, 0.5, 0.25, 0.25, 0], rtol=1e-15)
    # top-p alone: (0.5, 0.3, 0.2), 0.6 -> (0.625, 0.375, 0) -> point mass
    traj = np.asarray(
        categorical.deterministic_trajectory([1, 2, 3, 4], [0.5, 0.3, 0.2], top_p=0.6)
    )
    np.testing.assert_allclose(traj[1], [0.625, 0.375, 0], rtol=1e-15)
    np.testing.assert_array_equal(traj[2:], [[1, 0, 0], [1, 0, 0]])
    traj = np.asarray(categorical.deterministic_trajectory([2, 9], [0.5, 0.3, 0.2], top_p=0.7))
    np.testing.assert_allclose(traj, [[0.625, 0.375, 0]] * 2, rtol=1e-15)
    # combined, against iterating the NumPy reference
    q = np.array([0.35, 0.25, 0.2, 0.12, 0.08])
    want, cur = [], q
    for _ in range(1, 7):
        want.append(cur)
        cur = transform_ref(cur, 1.3, 4, 0.85)
    got = categorical.deterministic_trajectory(np.arange(1, 7), q, 1.3, 4, 0.85)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_nucleus_fixed_point():
    r = categorical.nucleus_fixed_point([0.5, 0.3, 0.2], 0.6)
    assert (int(r.generation), int(r.support_size)) == (3, 1)
    r = categorical.nucleus_fixed_point([0.5, 0.3, 0.2], 0.7)
    assert (int(r.generation), int(r.support_size)) == (2, 2)
    np.testing.assert_allclose(r.probabilities, [0.625, 0.375, 0], rtol=1e-15)
    r = categorical.nucleus_fixed_point(np.full(4, 0.25), 0.8)  # > (K-1)/K: never changes
    assert (int(r.generation), int(r.support_size)) == (1, 4)
    # random cases: brute-force iteration of the NumPy reference; top_p <= 1/2 always collapses
    rng = np.random.default_rng(11)
    ps = rng.dirichlet(np.full(7, 0.5), size=40)
    for top_p in (0.3, 0.5, 0.75, 0.95):
        res = categorical.nucleus_fixed_point(ps, top_p)
        for i, p in enumerate(ps):
            cur, changes = p, 0
            for _ in range(10):
                new = transform_ref(cur, top_p=top_p)
                if np.count_nonzero(new) == np.count_nonzero(cur):
                    break
                cur, changes = new, changes + 1
            assert int(res.generation[i]) == changes + 1
            assert int(res.support_size[i]) == np.count_nonzero(cur)
            np.testing.assert_allclose(res.probabilities[i], cur, rtol=1e-12)
        if top_p <= 0.5:
            assert np.all(np.asarray(res.support_size) == 1)
    jitted = jax.jit(categorical.nucleus_fixed_point)
    assert int(jitted(jnp.array([0.5, 0.3, 0.2]), 0.6).generation) == 3


# ---------------------------------------------------------------------------
# Validation.
# ---------------------------------------------------------------------------

P3 = np.array([0.5, 0.3, 0.2])
BAD_INPUTS = [
    (categorical.expected_heterozygosity, (1, 10, [0.5, -0.1, 0.6]), {}, "p", "-0.1"),
    (categorical.expected_heterozygosity, (1, 10, [0.5, np.nan, 0.5]), {}, "p", "nan"),
    (categorical.expected_heterozygosity, (1, 10, [0.5, 0.4]), {}, "p", "sum 0.9"),
    (categorical.expected_heterozygosity, (1, 10.5, P3), {}, "sample_size", "10.5"),
    (categorical.expected_heterozygosity, (1, 1, P3), {}, "sample_size", "1"),
    (categorical.expected_heterozygosity, (-2, 10, P3), {}, "n", "-2"),
    (categorical.expected_heterozygosity, (1, 10, P3), {"smoothing": -0.5}, "smoothing", "-0.5"),
    (categorical.survival_probability, (1.5, 10, 0.2), {}, "n", "1.5"),
    (categorical.survival_probability, (3, 10, 1.2), {}, "p", "1.2"),
    (categorical.survival_probability, (3, 0, 0.2), {}, "sample_size", "0"),
    (categorical.survival_probability, ([[1, 2]], 10, 0.2), {}, "n", "shape (1, 2)"),
    (categorical.expected_support_size, (3, 10, [0.5, 0.6]), {}, "p", "sum 1.1"),
    (categorical.fixation_probability, ([0.5, np.inf],), {}, "p", "inf"),
    (categorical.fixation_probability, (0.5,), {}, "p", "shape ()"),
    (categorical.mean_absorption_time, (10, P3), {"method": "kimura"}, "method", "'kimura'"),
    (categorical.mean_absorption_time, (np.array([10, 20]), P3), {}, "sample_size", "shape (2,)"),
    (categorical.suresh_g, (0,), {}, "k", "0"),
    (categorical.poisson_survival_probability, (0, 3), {}, "n", "0"),
    (categorical.poisson_survival_probability, (2, 1.5), {}, "count", "1.5"),
    (categorical.poisson_survival_from_rate, (2, -1.0), {}, "rate", "-1.0"),
    (categorical.suresh_survival_bounds, (2, 3), {"upper_constant": 1.5}, "upper_constant", "1.5"),
    (categorical.suresh_survival_bounds_from_rate, (0, 1.0), {}, "n", "0"),
    (categorical.deterministic_trajectory, (2, P3), {"temperature": 0.0}, "temperature", "0.0"),
    (categorical.deterministic_trajectory, (2, P3), {"top_k": 0}, "top_k", "0"),
    (categorical.deterministic_trajectory, (2, P3), {"top_k": 1.5}, "top_k", "1.5"),
    (categorical.deterministic_trajectory, (2, P3), {"top_p": 1.5}, "top_p", "1.5"),
    (categorical.deterministic_trajectory, (2, P3), {"top_p": 0.0}, "top_p", "0.0"),
    (categorical.deterministic_trajectory, (-1, P3), {}, "n", "-1"),
    (categorical.nucleus_fixed_point, (P3, np.nan), {}, "top_p", "nan"),
]


@pytest.mark.parametrize("fun,args,kwargs,name,value", BAD_INPUTS)
def test_bad_inputs_raise(fun, args, kwargs, name, value):
    with pytest.raises(ValueError, match=rf"^{name} must .*; got {re.escape(value)}$"):
        fun(*args, **kwargs)
