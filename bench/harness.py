"""What every bench shares: subprocess workers, machine load, RSS, timing and results.

A bench measures in fresh subprocesses (``python -m bench.<name> --worker JSON``),
so that each group gets its own JAX configuration (x64 on or off, XLA flags) and
its own peak RSS. The parent must not import JAX: on Linux a child's ``ru_maxrss``
starts from its parent's peak across ``exec``. Hence :func:`environment` asks a
subprocess too.

Parent side::

    run = harness.run_worker("bench.memory", case, measure_load=True)
    run.result, run.wall_s, run.cpu_s, run.others_cores

Worker side (``main`` of the bench)::

    if args.worker:
        harness.emit(_worker(json.loads(args.worker)))
        return 0

Results: :func:`metadata` (date, command, CPUs, platform, load and
``sim.io.environment()``) and :func:`write_results` (JSON, plus the printed
tables as text).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

RESULT_TAG = "@@BENCH_RESULT@@"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class WorkerError(RuntimeError):
    """A worker exited non-zero, timed out or printed no result."""


class WorkerRun(NamedTuple):
    """One worker's result and what the parent measured around it."""

    result: Any  # the worker's JSON value
    wall_s: float  # wall time of the subprocess
    cpu_s: float  # user + system CPU seconds of the subprocess
    others_cores: float | None  # cores used by other processes meanwhile (None: unmeasured)


# ------------------------------------------------------------------------------- workers


def worker_env(extra: dict | None = None, *, xla_flags: str = "", one_thread: bool = False):
    """The environment of a worker: the repository on PYTHONPATH, ``extra`` set,
    ``xla_flags`` appended to XLA_FLAGS, and one BLAS/OpenMP thread if ``one_thread``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    if one_thread:
        env.update(dict.fromkeys(THREAD_VARS, "1"))
    env.update(extra or {})
    if xla_flags:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + xla_flags).strip()
    return env


def emit(result) -> None:
    """Prints a worker's result for :func:`run_worker` (call once, last)."""
    print(RESULT_TAG + json.dumps(result, default=jsonable), flush=True)


def run_worker(
    module: str,
    payload,
    *,
    env: dict | None = None,
    timeout_s: float | None = None,
    measure_load: bool = False,
    args: tuple[str, ...] = (),
    tail: int = 4000,
) -> WorkerRun:
    """Runs ``python -m module --worker json(payload) *args`` from the repository root
    and returns its :func:`emit`-ted result.

    Args:
      module: the bench module, e.g. ``"bench.memory"``.
      payload: any JSON value, passed as the ``--worker`` argument.
      env: the worker's environment (default :func:`worker_env`).
      timeout_s: kill the worker after this many seconds (default: no limit).
      measure_load: also measure the cores other processes used while it ran.
      args: more command-line arguments after the payload.
      tail: characters of stdout and stderr shown when the worker fails.

    Raises:
      WorkerError: non-zero exit, timeout, or no result line (the tails of the
        worker's output go to stderr first).
    """
    cmd = [sys.executable, "-m", module, "--worker", json.dumps(payload), *args]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    b0, t0 = cpu_busy_jiffies() if measure_load else (0, 0)
    w0 = time.perf_counter()
    try:
        proc = _subprocess(cmd, env, timeout_s)
    except subprocess.TimeoutExpired as e:
        _show(e.stdout, e.stderr, tail)
        raise WorkerError(f"{module} worker timed out after {timeout_s} s") from None
    wall = time.perf_counter() - w0
    b1, t1 = cpu_busy_jiffies() if measure_load else (0, 0)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)]
    if proc.returncode or not lines:
        _show(proc.stdout, proc.stderr, tail)
        raise WorkerError(f"{module} worker failed (rc={proc.returncode})")
    own = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    others = None
    if measure_load and t1 > t0:
        total = (b1 - b0) / (t1 - t0) * (os.cpu_count() or 1) * wall
        others = max(total - own, 0.0) / wall
    return WorkerRun(json.loads(lines[-1][len(RESULT_TAG) :]), wall, own, others)


def _subprocess(cmd, env, timeout_s):
    """``cmd`` from the repository root, output captured (``env`` None: worker_env())."""
    env = worker_env() if env is None else env
    return subprocess.run(
        cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout_s, check=False
    )


def _show(stdout, stderr, tail: int) -> None:
    text = lambda s: s.decode(errors="replace") if isinstance(s, bytes) else (s or "")
    sys.stderr.write(text(stdout)[-tail:] + text(stderr)[-tail:])


# ---------------------------------------------------------------------------------- load


