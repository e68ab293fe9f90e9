"""Whole processes, as a user runs them: the experiments from an empty compile cache.

Run ``python -m bench.startup`` (about 15 minutes on a 2-core CPU; ``--quick`` times
only the first two groups at small sizes). It prints tables and writes
``bench/results/startup_cpu.{json,txt}``. Nothing is asserted. Issue 15's targets are
printed as PASS/MISS beside the numbers.

Groups, each command a fresh process timed wall-clock by the parent:

1. ``whole``: ``python -m experiments.gaussian_chain --method=sample`` at issue 15's
   sizes (float32, MLE: C = 10,000, G = 200, M = 1,000 and C = 100,000, G = 200,
   M = 100), from an empty compile cache and again warm (the same cache), against
   the paper code's chain as one process: vectorised single-thread NumPy
   (``default_rng``, ``standard_normal((C, M), float32)``, mean and std per
   generation). Target: JAX >= 2x NumPy, whole process.
2. ``defaults``: every experiment's default run (``python -m experiments.<name>``),
   from an empty cache; ``gaussian_chain`` also warm, ``remedies`` with ``--check``.
   Targets: ``gaussian_chain`` <= 45 s cold and <= 20 s warm, ``remedies --check``
   <= 150 s, every other experiment <= 45 s.

Each run has one BLAS thread for the NumPy baseline (the issue's "single-thread") and
JAX's defaults for JAX. "Other load" is the cores that other processes used meanwhile.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

from bench import harness

RESULTS = os.path.join(harness.ROOT, "bench", "results", "startup_cpu.json")

WHOLE_TARGET = 2.0  # JAX whole process / NumPy whole process
DEFAULT_TARGET_S = 45.0
GAUSSIAN_WARM_TARGET_S = 20.0
REMEDIES_TARGET_S = 150.0

EXPERIMENTS = (
    "gaussian_chain",
    "categorical_chain",
    "regression_chain",
    "poisson_chain",
    "remedies",
    "multivariate_chain",
    "gmm_chain",
    "kde_chain",
    "bayes_chain",
    "neural_chain",
)

NUMPY_CHAIN = """
import sys, numpy as np
c, g, m = map(int, sys.argv[1:4])
rng = np.random.default_rng(0)
mu = np.zeros(c, np.float32); sd = np.ones(c, np.float32)
for _ in range(g):
    x = mu[:, None] + sd[:, None] * rng.standard_normal((c, m), dtype=np.float32)
    mu, sd = x.mean(axis=1), x.std(axis=1)
