"""Family builders and regime steps with traced settings, against the cached static factories.

A parameter sweep builds a family inside a jitted function with some settings
as per-lane scalars under ``vmap``. Each test runs a few chains for a few
generations that way, over a handful of values, and compares every lane with
the cached factory built from the same value as a Python number and run alone
with the same keys, in the same jitted program (:func:`check_lanes`).

Integers and booleans must be equal; floats equal to 1e-12 (float64) or 1e-6
(float32) relative (:func:`assert_same`), because XLA does not compile the two
the same way. Measured: bit-identical for the categorical chains (float32 and
float64, and under fresh/anchored regimes), ``apply_bias``, the Gaussian
exact path and binomial mixing; last-bit differences in a few % of the values
for the Gaussian sample path and regression (the static family itself,
batched over a lane axis, differs from its unbatched run in the same way:
fusion, FMA contraction, batched matrix kernels) and the Gaussian regimes
(sizes per lane: XLA's CPU code for the gamma sampler of a traced shape and
for the summaries rounds differently under the lane axis; with the reference's
sizes made run-time values too, 0-11 of 36 values still differ). On the
points path a traced count also sums M weighted points instead of n.

With a traced fraction a regime draws summaries of a traced size, which the
samplers draw from other random words than for a Python size (the same law):
the reference there is the static regime step of the same family with its
sizes handed to the sampler as int32 arrays (:func:`traced_sizes`).

The full grids and the categorical regimes compile a multinomial per value
(about 5 s each on 2 cores): they run with ``--runslow``.
"""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from sim.chain import replace_step, replace_transition  # noqa: E402
from sim.families.categorical import (  # noqa: E402
    Vocabulary,
    categorical,
    categorical_family,
    categorical_verifier,  # noqa: E402
)
from sim.families.gaussian import (  # noqa: E402
    ESTIMATOR_DDOF,
    gaussian,
    gaussian_family,
    gaussian_verifier,  # noqa: E402
    real_params,
)
from sim.families.regression import regression, regression_family  # noqa: E402
from sim.regimes import (  # noqa: E402
    Constant,
    Regime,
    make_regime_step,
    regime_step,
)
from sim.sampling import SamplingBias, apply_bias, sampling_bias  # noqa: E402

CHAINS, GENS = 8, 4

pytestmark = pytest.mark.unit


def run_chains(step, state0, seed=0, gens=GENS):
    """Final states of CHAINS chains after ``gens`` steps (keys fold_in(chain key, t))."""

    def one(k):
        def body(s, t):
            return step(jax.random.fold_in(k, t), s)[0], None  # (state, info): the state

        return jax.lax.scan(body, state0, jnp.arange(1, gens + 1))[0]

    return jax.vmap(one)(jax.random.split(jax.random.key(seed), CHAINS))


def check_lanes(build, values: dict, references, state0, **kw):
    """Runs ``build(theta)`` under vmap over the lanes of ``values`` (traced scalars) and
    each ``(step, state)`` of ``references`` alone, in one jitted program; asserts lane
    i equals reference i (:func:`assert_same`). The states are arguments, so that XLA
    folds no computation on them at compile time (with other rounding)."""

    @jax.jit
    def go(values, state0, ref_states):
        got = jax.vmap(lambda theta: run_chains(build(theta), state0, **kw))(values)
        steps = [step for step, _ in references]
        return got, [run_chains(s, x, **kw) for s, x in zip(steps, ref_states, strict=True)]

    values = {k: jnp.asarray(v) for k, v in values.items()}
    got, want = go(values, state0, [state for _, state in references])
    for i, w in enumerate(want):
        theta = ", ".join(f"{k}={v[i]}" for k, v in values.items())
        assert_same(lane(got, i), w, f"lane {i}: {theta}")


def lane(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


RTOL = {"float32": 1e-6, "float64": 1e-12}


def assert_same(got, want, msg=""):
    """Equal leaves: integers and booleans exactly, floats to RTOL of their dtype
    (relative to the leaf's largest finite magnitude near 0); see the module
    docstring for why not bit-identical."""
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        g, w = np.asarray(g), np.asarray(w)
        assert g.dtype == w.dtype, msg
        if np.issubdtype(g.dtype, np.floating):
            rtol = RTOL[g.dtype.name]
            scale = np.max(np.abs(w[np.isfinite(w)]), initial=0.0)
            np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol * scale, err_msg=msg)
        else:
            np.testing.assert_array_equal(g, w, err_msg=msg)


