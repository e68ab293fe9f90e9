"""Bad input to every public theory function: one rule, refused by name and value.

The rule (theory/_validate.py): lists, tuples, NumPy and JAX arrays and Python
numbers are accepted; integer-valued arguments must hold integers of magnitude
at most 2**53 (2.5 and 10**20 are refused by name); booleans, complex numbers,
strings and ragged lists are refused; shapes that do not broadcast are refused
in one line naming both arguments and the shape. Every refusal is a
``ValueError`` of the form ``"<name> must ...; got <value>"``. The cases are
generated from each function's declared arguments (``theory_arguments``), so a
new public function is covered by declaring them.
"""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax

jax.config.update("jax_enable_x64", True)

import re  # noqa: E402

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests.theory_cases import CASES, MODULES, P3, leaves  # noqa: E402
from theory import categorical as tc  # noqa: E402
from theory import gaussian as tg  # noqa: E402
from theory import mixing as tm  # noqa: E402
from theory import poisson as tp  # noqa: E402
from theory import regression as tr  # noqa: E402

INTEGER_BAD = [(2.5, "2.5"), (10**20, "100000000000000000000"), ([3, 2.5], "2.5"), (1e20, "1e+20")]
REAL_BAD = [
    ("abc", "'abc'"),
    (True, "True"),
    (1 + 2j, "(1+2j)"),
    ([[1.0, 2.0], [3.0]], "[[1.0, 2.0], [3.0]]"),
    (np.array([1.0 + 0j, 2.0]), "(1+0j)"),
]

pytestmark = pytest.mark.unit


def spec(mod, name):
    return getattr(MODULES[mod], name).theory_arguments


def value_cases():
    out = []
    for mod, funcs in CASES.items():
        for name in funcs:
            args = spec(mod, name)
            for arg in args["integers"]:
                for value, text in INTEGER_BAD:
                    if arg == "sample_sizes":  # a schedule: the bad value inside one
                        if isinstance(value, list):
                            continue
                        value = [5, value]
                    out.append((mod, name, arg, value, text))
            for arg in args["reals"]:
                for value, text in REAL_BAD:
                    out.append((mod, name, arg, value, text))
    return out


def shape_cases():
    out = []
    for mod, funcs in CASES.items():
        for name in funcs:
            for group in spec(mod, name)["broadcast"]:
                (a, ca), (b, cb) = group[:2]
                va = np.ones((2,) + (3,) * ca)
                vb = np.ones((3,) + (3,) * cb)
                out.append((mod, name, a, va, b, vb))
    return out


VALUE_CASES = value_cases()
SHAPE_CASES = shape_cases()


def call(mod, name, **extra):
    return getattr(MODULES[mod], name)(**{**CASES[mod][name], **extra})


def test_every_public_function_has_bad_cases():
    covered = {(m, f) for m, f, *_ in VALUE_CASES}
    assert covered == {(m, f) for m in CASES for f in CASES[m]}


@pytest.mark.parametrize("mod,name,arg,value,text", VALUE_CASES)
def test_bad_value_refused_by_name(mod, name, arg, value, text):
    got = re.escape(text)
    if isinstance(value, list) and arg in ("n", "sample_size"):
        got = rf"({got}|shape \(2,\))"  # where only a single integer is allowed
    with pytest.raises(ValueError, match=rf"^{arg} must .*; got {got}$"):
        call(mod, name, **{arg: value})


@pytest.mark.parametrize("mod,name,a,va,b,vb", SHAPE_CASES)
def test_shapes_that_do_not_broadcast(mod, name, a, va, b, vb):
    pattern = rf"^{b} must .*broadcasting with .*{a}.*; got shape {re.escape(str(vb.shape))}$"
    with pytest.raises(ValueError, match=pattern) as info:
        call(mod, name, **{a: va, b: vb})
    assert "\n" not in str(info.value)


# The examples of issue 17, one by one.


