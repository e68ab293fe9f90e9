r"""Peak host memory against chains and generations, against the memory model.

Run ``python -m bench.memory`` (about 18 minutes on a busy 2-core CPU) or
``--quick`` (2.5 minutes quiet, 4-5 busy: 1,024 chains instead of 10,000 for
the generation series, no 100,000-generation sweep; the same million
chains). Each case runs in a fresh
subprocess (the parent never imports JAX) and reports its peak resident set
(``VmHWM`` of ``/proc/self/status``, which a new process starts afresh;
``ru_maxrss`` is in the JSON too), its resident set after the imports and one
tiny jitted call (the *baseline*), and its wall time. The parent prints a
table and writes ``bench/results/memory_<backend>.json`` and ``.md``
(``--quick``: ``memory_<backend>_quick.*``; ``--out STEM`` elsewhere).
Nothing is asserted.

The model (README, "Memory model"), float32 (b = 4 bytes), F record fields,
``nb`` = ceil(C / block) reduction blocks per point (block = min(1024, C
rounded up to a power of two) unless ``block_size`` is given), P points, S
snapshot generations of ``Fs`` fields, ``chunk`` lanes per compiled call:

* device working set, per chunk (on a CPU it is host memory too):
  ``chunk x (LANE_BYTES + SAMPLE_ARRAYS x M x b)`` (the second term on the
  sample path only; chunks are sized so that chunk x M <= 2^24), plus the
  segment's block moments and the chunk's snapshot buffer;
* host: block moments, ``P nb G F 4 b`` (``COPIES["blocks"]`` copies at the
  peak: kept in the record dtype, concatenated, merged in float64); the
  per-point float64 moments ``P (G+1) F 4 x 8`` (twice); snapshots
  ``P S C Fs b`` and final params ``C x 2 b`` (unless ``keep_final=False``),
  with their copies; a sweep adds its dataset, ``P (G+1) 4 x 8`` bytes per
  variable (record fields, theory and z columns);
* checkpoint files hold the blocks, snapshots and final params of each chunk.

``predicted`` is the baseline plus a fixed allowance per kind and method (the
compiled program, XLA's runtime, allocator slack), calibrated on the smallest
case of that kind and method in the same run, plus the data terms above.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

from bench import harness

MIB = 1 << 20

# Copies alive at the peak (read from sim/parallel.py and sim/sweep.py, checked against
# the measurements): block moments: 3 float32 copies of every point's blocks (the fetched
# segments, their concatenation per chunk, the concatenation over chunks) and, one point
# at a time, a boolean-indexed copy, its float64 copy (2x) and the merge's temporaries
# (about 1x): 3 + 4/P in all; snapshots: the chunk buffers, their concatenation and the
# per-point reshaped copy; finals: the chunk states and their concatenation.
COPIES = dict(blocks_all=3.0, blocks_per_point=4.0, snapshots=3.0, finals=2.0)
# Sample path: (chunk, M) arrays alive at once in the compiled step (the bench README's
# HLO reading: the normals, their sqrt/log parts and the fit's intermediates).
SAMPLE_ARRAYS = 4
# Per-lane bytes of the step, record and block-moment temporaries (exact path).
LANE_BYTES = 600


# --------------------------------------------------------------------------------------
# The worker (one case, in its own process)
# --------------------------------------------------------------------------------------


def _sweep_points(p: int) -> tuple[dict, int]:
    est = ["mle", "unbiased"]
    alphas = [round(0.1 * i, 1) for i in range(max(1, p // 2))]
    grid = {"estimator": est[: min(2, p)], "alpha": alphas}
    return grid, len(grid["estimator"]) * len(alphas)


def _worker(case: dict) -> dict:
    import jax
    import jax.numpy as jnp

    from sim import parallel
    from sim.runners import run_gaussian
    from sim.sweep import sweep

    if case["kind"] == "sweep":  # what a sweep imports lazily belongs to the baseline
        import xarray  # noqa: F401

        import theory.gaussian  # noqa: F401
    jax.jit(lambda x: x + 1)(jnp.zeros(4)).block_until_ready()
    base_kib = harness.status_kib("VmRSS")
    c, g, m, method = case["chains"], case["generations"], case["M"], case["method"]
    ns = case["snapshots"]
    snaps = list(range(1, g + 1, max(1, g // ns)))[:ns] if ns else []
    ckpt_dir = tempfile.mkdtemp(prefix="memckpt-") if case.get("checkpoint") else None
    t = time.perf_counter()
    if case["kind"] == "run":
        kw = {}
        if ckpt_dir:
            from sim.checkpoint import Checkpointer

            kw["checkpoint"] = Checkpointer(ckpt_dir, dict(case=case), every_s=1e9)
        res = run_gaussian(
            jax.random.key(0, impl="philox4x32"),
            sample_size=m,
            estimator="mle",
            method=method,
            num_chains=c,
            num_generations=g,
            dtype=jnp.float32,
            snapshot_generations=snaps,
            snapshot_fields=("log_var", "mean") if snaps else (),
            keep_final=case["keep_final"],
            segment_length=case.get("segment_length"),
            block_size=case.get("block_size"),
            progress=False,
            **kw,
        )
        points, fields, fields_theory = 1, len(res.moments), 0
        engine = res.timings
        check = float(res.moments["log_var"].mean[-1])
    else:
        grid, points = _sweep_points(case["points"])
        ds = sweep(
            "gaussian",
            grid,
            num_chains=c,
            num_generations=g,
            fixed=dict(sample_size=m, method=method, dtype="float32"),
            snapshot_generations=snaps,
            segment_length=case.get("segment_length"),
            progress=False,
            checkpoint_dir=ckpt_dir,
        )
        fields = sum(1 for v in ds.data_vars if not v.startswith(("theory_", "z_", "snapshot_")))
        fields_theory = sum(1 for v in ds.data_vars if v.startswith("theory_"))
        engine = json.loads(ds.attrs["manifest"])["groups"][0]
        check = float(ds.log_var.sel(statistic="mean").isel(generation=-1).mean())
    wall = time.perf_counter() - t
    ckpt_bytes = 0
    if ckpt_dir:
        for root, _, files in os.walk(ckpt_dir):
            ckpt_bytes += sum(os.path.getsize(os.path.join(root, f)) for f in files)
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    plan = parallel.plan_run(
        c,
        g,
        num_points=points,
        chain_elements=m if method == "sample" else 1,
        block_size=case.get("block_size"),
        segment_length=case.get("segment_length"),
        num_devices=len(jax.devices()),
    )
    return dict(
        case,
        backend=jax.default_backend(),
        points=points,
        fields=fields,
        fields_theory=fields_theory,
        snapshot_count=len(snaps),
        plan=plan._asdict(),
        baseline_mib=base_kib / 1024,
        peak_mib=harness.status_kib("VmHWM") / 1024,
        ru_maxrss_mib=harness.peak_rss_mib(),
        wall_s=wall,
        engine_run_s=engine.get("run_s"),
        checkpoint_bytes=ckpt_bytes,
        check_log_var_mean=check,
    )


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------


def terms(r: dict) -> dict:
    """The model's data terms for one measured case, in MiB (copies included)."""
    b = 4
    plan = r["plan"]
    p, c, g, f = r["points"], r["chains"], r["generations"], r["fields"]
    nb = plan["chains_per_point"] // plan["block"]
    chunk, seg = plan["chunk"], plan["segment_length"]
    s, fs = r["snapshot_count"], 2 if r["snapshot_count"] else 0
    device = chunk * (LANE_BYTES + (SAMPLE_ARRAYS * r["M"] * b if r["method"] == "sample" else 0))
    device += 2 * seg * (chunk // plan["block"]) * f * 4 * b + 2 * (s + 1) * fs * chunk * b
    blocks = p * nb * g * f * 4 * b
    snapshots = p * s * c * fs * b
    finals = c * 2 * b if r["keep_final"] and r["kind"] == "run" else 0
    # mean, m2, m3, m4 of every field per generation and point, float64
    moments = p * (g + 1) * f * 4 * 8
    # Two phases that do not overlap: the merge (blocks and their copies, the moments
    # built twice) and, for a sweep, the dataset (moments kept per point, and one
    # (P, G+1, 4) float64 array per record field, theory column and z column).
    merge = (COPIES["blocks_all"] + COPIES["blocks_per_point"] / p) * blocks + 2 * moments
    dataset = 0
    if r["kind"] == "sweep":
        dataset = moments + p * (g + 1) * 4 * 8 * (f + 2 * r["fields_theory"])
    out = dict(
        device=device,
        merge=merge,
        dataset_over_merge=max(0, dataset - merge),
        snapshots=COPIES["snapshots"] * snapshots,
        finals=COPIES["finals"] * finals,
    )
    return {k: v / MIB for k, v in out.items()}


def checkpoint_mib(r: dict) -> float:
    """Bytes the checkpoint files should hold: blocks, snapshots, finals (MiB)."""
    plan = r["plan"]
    nb = plan["chains_per_point"] // plan["block"]
    p, c, g = r["points"], r["chains"], r["generations"]
    blocks = p * nb * g * r["fields"] * 4 * 4
    snaps = p * r["snapshot_count"] * c * 2 * 4
    return (blocks + snaps + p * plan["chains_per_point"] * 2 * 4) / MIB


def calibrate(rows: list[dict]) -> dict:
    """Fixed MiB (compiled program, XLA runtime, allocator) per (kind, method).

    Taken from the smallest case of each kind and method (fewest chain-generations):
    its peak minus its baseline minus its data terms. That case is then predicted
    exactly; every other case is a prediction.
    """
    fixed = {}
    for r in sorted(
        (r for r in rows if "error" not in r), key=lambda r: r["chains"] * r["generations"]
    ):
        key = f"{r['kind']}/{r['method']}"
        if key not in fixed:
            fixed[key] = r["peak_mib"] - r["baseline_mib"] - sum(terms(r).values())
            r["calibration"] = True
    return fixed


def predict(r: dict, fixed: dict) -> dict:
    t = terms(r)
    f = fixed[f"{r['kind']}/{r['method']}"]
    return dict(
        terms_mib=t,
        fixed_mib=f,
        predicted_mib=r["baseline_mib"] + f + sum(t.values()),
        checkpoint_predicted_mib=checkpoint_mib(r) if r["checkpoint"] else 0.0,
    )


# --------------------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------------------


def _case(kind, method, chains, generations, m=10, **kw) -> dict:
    return dict(
        dict(
            kind=kind,
            method=method,
            chains=chains,
            generations=generations,
            M=m,
            keep_final=True,
            snapshots=0,
            points=1,
            segment_length=None,
            block_size=None,
            checkpoint=False,
            series="",
        ),
        **kw,
    )


def cases(quick: bool) -> list[dict]:
    """The measured cases (``--quick``: about 2.5 minutes on 2 quiet cores)."""
    gens = (1_000, 10_000, 100_000)
    g_chains = 1024 if quick else 10_000
    out = []
    for c in (10_000, 100_000, 1_000_000):
        out.append(_case("run", "exact", c, 20, series="chains"))
    for c in (10_000, 100_000, 1_000_000):
        out.append(_case("run", "sample", c, 5, series="chains"))
    for c in (10_000, 100_000):
        out.append(_case("run", "sample", c, 2, m=1000, series="chains_m1000"))
    out += [
        _case("run", "exact", 1_000_000, 20, keep_final=False, series="options"),
        _case("run", "exact", 1_000_000, 20, snapshots=10, series="options"),
        _case("run", "exact", 1_000_000, 20, checkpoint=True, series="options"),
    ]
    for g in gens:
        out.append(_case("run", "exact", g_chains, g, series="generations"))
    if not quick:
        out.append(_case("run", "exact", 1024, 100_000, segment_length=1000, series="options"))
    # small reduction blocks: the block-moment term of 64 x 1024 chains at the cost of 1024
    for g in (10_000, 30_000) if quick else (10_000, 100_000):
        out.append(_case("run", "exact", 1024, g, block_size=16, series="blocks"))
    for c in (1024, 10_000, 100_000) if quick else (1024, 10_000, 100_000, 250_000):
        out.append(_case("sweep", "exact", c, 10, points=4, series="sweep_chains"))
    for g in gens[:2]:
        out.append(_case("sweep", "exact", 1024, g, points=4, series="sweep_generations"))
    if not quick:
        out.append(_case("sweep", "exact", 1024, 100_000, points=16, series="sweep_generations"))
    return out


# --------------------------------------------------------------------------------------
# The parent
# --------------------------------------------------------------------------------------


def _run_case(case: dict) -> dict:
    try:
        run = harness.run_worker("bench.memory", case, tail=3000)
    except harness.WorkerError as e:
        return dict(case, error=str(e))
    return dict(run.result, process_s=run.wall_s)


def _label(r: dict) -> str:
    what = "sweep" if r["kind"] == "sweep" else "run_gaussian"
    s = f"{what} {r['method']}"
    if r["method"] == "sample":
        s += f" M={r['M']}"
    if r["kind"] == "sweep":
        s += f", {r['points']} points"
    extra = []
    if not r["keep_final"]:
        extra.append("keep_final=False")
    if r["snapshots"]:
        extra.append(f"{r['snapshots']} snapshots x 2 fields")
    if r["checkpoint"]:
        extra.append("checkpoint")
    if r["segment_length"]:
        extra.append(f"segment_length={r['segment_length']}")
    if r["block_size"]:
        extra.append(f"block_size={r['block_size']}")
    return s + (" (" + ", ".join(extra) + ")" if extra else "")


def table(rows: list[dict]) -> str:
    head = (
        "| case | chains | generations | chunk | wall s | baseline MiB | peak MiB | "
        "predicted MiB | largest terms (MiB) |\n|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        if "error" in r:
            lines.append(f"| {_label(r)} | {r['chains']:,} | {r['generations']:,} | failed |")
            continue
        m = r["model"]
        big = sorted(((v, k) for k, v in m["terms_mib"].items() if v >= 1), reverse=True)[:3]
        t = ", ".join(f"{k} {v:.0f}" for v, k in big) or "-"
        if r["checkpoint"]:
            t += (
                f"; files {r['checkpoint_bytes'] / MIB:.0f} "
                f"(predicted {m['checkpoint_predicted_mib']:.0f})"
            )
        pred = f"{m['predicted_mib']:.0f}"
        if r.get("calibration"):
            pred += f" (fixed {m['fixed_mib']:.0f}: calibration)"
        lines.append(
            f"| {_label(r)} | {r['chains']:,} | {r['generations']:,} | {r['plan']['chunk']:,} | "
            f"{r['wall_s']:.1f} | {r['baseline_mib']:.0f} | **{r['peak_mib']:.0f}** | "
            f"{pred} | {t} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer chain-generations (~2.5 min)")
    ap.add_argument("--out", default=None, help="output stem (default bench/results/memory_...)")
    ap.add_argument("--only", default="", help="comma-separated series to run (debugging)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        harness.emit(_worker(json.loads(args.worker)))
        return 0
    todo = cases(args.quick)
    if args.only:
        keep = set(args.only.split(","))
        todo = [c for c in todo if c["series"] in keep]
    t0 = time.perf_counter()
    rows = []
    for i, case in enumerate(todo):
        print(
            f"[{i + 1}/{len(todo)}] {_label(case)} C={case['chains']:,} "
            f"G={case['generations']:,} ...",
            end="",
            flush=True,
        )
        r = _run_case(case)
        rows.append(r)
        if "error" in r:
            print(" FAILED", flush=True)
        else:
            print(f" peak {r['peak_mib']:.0f} MiB, {r['wall_s']:.1f} s", flush=True)
    fixed = calibrate(rows)
    for r in rows:
        if "error" not in r:
            r["model"] = predict(r, fixed)
    backend = next((r["backend"] for r in rows if "backend" in r), "cpu")
    meta = harness.metadata(
        "bench.memory",
        argv,
        quick=args.quick,
        total_s=time.perf_counter() - t0,
        model=dict(
            copies=COPIES, sample_arrays=SAMPLE_ARRAYS, lane_bytes=LANE_BYTES, fixed_mib=fixed
        ),
    )
    text = table(rows)
    print("\n" + text)
    print(f"\ntotal {meta['total_s']:.0f} s")
    stem = args.out or os.path.join(
        os.path.dirname(os.path.abspath(__file__)),
        "results",
        f"memory_{backend}" + ("_quick" if args.quick else ""),
    )
    header = f"Peak host RSS ({meta['date']}, {meta['cpus']} CPUs, {backend})\n\n"
    harness.write_results(stem + ".json", dict(meta=meta, rows=rows), header + text + "\n")
    print(f"wrote {stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