def cpu_busy_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat (0, 0 where absent)."""
    try:
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return 0, 0
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return sum(vals) - idle, sum(vals)


def others_cores(interval: float = 1.0) -> float:
    """CPU cores used by everything else over ``interval`` s (the caller sleeps)."""
    b0, t0 = cpu_busy_jiffies()
    time.sleep(interval)
    b1, t1 = cpu_busy_jiffies()
    if t1 == t0:
        return float("nan")
    return (b1 - b0) / (t1 - t0) * (os.cpu_count() or 1)


def wait_quiet(max_wait: float, threshold: float = 0.15) -> float:
    """Waits (up to ``max_wait`` s) until other processes use < ``threshold`` cores;
    returns the last load measured."""
    t = time.perf_counter()
    load = others_cores(0.5)
    while load >= threshold and time.perf_counter() - t < max_wait:
        load = others_cores(1.0)
    return load


# ------------------------------------------------------------------- memory and timing


def peak_rss_mib() -> float:
    """Peak resident set of this process in MiB (``ru_maxrss``; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def status_kib(field: str) -> int:
    """A field of /proc/self/status in KiB (``VmRSS``, ``VmHWM``...), -1 if absent."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def cpu_s() -> float:
    """User + system CPU seconds of this process (all its threads)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall s, CPU s) of one call of ``fn``."""
    c, t = cpu_s(), time.perf_counter()
    fn()
    return time.perf_counter() - t, cpu_s() - c


def best_time(fn: Callable[[], object], repeats: int, *, warmup: bool = True) -> float:
    """The fastest wall time of ``repeats`` calls, after one untimed call (compilation)
    unless ``warmup`` is False."""
    if warmup:
        fn()
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


# -------------------------------------------------------------------------------- results


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo, else ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def environment(env: dict | None = None, timeout_s: float = 300.0) -> dict:
    """``sim.io.environment()`` (versions, platform, backend, devices) of a worker
    process with ``env``; the parent stays free of JAX. ``{"error": ...}`` if it fails."""
    code = "import json, sim.io; print(json.dumps(sim.io.environment()))"
    try:
        proc = _subprocess([sys.executable, "-c", code], env, timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s} s"}
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def metadata(module: str, argv=None, *, env: dict | None = None, **extra) -> dict:
    """A run's metadata: UTC date, command line, CPUs, CPU model, platform, Python,
    the 1-minute load average, ``extra`` and ``environment`` (``env`` if the bench has
    already asked :func:`environment`)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    meta = dict(
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        command=" ".join([os.path.basename(sys.executable), "-m", module, *argv]),
        cpus=os.cpu_count(),
        cpu_model=cpu_model(),
        platform=platform.platform(),
        python=platform.python_version(),
        loadavg_before=os.getloadavg(),
    )
    meta.update(extra)
    meta["environment"] = environment() if env is None else env
    return meta


def jsonable(x):
    """``json.dump``'s ``default``: NumPy scalars and arrays as Python values, else str."""
    item, tolist = getattr(x, "item", None), getattr(x, "tolist", None)
    if tolist is not None and getattr(x, "ndim", 0):
        return tolist()
    if item is not None:
        return item()
    return str(x)


def write_results(path: str, payload: dict, text: str | None = None, suffix: str = ".md"):
    """Writes ``payload`` as JSON to ``path`` and, if given, ``text`` beside it (the
    same name with ``suffix`` instead of ``.json``); creates the folder. Returns the
    paths written."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(payload, f, indent=1, default=jsonable)
    paths = [path]
    if text is not None:
        stem = path[: -len(".json")] if path.endswith(".json") else path
        with open(stem + suffix, "w") as f:
            f.write(text)
        paths.append(stem + suffix)
    return paths


def loglog_slope(xs, ys) -> float:
    """The fitted slope of log y against log x (how cost grows with x)."""
    import numpy as np

    return float(np.polyfit(np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float)), 1)[0])


def run_groups(module: str, plan, report, *, argv, quick: bool, out: str, env=None, extra=None):
    """The orchestrator of a family bench: each group of ``plan`` (dicts with a
    ``name``) in one :func:`run_worker` with the load measured, then ``report(groups)``
    printed with each group's load, and the results written to ``out`` (JSON and .txt).

    ``extra(spec)`` adds fields to a group's result (default none). Returns 0.
    """
    groups = {}
    t0 = time.perf_counter()
    for spec in plan:
        print(f"[{spec['name']}] ...", flush=True)
        run = run_worker(module, spec, env=env, measure_load=True)
        groups[spec["name"]] = dict(
            run.result,
            others_cores=run.others_cores,
            wall_s=run.wall_s,
            **(extra(spec) if extra else {}),
        )
    text = report(groups)
    loads = ", ".join(
        f"{k}: {v['others_cores']:.2f}"
        for k, v in groups.items()
        if v.get("others_cores") is not None
    )
    text += f"\nother processes' load (cores) during each group: {loads}\n"
    print(text)
    meta = metadata(module, argv, quick=quick, wall_s=time.perf_counter() - t0)
    write_results(out, dict(meta=meta, groups=groups), text, suffix=".txt")
    print(f"wrote {out}")
    return 0