@pytest.mark.costly
def test_lists_accepted_everywhere_like_arrays():
    np.testing.assert_array_equal(tg.expected_variance([1, 2], 10), [1.0, 1.0])
    np.testing.assert_array_equal(
        tg.log_variance_mean([1, 2], (10, 20)), tg.log_variance_mean(np.array([1, 2]), [10, 20])
    )
    np.testing.assert_array_equal(
        tg.expected_tail_mass([1, 2], 10, [1.0, 2.0], grid_size=256),
        tg.expected_tail_mass(np.array([1, 2]), 10, np.array([1.0, 2.0]), grid_size=256),
    )
    np.testing.assert_array_equal(
        tm.schedule_w2([1, 2], [5, 6]).total, tm.schedule_w2(np.array([1, 2]), (5, 6)).total
    )
    np.testing.assert_array_equal(
        tr.test_error([1, 2], 2, 7, 1.0), tr.test_error(np.array([1, 2]), 2, 7, 1.0)
    )
    np.testing.assert_array_equal(tc.suresh_g([1, 2]), tc.suresh_g(np.array([1, 2])))


def test_jax_and_numpy_scalars_accepted():
    ref = float(tg.expected_std(3, 10))
    for m in (np.int32(10), np.float64(10.0), jnp.asarray(10), jnp.asarray(10.0)):
        assert float(tg.expected_std(3, m)) == ref


def test_huge_n_names_argument_and_value():
    with pytest.raises(ValueError, match=r"^n must .*2\*\*53.*; got 100000000000000000000$"):
        tg.expected_variance(10**20, 10)


def test_noninteger_sample_size_refused_in_every_module():
    for fun in (
        lambda: tg.expected_variance(3, 2.5),
        lambda: tc.expected_heterozygosity(3, 2.5, P3),
        lambda: tm.accumulate_moments(3, 2.5),
    ):
        with pytest.raises(ValueError, match=r"^sample_size must .*; got 2\.5$"):
            fun()


def test_mismatched_shapes_one_line():
    with pytest.raises(ValueError) as info:
        tg.expected_variance([1, 2], [10, 11, 12])
    assert str(info.value) == (
        "sample_size must have a shape broadcasting with n (broadcast shape (2,)); got shape (3,)"
    )


def test_first_bad_value_is_named():
    with pytest.raises(ValueError, match=r"^n must .*; got -3$"):
        tg.expected_variance([1, -3, -4], 10)
    with pytest.raises(ValueError, match=r"^sample_size must .*; got 1\.5$"):
        tg.expected_std(3, [10, 1.5, 0.5])


def test_loop_lengths_beyond_int32_refused():
    with pytest.raises(ValueError, match=r"^n must .*int32.*; got 4294967296$"):
        tc.survival_probability(2**32, 10, 0.1)
    # g_k has no loop (theory.poisson's table and series): any k up to 2**53 is fine
    assert float(tc.suresh_g(2**32)) == float(tp.suresh_g(2**32))
    assert 2**31 * float(tc.suresh_g(2**32)) == pytest.approx(1.0, rel=1e-8)


def test_checks_skipped_on_tracers_but_shapes_checked():
    out = jax.jit(lambda n: tg.expected_variance(n, 10, "mle"))(2.5)  # not checked when traced
    assert np.isfinite(float(out))
    with pytest.raises(ValueError, match="broadcasting"):
        jax.jit(lambda n: tg.expected_variance(n, jnp.ones(3) * 10))(jnp.ones(2))


@pytest.mark.costly
def test_results_unchanged_by_conversion():
    for mod, funcs in CASES.items():
        for name, kwargs in funcs.items():
            arrays = {k: (np.asarray(v) if isinstance(v, list) else v) for k, v in kwargs.items()}
            a = leaves(getattr(MODULES[mod], name)(**kwargs))
            b = leaves(getattr(MODULES[mod], name)(**arrays))
            for x, y in zip(a, b, strict=True):
                np.testing.assert_array_equal(x, y)