def uncached_replace_step(family, m):
    """:func:`sim.chain.replace_step` uncached, for families that are not hashable
    (a traced ``ops.min_count``)."""

    def step(key, params):
        return replace_transition(family, m, key, params)

    return step


def traced_sizes(family, sample_too=False):
    """``family`` with the sizes of ``ops.sample_stats`` (and of ``sample``) passed as
    int32 arrays: what a traced fraction draws, with the static regime's sizes."""

    def to_array(f):
        return lambda key, params, n: f(key, params, jnp.asarray(n, jnp.int32))

    ops = family.ops._replace(sample_stats=to_array(family.ops.sample_stats))
    sample = to_array(family.sample) if sample_too else family.sample
    return family._replace(sample=sample, ops=ops)


# ------------------------------------------------------------------------------- Gaussian


@pytest.mark.costly
@pytest.mark.parametrize("path", ["sample", "exact"])
def test_gaussian_ddof_lanes_equal_the_estimators(path):
    m = 5

    def step_of(fam):
        if path == "sample":
            return replace_step(fam, m)
        ops = fam.ops

        def step(key, params):
            return ops.fit_stats(key, ops.sample_stats(key, params, m)), ()

        return step

    p0 = real_params(0.5, 2.0, jnp.float64)
    estimators = ("mle", "unbiased")
    check_lanes(
        lambda th: step_of(gaussian_family(th["ddof"])),
        {"ddof": [float(ESTIMATOR_DDOF[e]) for e in estimators]},
        [(step_of(gaussian(e)), p0) for e in estimators],
        p0,
    )


# ---------------------------------------------------------------------------- categorical

TEMPERATURES, TOP_PS, SMOOTHINGS = (0.5, 1.0, 2.0), (0.3, 1.0), (0.0, 0.5)
FULL_GRID = [(t, p, a) for t in TEMPERATURES for p in TOP_PS for a in SMOOTHINGS]
# Every value of each setting once at least (the full grid compiles 12 multinomials).
COVER = [(0.5, 0.3, 0.0), (1.0, 1.0, 0.5), (2.0, 0.3, 0.5)]


@pytest.mark.costly
@pytest.mark.parametrize("top_k", [None, 5])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_apply_bias_with_traced_temperature_and_top_p(dtype, top_k):
    """Bit-identical to the static transform in the same program (``probs`` an argument:
    XLA would fold a constant ``probs`` at compile time, with other rounding)."""
    probs = jnp.asarray(Vocabulary.zipf(12, 1.1).probs, dtype)
    grid = [(t, p) for t in TEMPERATURES for p in TOP_PS]

    @jax.jit
    def go(temps, top_ps, probs):
        traced = jax.vmap(lambda t, p: apply_bias(SamplingBias(t, top_k, p), probs))
        static = [apply_bias(sampling_bias(t, top_k, p), probs) for t, p in grid]
        return traced(temps, top_ps), static

    got, want = go(*(jnp.asarray(v) for v in zip(*grid, strict=True)), probs)
    for i, w in enumerate(want):
        np.testing.assert_array_equal(got[i], w, err_msg=f"tau, top_p = {grid[i]}")


def test_traced_top_p_of_one_keeps_every_category():
    # The float32 cumulative sum reaches 1.0 before the last category, so
    # `mass before < top_p` alone would drop it.
    probs = jnp.asarray([0.6, 0.4 - 3e-8, 3e-8], jnp.float32)
    assert float(probs[0] + probs[1]) >= 1.0
    q = jax.jit(lambda p: apply_bias(SamplingBias(1.0, None, p), probs))(jnp.float32(1.0))
    np.testing.assert_array_equal(q, probs)


