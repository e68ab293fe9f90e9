"""The public API of every theory module: uniform keywords, float64 without x64, jit/grad.

The float64 tests run in a subprocess without ``jax_enable_x64`` (this test
process has it on, see conftest.py): there every public function, called with
concrete arguments, must return NumPy arrays bit-identical to the x64 values
computed here, and traced calls (jit, grad, vmap) must still work in float32.
"""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax

jax.config.update("jax_enable_x64", True)

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests.theory_cases import (  # noqa: E402
    CASES,
    COMMON,
    COMMON_FUNCTIONS,
    MODULES,
    leaves,
    public_functions,
)

ROOT = Path(__file__).resolve().parents[1]
ALL = [(m, f) for m in CASES for f in CASES[m]]
WITH_COMMON = [(m, f) for m in COMMON_FUNCTIONS for f in COMMON_FUNCTIONS[m]]


def call(mod, name, **extra):
    return getattr(MODULES[mod], name)(**{**CASES[mod][name], **extra})


@pytest.mark.unit
def test_cases_cover_every_public_function():
    for mod, module in MODULES.items():
        assert sorted(CASES[mod]) == sorted(public_functions(module)), mod


@pytest.mark.unit
def test_every_public_function_has_the_argument_rule():
    for mod, name in ALL:
        assert hasattr(getattr(MODULES[mod], name), "theory_arguments"), (mod, name)


# ---------------------------------------------------------------------------
# Uniform keywords.
# ---------------------------------------------------------------------------


@pytest.mark.costly
@pytest.mark.unit
@pytest.mark.parametrize("mod,name", WITH_COMMON)
def test_common_keywords_accepted(mod, name):
    out = call(mod, name, **COMMON[mod])
    assert all(np.all(np.isfinite(x)) for x in leaves(out))


NO_EFFECT = [
    ("gaussian", "variance_cv2", {"sigma0": 3.0, "estimator": "mle"}),
    ("gaussian", "std_cv2", {"sigma0": 3.0, "estimator": "mle"}),
    ("gaussian", "log_variance_var", {"sigma0": 3.0, "estimator": "mle"}),
    ("gaussian", "collapse_probability", {"sigma0": 3.0}),
    ("gaussian", "median_tail_mass", {"sigma0": 3.0}),
    ("gaussian", "expected_tail_mass", {"sigma0": 3.0}),
    ("gaussian", "markov_tail_bound", {"estimator": "mle"}),
    ("categorical", "fixation_probability", {"sample_size": 7}),
    ("mixing", "accumulate_mean_variance", {"estimator": "unbiased"}),
    ("mixing", "anchored_mean", {"estimator": "unbiased"}),
]


