"""Test configuration: CPU only, float64 available, a fast default suite.

Statistical tests use fixed seeds (so CI is deterministic) and tolerances
from Monte-Carlo standard errors at a stated false-failure rate, never tuned
to a seed. ``--runslow`` adds larger runs (millions of chains).

Every test carries one kind marker (``KINDS``: a module's ``pytestmark``, or one
per test where a module mixes kinds); a test without one is named in a warning.
``-m "unit and not costly and not slow"`` is the fast subset (README, Tests);
``costly`` marks the unit tests measured at 3 s or more on 2 cores.
"""

import os
import shutil
import tempfile
import warnings

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)


def _compilation_cache() -> str:
    """One persistent compilation cache for the whole test run (all xdist workers and
    the experiments' subprocesses): many tests build the same programs from new
    closures, and the cache turns the repeats into disk reads. ``$MODEL_COLLAPSE_CACHE``
    when set (empty: off), else a directory made for this run; the first process to
    get here (the xdist controller, or the only one) makes it and hands it down."""
    global _MADE
    path = os.environ.get("MODEL_COLLAPSE_CACHE")
    if path is None:
        path = _MADE = tempfile.mkdtemp(prefix="model-collapse-tests-")
        os.environ["MODEL_COLLAPSE_CACHE"] = path
    if path:
        jax.config.update("jax_compilation_cache_dir", path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return path


_MADE = None
_compilation_cache()


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run the slow tests")


MARKERS = {
    "slow": "long statistical runs (use --runslow)",
    "unit": "exact or fast checks of one piece (closed forms, samplers, engine, validation)",
    "statistical": "Monte-Carlo tests of the simulator against theory or a law",
    "e2e": "experiments and notebooks run end to end",
    "multiprocess": "spawns subprocesses with several devices or processes",
    "costly": "a unit test measured at 3 s or more on 2 cores (compiles): out of the fast subset",
}
KINDS = ("unit", "statistical", "e2e", "multiprocess")


def pytest_unconfigure(config):
    if _MADE is not None:
        shutil.rmtree(_MADE, ignore_errors=True)


def pytest_configure(config):
    for name, help_ in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {help_}")


def pytest_collection_modifyitems(config, items):
    unmarked = [i.nodeid for i in items if not any(i.get_closest_marker(k) for k in KINDS)]
    if unmarked:
        warnings.warn(
            f"{len(unmarked)} tests carry none of the markers {KINDS}: {unmarked[:5]}",
            pytest.PytestWarning,
            stacklevel=1,
        )
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
