"""Bad input to the engine's public entry points is refused before any work (issue 17).

Each row (a function of a temporary directory) calls one entry point (``sim.run.run``, the ``run_*`` wrappers,
``sim.sweep.sweep``, ``sim.sweep.save``, ``sim.checkpoint.Checkpointer``) with
one bad argument and asserts: a ``ValueError``, a message naming the argument
and its value, no program compiled (the segment cache saw no new entry) and no
file written.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sim import parallel
from sim.checkpoint import Checkpointer
from sim.families.categorical import Vocabulary
from sim.regimes import Regime
from sim.run import run
from sim.runners import run_categorical, run_gaussian, run_regression
from sim.sweep import save, sweep

pytestmark = pytest.mark.unit

KEY = jax.random.key(0, impl="philox4x32")
SIZES = dict(num_chains=8, num_generations=2, progress=False)


def _gaussian(**kw):
    return run_gaussian(KEY, **{"sample_size": 5, **SIZES, **kw})


def _categorical(**kw):
    return run_categorical(
        KEY, **{"vocabulary": Vocabulary.uniform(4), "sample_size": 5, **SIZES, **kw}
    )


def _regression(**kw):
    return run_regression(KEY, **{"dim": 2, "num_samples": 6, "noise": 1.0, **SIZES, **kw})


def _run(name, **kw):
    return run(name, KEY, **{**SIZES, **kw})


def _sweep(name="gaussian", grid=None, **kw):
    return sweep(name, grid or {"sample_size": [5]}, **{**SIZES, **kw})


CASES = [
    # the key
    ("key=0", lambda tmp: run_gaussian(0, sample_size=5, **SIZES), ("key=0",)),
    ("key batch", lambda tmp: run("gaussian", jax.random.split(KEY, 2), **SIZES), ("key", "(2,)")),
    # sizes
    ("num_chains=0", lambda tmp: _gaussian(num_chains=0), ("num_chains=0",)),
    ("num_chains huge", lambda tmp: _gaussian(num_chains=10**20), ("num_chains=" + str(10**20),)),
    ("num_generations=1.5", lambda tmp: _gaussian(num_generations=1.5), ("num_generations=1.5",)),
    ("sample_size str", lambda tmp: _gaussian(sample_size="10"), ("sample_size='10'",)),
    ("sample_size=1", lambda tmp: _gaussian(sample_size=1), ("sample_size=1",)),
    # settings
    ("dtype float16", lambda tmp: _gaussian(dtype=jnp.float16), ("dtype", "float16")),
    ("estimator", lambda tmp: _gaussian(estimator="biased"), ("estimator='biased'",)),
    ("method", lambda tmp: _gaussian(method="fast"), ("method='fast'",)),
    ("sigma0 nan", lambda tmp: _gaussian(sigma0=float("nan")), ("sigma0=nan",)),
    (
        "sigma0 float32 scale",
        lambda tmp: _gaussian(sigma0=1e4, dtype=jnp.float32),
        ("sigma0=10000",),
    ),
    ("tail_k", lambda tmp: _gaussian(tail_k=-1.0), ("tail_k=-1.0",)),
    ("unknown setting", lambda tmp: _run("gaussian", sample_size=5, colour="red"), ("'colour'",)),
    ("unknown family", lambda tmp: _run("gamma"), ("family='gamma'",)),
    ("regime kind", lambda tmp: _run("gaussian", regime="forever"), ("regime='forever'",)),
    (
        "fresh alpha",
        lambda tmp: _gaussian(regime=Regime.fresh(0.3), alpha=float("nan")),
        ("alpha=nan",),
    ),
    (
        "schedule short",
        lambda tmp: _gaussian(method="exact", regime=Regime.replace(schedule=(5,))),
        ("schedule", "num_generations=2"),
    ),
    ("known variance, no regime", lambda tmp: _gaussian(known_variance=1.0), ("known_variance",)),
    (
        "vocabulary",
        lambda tmp: run_categorical(KEY, vocabulary=[0.5, 0.5], sample_size=5, **SIZES),
        ("vocabulary", "list"),
    ),
    ("temperature", lambda tmp: _categorical(temperature=0.0), ("temperature=0.0",)),
    ("top_p", lambda tmp: _categorical(top_p=1.5), ("top_p=1.5",)),
    ("tail_rank", lambda tmp: _categorical(tail_rank=9), ("tail_rank=9",)),
    ("smoothing", lambda tmp: _categorical(smoothing=-1.0), ("smoothing=-1.0",)),
    ("noise", lambda tmp: _regression(noise=-1.0), ("noise=-1.0",)),
    ("OLS needs T > d", lambda tmp: _regression(num_samples=2), ("dim=2", "num_samples=2")),
    ("w_star shape", lambda tmp: _regression(w_star=[1.0, 2.0, 3.0]), ("w_star", "(3,)")),
    ("poisson lam0", lambda tmp: _run("poisson", lam0=-1.0), ("lam0=-1.0",)),
    ("poisson sample_size", lambda tmp: _run("poisson", sample_size=0), ("sample_size=0",)),
    # engine options
    ("snapshot generation", lambda tmp: _gaussian(snapshot_generations=[99]), ("99",)),
    (
        "snapshot field",
        lambda tmp: _gaussian(snapshot_generations=[1], snapshot_fields=("nope",)),
        ("nope",),
    ),
    ("block_size", lambda tmp: _gaussian(block_size=3), ("block_size=3",)),
    # sweeps
    ("sweep seed negative", lambda tmp: _sweep(seed=-1), ("seed=-1",)),
    ("sweep seed aliasing", lambda tmp: _sweep(seed=2**32), ("seed=4294967296",)),
    (
        "sweep grid repeated",
        lambda tmp: _sweep(grid={"sample_size": [5, 5]}),
        ("sample_size", "[5, 5]"),
    ),
    ("sweep parameter", lambda tmp: _sweep(grid={"colour": [1]}), ("'colour'",)),
    ("sweep family", lambda tmp: _sweep("gamma"), ("model='gamma'",)),
    (
        "sweep checkpoint_every_s",
        lambda tmp: _sweep(checkpoint_dir=f"{tmp}/ck", checkpoint_every_s=float("nan")),
        ("checkpoint_every_s=nan",),
    ),
    (
        "sweep checkpoint_dir file",
        lambda tmp: _sweep(checkpoint_dir=f"{tmp}/file"),
        ("checkpoint_dir=", "not a directory"),
    ),
    (
        "sweep checkpoint_dir /proc",
        lambda tmp: _sweep(checkpoint_dir="/proc/nope/ck"),
        ("checkpoint_dir=/proc/nope/ck",),
    ),
    (
        "checkpointer every_s",
        lambda tmp: Checkpointer(f"{tmp}/ck2", {}, every_s=float("nan")),
        ("checkpoint_every_s=nan",),
    ),
    ("save to a directory", lambda tmp: save(None, str(tmp)), ("path=", "is a directory")),
    ("save under /proc", lambda tmp: save(None, "/proc/nope/x.nc"), ("path=/proc/nope/x.nc",)),
]


@pytest.mark.parametrize("label,call,needles", CASES, ids=[c[0] for c in CASES])
def test_refused_naming_the_value_before_any_work(label, call, needles, tmp_path):
    (tmp_path / "file").write_text("not a directory")
    before = sorted(os.listdir(tmp_path))
    misses = parallel._segment_fn.cache_info().misses
    with pytest.raises(ValueError) as err:
        call(tmp_path)
    msg = str(err.value)
    assert "\n" not in msg, f"{label}: the message is not one line: {msg!r}"
    for needle in needles:
        assert needle in msg, f"{label}: {needle!r} not in {msg!r}"
    assert parallel._segment_fn.cache_info().misses == misses, f"{label}: compiled first"
    assert sorted(os.listdir(tmp_path)) == before, f"{label}: wrote files first"


def test_legacy_key_is_accepted_with_its_bits():
    legacy = jax.random.PRNGKey(3)
    a = run_gaussian(legacy, sample_size=5, **SIZES)
    b = run_gaussian(jax.random.wrap_key_data(legacy, impl="threefry2x32"), sample_size=5, **SIZES)
    np.testing.assert_array_equal(a.final.log_var, b.final.log_var)