@pytest.mark.costly
@pytest.mark.unit
@pytest.mark.parametrize("mod,name,extra", NO_EFFECT)
def test_keywords_without_effect_leave_the_value(mod, name, extra):
    base = leaves(call(mod, name))
    other = leaves(call(mod, name, **extra))
    for a, b in zip(base, other, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.unit
@pytest.mark.parametrize(
    "name", ["variance_cv2", "std_cv2", "log_variance_var", "collapse_probability"]
)
def test_sigma0_without_effect_still_broadcasts(name):
    out = call("gaussian", name, sigma0=[1.0, 2.0, 3.0])
    assert out.shape == (3,)
    np.testing.assert_array_equal(out, np.full(3, float(call("gaussian", name))))


@pytest.mark.unit
@pytest.mark.parametrize("mod,name", [w for w in WITH_COMMON if w[0] in ("gaussian", "mixing")])
def test_common_keywords_are_validated(mod, name):
    with pytest.raises(ValueError, match=r"^sigma0 must .*; got -1\.0$"):
        call(mod, name, sigma0=-1.0)
    with pytest.raises(ValueError, match=r"^estimator must .*; got 'bayes'$"):
        call(mod, name, estimator="bayes")


@pytest.mark.unit
def test_ridge_design_keyword_is_validated():
    with pytest.raises(ValueError, match=r"^design must be one of 'fixed'; got 'fresh'$"):
        call("regression", "ridge_test_error", design="fresh")


@pytest.mark.unit
def test_fixation_sample_size_is_validated():
    with pytest.raises(ValueError, match=r"^sample_size must .*; got 1$"):
        call("categorical", "fixation_probability", sample_size=1)


@pytest.mark.unit
@pytest.mark.parametrize("name", COMMON_FUNCTIONS["poisson"])
def test_poisson_keywords_are_validated(name):
    with pytest.raises(ValueError, match=r"^lam0 must .*; got -1\.0$"):
        call("poisson", name, lam0=-1.0)
    with pytest.raises(ValueError, match=r"^sample_size must .*; got 0$"):
        call("poisson", name, sample_size=0)


# ---------------------------------------------------------------------------
# Float64 without x64 (subprocess).
# ---------------------------------------------------------------------------

SCRIPT = r"""
import json, os
os.environ["JAX_PLATFORMS"] = "cpu"
import jax
import jax.numpy as jnp
import numpy as np
assert not jax.config.jax_enable_x64
from tests.theory_cases import CASES, MODULES
from theory import gaussian as tg

values = {}
for mod, funcs in CASES.items():
    for name, kwargs in funcs.items():
        out = getattr(MODULES[mod], name)(**kwargs)
        items = out if isinstance(out, tuple) else (out,)
        values[mod + "." + name] = [
            [type(x).__name__, str(x.dtype), [float(v).hex() for v in np.ravel(x)]] for x in items
        ]
std = tg.expected_std(60, 17, estimator="mle")
w2 = tg.expected_w2_squared(60, 17, estimator="mle")
res = {
    "values": values,
    "std": [type(std).__name__, str(std.dtype), float(std).hex()],
    "w2": float(w2).hex(),
    "jit": float(jax.jit(lambda s: tg.expected_std(60, 17, "mle", s))(1.0)).hex(),
    "jit_dtype": str(jax.jit(lambda s: tg.expected_std(60, 17, "mle", s))(1.0).dtype),
    "grad": float(jax.grad(lambda s: tg.expected_variance(3, 10, "mle", s))(2.0)).hex(),
    "closed_over": float(jax.jit(lambda x: x * tg.expected_std(60, 17, "mle"))(1.0)).hex(),
    "vmap_dtype": str(jax.vmap(lambda m: tg.expected_std(60, m, "mle"))(jnp.array([17, 18])).dtype),
    "tail_jit": float(jax.jit(lambda k: tg.expected_tail_mass(3, 10, k, grid_size=256))(1.5)),
    "x64_after": bool(jax.config.jax_enable_x64),
}
print("RESULT" + json.dumps(res))
"""


@pytest.fixture(scope="module")
def without_x64():
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT") :])


@pytest.mark.multiprocess
@pytest.mark.parametrize("mod,name", ALL)
def test_concrete_calls_without_x64_equal_x64(without_x64, mod, name):
    got = without_x64["values"][f"{mod}.{name}"]
    out = call(mod, name)
    items = out if isinstance(out, tuple) else (out,)
    assert len(got) == len(items)
    for (kind, dtype, hexes), ref in zip(got, items, strict=True):
        ref = np.asarray(ref)
        assert kind == "ndarray"  # NumPy: keeps float64 outside x64 mode
        assert dtype == str(ref.dtype)
        assert [float.fromhex(h) for h in hexes] == [float(v) for v in np.ravel(ref)]


@pytest.mark.multiprocess
def test_issue_example_is_float64_without_x64(without_x64):
    from theory import gaussian as tg

    kind, dtype, std = without_x64["std"]
    assert (kind, dtype) == ("ndarray", "float64")
    assert float.fromhex(std) == float(tg.expected_std(60, 17, estimator="mle"))
    assert float.fromhex(without_x64["w2"]) == float(tg.expected_w2_squared(60, 17, "mle"))
    assert without_x64["x64_after"] is False


@pytest.mark.multiprocess
def test_traced_calls_without_x64_are_float32(without_x64):
    from theory import gaussian as tg

    exact = float(tg.expected_std(60, 17, estimator="mle"))
    assert without_x64["jit_dtype"] == "float32"
    assert abs(float.fromhex(without_x64["jit"]) / exact - 1) < 2e-4  # float32 accuracy
    assert without_x64["vmap_dtype"] == "float32"
    grad = float.fromhex(without_x64["grad"])  # d/ds s^2 (9/10)^3 at s = 2
    assert abs(grad / (4.0 * 0.9**3) - 1) < 1e-6
    # A concrete call inside the user's jit is evaluated now, in float64, and
    # enters the float32 program as a constant: the float32 rounding of the answer.
    assert float.fromhex(without_x64["closed_over"]) == float(np.float32(exact))
    tail = float(tg.expected_tail_mass(3, 10, 1.5, grid_size=256))
    assert abs(without_x64["tail_jit"] - tail) < 1e-5


# ---------------------------------------------------------------------------
# Every docstring example runs (x64 on here; the subprocess above covers the
# same functions without x64).
# ---------------------------------------------------------------------------

DOC_MODULES = [
    "theory.gaussian.moments",
    "theory.gaussian.law",
    "theory.gaussian.tails",
    "theory.categorical.heterozygosity",
    "theory.categorical.wright_fisher",
    "theory.categorical.absorption",
    "theory.categorical.branching",
    "theory.categorical.sampling",
    "theory.mixing",
    "theory.regression",
    "theory.poisson",
]


@pytest.mark.costly
@pytest.mark.unit
@pytest.mark.parametrize("name", DOC_MODULES)
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
