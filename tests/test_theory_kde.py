"""Exact tests of theory.kde against independent computations.

References (none shares code with the module):

* fixed bandwidth: the recursions E V_{t+1} = r E V_t + h^2 (V_0 = sigma0^2) and
  Var mean_{t+1} = Var mean_t + E V_t / M iterated in exact rational arithmetic
  (``fractions.Fraction``) from rational M, h, sigma0;
* rules of thumb: the recursion E V_{t+1} = E[S_{t+1}] (1 + c^2 M^{3/5} / (M-1)) with
  E S_{t+1} = (M-1)/M E V_t, iterated in 40-digit mpmath (the factor is irrational);
* fresh real fraction: F1's recursion (THEORY.md F1) with the KDE's variance V = S + h^2
  for the synthetic points, iterated in Fractions (the module sums it in closed form
  through the conserved second moment about the real mean), and at h = 0
  ``theory.mixing.fresh_fraction_variance``;
* accumulate: the pooled-variance recursion N_{t+1} E S_{t+1} = N_t E S_t +
  (M - 1 + N_t/N_{t+1}) E V_t (Chan's update of the pool's sum of squares, a
  different route from the module's mean-square/harmonic-number one) and the pool
  mean's martingale variance, both in Fractions; and, at h = 0, the Gaussian MLE
  accumulate chain of ``theory.mixing.accumulate_moments``.

Tolerances are rounding bounds of the float64 closed forms (tests/exact.py): the
power r^n = exp(n log r) carries the relative error of log r amplified by n |log r|;
each exact test also shows that a wrong formula (the collapse formula without h^2,
the generation index shifted by one) falls outside the same bound.
"""

import jax

jax.config.update("jax_enable_x64", True)

import doctest  # noqa: E402
from fractions import Fraction  # noqa: E402

import jax.numpy as jnp  # noqa: E402
import mpmath  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests.exact import U64, ULPS, assert_outside, assert_within  # noqa: E402
from theory import kde, mixing  # noqa: E402

pytestmark = pytest.mark.unit

N = np.arange(0, 61)
# (M, h, sigma0) as exact rationals (their float64 values are exact too)
FIXED = [
    (2, Fraction(1, 4), Fraction(1)),
    (10, Fraction(1, 2), Fraction(1)),
    (100, Fraction(1, 8), Fraction(3, 2)),
]


def fixed_reference(m, h, s0, nmax):
    """E V_n and Var(mean_n), n = 0..nmax, by the recursions in Fractions."""
    r = Fraction(m - 1, m)
    ev, mv = [s0 * s0], [Fraction(0)]
    for _ in range(nmax):
        mv.append(mv[-1] + ev[-1] / m)
        ev.append(r * ev[-1] + h * h)
    return np.array([float(x) for x in ev]), np.array([float(x) for x in mv])


def power_bound(n, m, scale):
    """Rounding bound of a closed form in r^n = exp(n log1p(-1/M)): the argument's
    relative error (a few ulps) times n |log r|, plus a few dozen ulps of ``scale``."""
    n = np.asarray(n, np.float64)
    amp = 1.0 + n * abs(np.log1p(-1.0 / m))
    return ULPS * U64 * amp * np.asarray(scale, np.float64)


@pytest.mark.parametrize("m, h, s0", FIXED, ids=[f"M{c[0]}" for c in FIXED])
def test_fixed_bandwidth_against_the_exact_recursion(m, h, s0):
    ev_ref, mv_ref = fixed_reference(m, h, s0, N[-1])
    hf, sf = float(h), float(s0)
    ev = np.asarray(kde.expected_variance(N, m, hf, sf))
    mv = np.asarray(kde.mean_variance(N, m, hf, sf))
    # E V: a sum of two positive terms of size <= max(sigma0^2, M h^2)
    scale_v = max(sf * sf, m * hf * hf)
    assert_within(ev, ev_ref, power_bound(N, m, scale_v), f"E V, M={m}")
    # Var mean: sigma0^2 (1 - r^n) + h^2 (n - M (1 - r^n)) cancels to size h^2 n
    scale_m = sf * sf + hf * hf * (N + m)
    assert_within(mv, mv_ref, power_bound(N, m, scale_m), f"Var mean, M={m}")
    # the fixed point M h^2 (K1), and the limit of the closed form
    assert float(kde.variance_fixed_point(m, hf)) == m * hf * hf
    far = float(kde.expected_variance(10**6, m, hf, sf))
    assert abs(far - m * hf * hf) <= 1e-12 * m * hf * hf
    # wrong formulas fall outside the same bounds (generation 0 aside: all equal sigma0^2)
    r = (m - 1) / m
    bound = power_bound(N, m, scale_v)[1:]
    assert_outside(sf * sf * r ** N[1:], ev_ref[1:], bound, "collapse formula without h^2")
    # (before E V has converged to its fixed point to within the bound: n <= 10)
    shifted = np.asarray(kde.expected_variance(N + 1, m, hf, sf))[1:11]
    assert_outside(shifted, ev_ref[1:11], bound[:10], "E V indexed one fit late")