@pytest.mark.costly
@pytest.mark.parametrize(
    "dtype, grid",
    [
        ("float32", COVER),
        pytest.param("float64", FULL_GRID, marks=pytest.mark.slow),
        pytest.param("float32", FULL_GRID, marks=pytest.mark.slow),
    ],
)
def test_categorical_lanes_equal_the_static_family(dtype, grid):
    vocab = Vocabulary.zipf(5, 1.0)
    m = 20
    p0 = vocab.params(dtype)

    def build(th):
        bias = SamplingBias(th["temperature"], None, th["top_p"])
        return uncached_replace_step(categorical_family(th["smoothing"], bias, dtype), m)

    check_lanes(
        build,
        dict(zip(("temperature", "top_p", "smoothing"), np.array(grid).T, strict=True)),
        [
            (replace_step(categorical(a, sampling_bias(t, None, p), dtype), m), p0)
            for t, p, a in grid
        ],
        p0,
    )


# ----------------------------------------------------------------------------- regression


@pytest.mark.costly
@pytest.mark.parametrize("design", ["fresh", "fixed"])
def test_regression_lanes_equal_the_static_family(design):
    """Traced noise and ridge (the fixed design at ridge 0: min-norm OLS), replaced and
    accumulated (a traced ``min_count`` in the regime)."""
    d, t = 3, 8
    w0 = jnp.asarray([1.0, -0.5, 0.25], jnp.float64)
    grid = [(s, r) for s in (0.0, 0.5) for r in (0.0, 0.1)]
    real = Constant(w0)
    acc = Regime.accumulate()
    state0 = (w0, regime_step(regression(d, t, 0.5), acc, t, real)[1](w0))

    def steps(fam, replace, regime_step_of):
        plain, accumulate = replace(fam, t), regime_step_of(fam, acc, t, real)[0]
        return lambda key, s: ((plain(key, s[0])[0], accumulate(key, s[1])[0]), ())

    def build(th):
        fam = regression_family(d, t, th["noise"], th["ridge"], design, 0, "float64")
        return steps(fam, uncached_replace_step, make_regime_step)

    refs = [
        (steps(regression(d, t, s, r, design, 0, "float64"), replace_step, regime_step), state0)
        for s, r in grid
    ]
    check_lanes(build, dict(zip(("noise", "ridge"), np.array(grid).T, strict=True)), refs, state0)


# -------------------------------------------------------------------------------- regimes

FRACTIONS = (0.0, 0.3, 1.0)


def _regime_case(name):
    """(family, real params, M, verifier)."""
    if name == "gaussian":
        verifier = gaussian_verifier(k=1.0, accept_good=0.9, accept_bad=0.2)
        return gaussian("unbiased"), real_params(dtype=jnp.float64), 6, verifier
    vocab = Vocabulary.zipf(4, 1.0)
    verifier = categorical_verifier(vocab, 0.2, accept_bad=0.3)
    return categorical(0.0, sampling_bias(0.7), "float64"), vocab.params(jnp.float64), 12, verifier


@pytest.mark.costly
@pytest.mark.parametrize(
    "family_name, draws",
    [
        ("gaussian", "exact"),
        ("gaussian", "points"),
        # Categorical counts compile a multinomial per regime and fraction (~5 s each).
        pytest.param("categorical", "exact", marks=pytest.mark.slow),
        pytest.param("categorical", "points", marks=pytest.mark.slow),
    ],
)
def test_regime_fraction_lanes_equal_the_static_regime(family_name, draws):
    """fresh(alpha) (on points with a verifier) and anchored(lam) with a traced fraction."""
    fam, p0, m, verifier = _regime_case(family_name)
    real = Constant(p0)
    kinds = [Regime.fresh, Regime.anchored]
    if draws == "points":  # the weighted synthetic draws of fresh, and a verifier on them
        kinds = [lambda f: Regime.fresh(f, verifier=verifier), Regime.anchored]
    inits = tuple(make_regime_step(fam, kind(0.5), m, real, draws)[1](p0) for kind in kinds)

    def steps(make):
        steps = [make(kind) for kind in kinds]
        return lambda key, states: (
            tuple(s(key, x)[0] for s, x in zip(steps, states, strict=True)),
            (),
        )

    def build(th):
        return steps(lambda k: make_regime_step(fam, k(0.5), m, real, draws, fraction=th["f"])[0])

    # The reference draws its sizes as int32 arrays, as a traced fraction does.
    ref = traced_sizes(fam, sample_too=family_name == "categorical")
    refs = [
        (steps(lambda k, f=f: regime_step(ref, k(f), m, real, draws)[0]), inits) for f in FRACTIONS
    ]
    check_lanes(build, {"f": FRACTIONS}, refs, inits)