print(float(np.mean(sd ** 2)))
"""


def _timed(cmd, env) -> tuple[float, float]:
    """(wall s, other processes' cores) of ``cmd`` from the repository root."""
    b0, t0 = harness.cpu_busy_jiffies()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=harness.ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - w0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    b1, t1 = harness.cpu_busy_jiffies()
    if proc.returncode:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise harness.WorkerError(f"{' '.join(cmd)} exited {proc.returncode}")
    own = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    total = (b1 - b0) / max(t1 - t0, 1) * (os.cpu_count() or 1) * wall
    return wall, max(total - own, 0.0) / wall


def _experiment(name, cache, out, *flags):
    env = harness.worker_env({"MODEL_COLLAPSE_CACHE": cache})
    cmd = [sys.executable, "-m", f"experiments.{name}", f"--output_dir={out}", "--noprogress"]
    return _timed([*cmd, *flags], env)


def _pf(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def whole(quick: bool, tmp: str) -> tuple[list, list]:
    sizes = [(1_000, 20, 100)] if quick else [(10_000, 200, 1_000), (100_000, 200, 100)]
    rows, lines = [], []
    for c, g, m in sizes:
        cache = tempfile.mkdtemp(dir=tmp)
        flags = (
            "--method=sample",
            "--estimators=mle",
            f"--num_chains={c}",
            f"--generations={g}",
            f"--sample_sizes={m}",
        )
        out = os.path.join(tmp, f"whole_{c}_{m}")
        cold, load_c = _experiment("gaussian_chain", cache, out + "_cold", *flags)
        warm, load_w = _experiment("gaussian_chain", cache, out + "_warm", *flags)
        env = harness.worker_env(one_thread=True)
        numpy_s, load_n = _timed([sys.executable, "-c", NUMPY_CHAIN, str(c), str(g), str(m)], env)
        row = dict(
            C=c,
            G=g,
            M=m,
            jax_cold_s=cold,
            jax_warm_s=warm,
            numpy_s=numpy_s,
            ratio_cold=numpy_s / cold,
            ratio_warm=numpy_s / warm,
            others_cores=max(load_c, load_w, load_n),
        )
        rows.append(row)
        lines.append(
            f"| {c:,} | {g} | {m:,} | {cold:.1f} | {warm:.1f} | {numpy_s:.1f} | "
            f"{row['ratio_cold']:.2f}x {_pf(row['ratio_cold'] >= WHOLE_TARGET)} | "
            f"{row['ratio_warm']:.2f}x {_pf(row['ratio_warm'] >= WHOLE_TARGET)} | "
            f"{row['others_cores']:.2f} |"
        )
    head = [
        f"Whole process, gaussian_chain --method=sample (f32, MLE) against NumPy "
        f"(target >= {WHOLE_TARGET:g}x)",
        "",
        "| C | G | M | JAX cold s | JAX warm s | NumPy s | NumPy/JAX cold | NumPy/JAX warm "
        "| other load |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    return rows, head + lines


def defaults(quick: bool, tmp: str) -> tuple[list, list]:
    names = EXPERIMENTS[:2] if quick else EXPERIMENTS
    rows, lines = [], []
    for name in names:
        flags = ("--check",) if name == "remedies" else ()
        cache = tempfile.mkdtemp(dir=tmp)
        cold, load = _experiment(name, cache, os.path.join(tmp, name), *flags)
        target = REMEDIES_TARGET_S if name == "remedies" else DEFAULT_TARGET_S
        row = dict(name=name, flags=list(flags), cold_s=cold, target_s=target, others_cores=load)
        warm_txt = "-"
        if name == "gaussian_chain":
            warm, load_w = _experiment(name, cache, os.path.join(tmp, name + "_warm"))
            row.update(warm_s=warm, warm_target_s=GAUSSIAN_WARM_TARGET_S)
            row["others_cores"] = max(load, load_w)
            warm_txt = f"{warm:.1f} {_pf(warm <= GAUSSIAN_WARM_TARGET_S)}"
        rows.append(row)
        lines.append(
            f"| {name} {' '.join(flags)} | {cold:.1f} {_pf(cold <= target)} | {target:g} | "
            f"{warm_txt} | {row['others_cores']:.2f} |"
        )
    head = [
        "Default runs from an empty compile cache",
        "",
        "| experiment | cold s | target s | warm s | other load |",
        "|---|---|---|---|---|",
    ]
    return rows, head + lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, two experiments")
    ap.add_argument("--groups", default="whole,defaults", help="comma-separated groups")
    ap.add_argument("--out", default=None, help="results JSON (default bench/results/...)")
    args = ap.parse_args(argv)
    out = args.out or (RESULTS.replace(".json", "_quick.json") if args.quick else RESULTS)
    t0 = time.perf_counter()
    payload, text = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for group in args.groups.split(","):
            print(f"[{group}] ...", flush=True)
            rows, lines = {"whole": whole, "defaults": defaults}[group](args.quick, tmp)
            payload[group] = rows
            text += [*lines, ""]
            print("\n".join(lines), flush=True)
    payload["meta"] = harness.metadata(
        "bench.startup", argv, quick=args.quick, wall_s=time.perf_counter() - t0
    )
    for p in harness.write_results(out, payload, "\n".join(text), suffix=".txt"):
        print("wrote", os.path.relpath(p, harness.ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