def test_zero_bandwidth_is_the_gaussian_mle_collapse():
    from theory import gaussian

    for m in (2, 10, 100):
        ev = np.asarray(kde.expected_variance(N, m, 0.0))
        ref = np.asarray(gaussian.expected_variance(N, m, estimator="mle"))
        assert_within(ev, ref, power_bound(N, m, 1.0) * 2, f"h=0, M={m}")


RULE_CASES = [(m, rule) for m in (2, 10, 32, 1000) for rule in ("scott", "silverman")]


@pytest.mark.parametrize("m, rule", RULE_CASES, ids=[f"M{m}-{r}" for m, r in RULE_CASES])
def test_rule_of_thumb_against_the_recursion(m, rule):
    n = np.arange(0, 41)
    with mpmath.workdps(40):
        c2 = mpmath.mpf(4) / 3 if rule == "silverman" else mpmath.mpf(1)
        c2 = c2 ** (mpmath.mpf(2) / 5) if rule == "silverman" else c2
        mm = mpmath.mpf(m)
        k = 1 + c2 * mm ** (mpmath.mpf(3) / 5) / (mm - 1)  # V = k S for a rule-of-thumb h
        ev, mv = [mpmath.mpf(1)], [mpmath.mpf(0)]
        for _ in range(n[-1]):
            mv.append(mv[-1] + ev[-1] / mm)
            ev.append(k * (mm - 1) / mm * ev[-1])  # E S_{t+1} = (M-1)/M E V_t
        ev_ref = np.array([float(x) for x in ev])
        mv_ref = np.array([float(x) for x in mv])
        g_ref = float(k * (mm - 1) / mm)
    g = float(kde.growth_factor(m, rule))
    assert abs(g - g_ref) <= 8 * U64 * g_ref
    assert g > 1
    got = np.asarray(kde.rule_expected_variance(n, m, 1.0, rule))
    # g^n = exp(n log g): log g's relative error amplified by n log g
    bound = ULPS * U64 * (1 + n * np.log(g)) * ev_ref
    assert_within(got, ev_ref, bound, f"E V, {rule}, M={m}")
    got_m = np.asarray(kde.rule_mean_variance(n, m, 1.0, rule))
    # (g^n - 1)/(g - 1): g - 1 carries an absolute error of ulps of g
    bound_m = ULPS * U64 * (1 + n * np.log(g) + g / (g - 1)) * mv_ref
    assert_within(got_m, mv_ref, bound_m, f"Var mean, {rule}, M={m}")
    # the MLE sd in place of the sample sd: g' = r (1 + c^2 M^(-2/5)) is rejected
    wrong = ((m - 1) / m * (1 + float(c2) * m**-0.4)) ** n[1:]
    assert_outside(wrong, ev_ref[1:], bound[1:], "the rule with the MLE sd")


def accumulate_reference(m, h, s0, nmax):
    """E V_n and Var(pool mean), n = 0..nmax, by Chan's pooled update in Fractions."""
    es, ev, p = [Fraction(0)], [s0 * s0], [Fraction(0)]
    for t in range(nmax):
        n_t, n_next = t * m, (t + 1) * m
        s_next = (n_t * es[-1] + (m - 1 + Fraction(n_t, n_next)) * ev[-1]) / n_next
        p.append(p[-1] + Fraction(m, n_next) ** 2 * ev[-1] / m)
        es.append(s_next)
        ev.append(s_next + h * h)
    return np.array([float(x) for x in ev]), np.array([float(x) for x in p])