@pytest.mark.slow
def test_fresh_binomial_mixing_lanes_equal_the_static_regime():
    fam, p0, m, _ = _regime_case("gaussian")
    real = Constant(p0)
    regime = Regime.fresh(0.5, mixing="binomial")
    _, init = make_regime_step(fam, regime, m, real, "exact")
    refs = [
        (regime_step(fam, Regime.fresh(f, mixing="binomial"), m, real, "exact")[0], init(p0))
        for f in FRACTIONS
    ]
    check_lanes(
        lambda th: make_regime_step(fam, regime, m, real, "exact", fraction=th["f"])[0],
        {"f": FRACTIONS},
        refs,
        init(p0),
    )


@pytest.mark.slow
def test_regression_fresh_fraction_on_points():
    d, t = 2, 6
    w0 = jnp.asarray([1.0, -0.5], jnp.float64)
    real = Constant(w0)
    fam = regression(d, t, 0.3, 0.1, dtype=jnp.float64)
    _, init = make_regime_step(fam, Regime.fresh(0.5), t, real)
    # M rows weighted 0/1 against n rows: sums of other lengths (rounding only).
    check_lanes(
        lambda th: make_regime_step(fam, Regime.fresh(0.5), t, real, fraction=th["f"])[0],
        {"f": FRACTIONS},
        [(regime_step(fam, Regime.fresh(f), t, real)[0], init(w0)) for f in FRACTIONS],
        init(w0),
    )


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: gaussian("biased"), "estimator='biased'"),
        (lambda: gaussian("mle", known_variance=-1.0), "known_variance=-1.0"),
        (lambda: gaussian_family(2.0), "ddof=2.0"),
        (lambda: sampling_bias(temperature=0.0), "temperature=0.0"),
        (lambda: sampling_bias(top_p=1.5), "top_p=1.5"),
        (lambda: categorical(-0.5), "smoothing=-0.5"),
        (lambda: categorical_family(0.0, "tau=2"), "bias must be a SamplingBias"),
        (lambda: regression(3, 10, noise=-1.0), "noise=-1.0"),
        (lambda: regression(3, 3, noise=1.0), "OLS"),
        (lambda: regression(3, 10, noise=1.0, ridge=-0.1), "ridge=-0.1"),
    ],
)
def test_bad_python_values_still_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_fraction_raises():
    fam, p0, m, _ = _regime_case("gaussian")
    real = Constant(p0)
    with pytest.raises(ValueError, match="alpha=1.5"):
        make_regime_step(fam, Regime.fresh(0.5), m, real, "exact", fraction=1.5)
    with pytest.raises(ValueError, match="lam=-0.1"):
        make_regime_step(fam, Regime.anchored(0.5), m, real, "exact", fraction=-0.1)
    with pytest.raises(ValueError, match="fresh and anchored regimes only"):
        make_regime_step(fam, Regime.accumulate(), m, real, "exact", fraction=0.5)


def test_names_of_traced_families():
    assert gaussian_family(0).name == gaussian("mle").name == "gaussian-mle"
    assert gaussian_family(1).name == "gaussian-unbiased"

    def names(x):
        fams = (
            gaussian_family(x),
            categorical_family(x, SamplingBias(x, None, x)),
            regression_family(2, 5, x, x),
        )
        return tuple(f.name for f in fams)

    out = []
    jax.jit(lambda x: out.append(names(x)) or x)(0.5)
    assert out[0] == (
        "gaussian(ddof=traced)",
        f"categorical(alpha=traced,tau=traced,top_p=traced,{jnp.result_type(float).name})",
        f"regression(d=2,T=5,sigma=traced,lambda=traced,fresh,{jnp.result_type(float).name})",
    )
