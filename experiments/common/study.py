"""What every study shares: its result object, float64 theory, and the timed run.

A study module defines its configuration (a dataclass extending
:class:`experiments.common.settings.CommonSettings`), ``validate(config)``,
``run_study(config, progress=True) -> Study`` and ``write_outputs(study,
output_dir)``; everything here is the scaffold they are written on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time

from experiments.common.table import FAIL, format_table, judge_all
from sim.io import environment


@dataclasses.dataclass
class Study:
    """A finished study: its runs, its comparisons judged, the table as printed."""

    config: object
    runs: list
    comparisons: list
    z_crit: float
    table: str
    env: dict

    @property
    def num_failed(self) -> int:
        return sum(r.verdict == FAIL for r in self.comparisons)

    @property
    def num_tested(self) -> int:
        return sum(r.testable for r in self.comparisons)

    def run(self, label: str):
        return next(r for r in self.runs if r.label == label)

    def part(self, part: str) -> list:
        return [r for r in self.runs if getattr(r, "part", None) == part]


def judged(config, runs, rows, table=None, study_cls=Study, **extra) -> Study:
    """The :class:`Study` of ``runs`` and comparison ``rows``: rows judged at the
    config's false-failure rate, the table formatted (``table(rows, z_crit)``,
    default :func:`format_table`), the environment recorded."""
    z_crit = judge_all(rows, config.false_failure_rate)
    text = (table or format_table)(rows, z_crit)
    return study_cls(config, runs, rows, z_crit, text, environment(), **extra)


def float64():
    """The context a study runs in: float64 available for the theory.

    The command line turns x64 on once, at its entry, for the whole process
    (:func:`experiments.common.cli.main`); there this is a no-op. Called from a
    notebook with x64 off, the study runs inside ``jax.enable_x64(True)`` and
    the session's setting is left as it was. Simulations choose their dtype
    explicitly (``--x64``), whatever this is.
    """
    import jax

    if jax.config.jax_enable_x64:
        return contextlib.nullcontext()
    return jax.enable_x64(True)


def enable_compilation_cache() -> None:
    """Keeps compiled programs on disk so that reruns skip compilation.

    Compilation dominates a default run's first minute (the Gaussian theory's
    grids and bisections take ~12 s per estimator on 2 cores). The cache lives in
    ``$MODEL_COLLAPSE_CACHE`` (default ``~/.cache/model_collapse_sim/jax``);
    set it to an empty string to disable. A directory already configured in
    ``jax_compilation_cache_dir`` is left as it is.
    """
    import jax

    if jax.config.jax_compilation_cache_dir:
        return
    path = os.environ.get(
        "MODEL_COLLAPSE_CACHE",
        os.path.join(os.path.expanduser("~"), ".cache", "model_collapse_sim", "jax"),
    )
    if path:
        jax.config.update("jax_compilation_cache_dir", path)
        # Eager theory compiles many small programs: keep them all.
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def timed_run(runner, label: str, announce: bool, detail: str = "", **kw):
    """One call of ``runner(**kw)`` (``sim.runners.run_*``), timed and announced.

    Prints ``[label] C chains x G generations`` before and the time after when
    ``announce``; records ``simulate_s`` in the result's timings.
    """
    c, g = kw["num_chains"], kw["num_generations"]
    if announce:
        print(f"[{label}] {c:,} chains x {g:,} generations{detail}", flush=True)
    t = time.perf_counter()
    res = runner(progress_desc=label, **kw)
    res.timings["simulate_s"] = time.perf_counter() - t
    if announce:
        first = res.timings.get("first_call_s")
        extra = f" (first call incl. compile {first:.1f} s)" if first is not None else ""
        print(f"[{label}] simulated in {res.timings['simulate_s']:.1f} s{extra}", flush=True)
    return res


@contextlib.contextmanager
def timing(timings: dict, name: str):
    """Adds the seconds the block takes to ``timings[name]``."""
    t = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - t