@pytest.mark.parametrize("m, h, s0", FIXED, ids=[f"M{c[0]}" for c in FIXED])
def test_accumulate_against_the_pooled_recursion(m, h, s0):
    n = np.arange(0, 41)
    ev_ref, p_ref = accumulate_reference(m, h, s0, n[-1])
    got = kde.accumulate_moments(n, m, float(h), float(s0))
    scale = float(s0 * s0) + float(h * h) * (1 + np.log(n + 1))
    # cumulative sums over n terms: n ulps of the largest partial sum
    bound = ULPS * U64 * (n + 1) * scale
    assert_within(got.expected_variance, ev_ref, bound, f"accumulate E V, M={m}")
    assert_within(got.mean_variance, p_ref, bound, f"accumulate Var mean, M={m}")
    # the replace formula is rejected (and grows faster: it reaches M h^2)
    wrong = np.asarray(kde.expected_variance(n, m, float(h), float(s0)))
    assert_outside(wrong[2:], ev_ref[2:], bound[2:], "replace formula under accumulate")


@pytest.mark.parametrize("m", [2, 10, 100])
def test_accumulate_at_zero_bandwidth_is_the_gaussian_accumulate_chain(m):
    n = np.arange(0, 50)
    got = kde.accumulate_moments(n, m, 0.0, 1.5)
    ref = mixing.accumulate_moments(n, m, "mle", 1.5)
    bound = ULPS * U64 * (n + 1) * 2.25
    assert_within(got.expected_variance, ref.expected_variance, bound, "E V at h=0")
    assert_within(got.mean_variance, ref.mean_variance, bound, "Var mean at h=0")


FRESH = [
    (10, Fraction(1, 2), 2),
    (10, Fraction(1, 4), 9),
    (50, Fraction(1, 8), 1),
    (4, Fraction(1), 4),
]


def fresh_reference(m, h, real, nmax):
    """E V_n and Var(mean_n), n = 0..nmax: F1's recursion with the KDE's variance V = S + h^2
    as the synthetic points' variance, in Fractions (sigma0 = 1)."""
    a, c = Fraction(real, m), Fraction(m - 1, m)
    ev, v = [Fraction(1)], [Fraction(0)]
    for _ in range(nmax):
        s_next = c * (a + (1 - a) * ev[-1]) + a * (1 - a) * v[-1]
        v.append((a + (1 - a) * ev[-1]) / m + (1 - a) ** 2 * v[-1])
        ev.append(s_next + h * h)
    return np.array([float(x) for x in ev]), np.array([float(x) for x in v])


@pytest.mark.parametrize("m, h, real", FRESH, ids=[f"M{c[0]}-R{c[2]}" for c in FRESH])
def test_fresh_fraction_against_the_recursion(m, h, real):
    n = np.arange(0, 61)
    ev_ref, v_ref = fresh_reference(m, h, real, n[-1])
    a, hf = real / m, float(h)
    got = kde.fresh_moments(n, m, hf, a)
    # terms of size 1 + h^2 / alpha cancel; q^n, p^n carry n |log q| relative error
    log_q = abs(np.log(max((1 - a) * (1 - a - 1 / m), 1e-300)))
    scale = (1.0 + hf * hf / a) * (1 + n * min(log_q, 50.0))
    bound = ULPS * U64 * scale
    assert_within(got.expected_variance, ev_ref, bound, f"fresh E V, M={m}, R={real}")
    assert_within(got.mean_variance, v_ref, bound, f"fresh Var mean, M={m}, R={real}")
    fp = kde.fresh_fixed_point(m, hf, a)
    far = kde.fresh_moments(10**4, m, hf, a)
    assert abs(float(far.expected_variance) - float(fp.expected_variance)) <= 1e-12 * (
        1 + hf**2 / a
    )
    assert abs(float(far.mean_variance) - float(fp.mean_variance)) <= 1e-12 * (1 + hf**2 / a)
    # the Gaussian F1 formula (no kernel noise) is rejected where h > 0 acts (n >= 1)
    wrong = mixing.fresh_fraction_variance(n, m, a).expected_variance
    assert_outside(np.asarray(wrong)[1:], ev_ref[1:], bound[1:], "F1 without h^2")


def test_fresh_at_zero_bandwidth_is_the_gaussian_f1_chain():
    n = np.arange(0, 40)
    for m, real in ((10, 2), (20, 1), (7, 7)):
        got = kde.fresh_moments(n, m, 0.0, real / m, 1.3)
        ref = mixing.fresh_fraction_variance(n, m, real / m, sigma0=1.3)
        bound = ULPS * U64 * 1.69 * (1 + n)
        assert_within(got.expected_variance, ref.expected_variance, bound, "E V at h=0")
        assert_within(got.mean_variance, ref.mean_variance, bound, "Var mean at h=0")


def test_vectorised_traced_and_broadcast():
    m = np.array([[5], [20]])
    v = kde.expected_variance(np.arange(4), m, 0.3, 2.0)
    assert v.shape == (2, 4)
    f = jax.jit(lambda h: kde.expected_variance(7, 12, h, 1.0))
    np.testing.assert_allclose(f(0.4), kde.expected_variance(7, 12, 0.4, 1.0), rtol=1e-15)
    # d/dh E V_n = 2 h M (1 - r^n)
    grad = jax.grad(lambda h: kde.expected_variance(7, 12, h, 1.0))(0.4)
    np.testing.assert_allclose(grad, 2 * 0.4 * 12 * (1 - (11 / 12) ** 7), rtol=1e-13)
    acc = kde.accumulate_moments(np.array([3, 0, 5]), 10, np.array([[0.1], [0.2]]))
    assert acc.expected_variance.shape == (2, 3)


BAD = [
    (
        lambda: kde.expected_variance(3, 10, -0.5),
        "bandwidth must be a finite number >= 0; got -0.5",
    ),
    (lambda: kde.expected_variance(3, 10, float("nan")), "bandwidth must be a finite number >= 0"),
    (lambda: kde.expected_variance(3, 1, 0.5), "sample_size must be an integer >= 2"),
    (lambda: kde.expected_variance(-1, 10, 0.5), "n must be a non-negative integer"),
    (lambda: kde.expected_variance(2.5, 10, 0.5), "n must be a non-negative integer"),
    (lambda: kde.expected_variance(3, 10, 0.5, 0.0), "sigma0 must be a finite number > 0; got 0.0"),
    (lambda: kde.mean_variance(3, 10, -1.0), "bandwidth must be a finite number >= 0; got -1.0"),
    (lambda: kde.variance_fixed_point(10, -1.0), "bandwidth must be a finite number >= 0"),
    (
        lambda: kde.growth_factor(10, "gaussian"),
        "rule must be one of 'scott', 'silverman'; got 'gaussian'",
    ),
    (lambda: kde.rule_expected_variance(3, 10, rule="nope"), "rule must be one of"),
    (
        lambda: kde.rule_mean_variance(3, 1),
        "sample_size must be an integer >= 2 (at most 2**53); got 1",
    ),
    (
        lambda: kde.accumulate_moments(3, 10, -0.1),
        "bandwidth must be a finite number >= 0; got -0.1",
    ),
    (lambda: kde.expected_variance([1, 2], [10, 20, 30], 0.5), "sample_size must have a shape"),
    (lambda: kde.expected_variance(True, 10, 0.5), "n must be numeric (not boolean)"),
    (lambda: kde.fresh_moments(3, 10, 0.5, 0.0), "alpha must be in (0, 1]; got 0.0"),
    (
        lambda: kde.fresh_moments(3, 10, 0.5, 0.15),
        "alpha * sample_size a whole number (the real count); got 0.15",
    ),
    (lambda: kde.fresh_fixed_point(10, -0.5, 0.2), "bandwidth must be a finite number >= 0"),
]


@pytest.mark.parametrize("call, message", BAD, ids=[b[1][:40] for b in BAD])
def test_bad_input_is_refused_in_one_line(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_accumulate_needs_a_concrete_n():
    with pytest.raises(ValueError, match="concrete n"):
        jax.jit(lambda n: kde.accumulate_moments(n, 10, 0.5).expected_variance)(jnp.asarray(3))


def test_float64_without_x64():
    with jax.enable_x64(False):
        v = kde.expected_variance(60, 17, 0.3)
    assert isinstance(v, np.ndarray) and v.dtype == np.float64
    assert v == kde.expected_variance(60, 17, 0.3)


def test_docstring_examples():
    failures, tried = doctest.testmod(kde, optionflags=doctest.ELLIPSIS)
    assert tried >= 7 and failures == 0
