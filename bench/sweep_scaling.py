r"""The sweep's overhead against one hand-written jitted program, and throughput
against chains and devices.

Run ``python -m bench.sweep_scaling`` (about 6 minutes on a quiet 2-core CPU,
16 with the other core busy) or ``--quick`` (1.5 minutes quiet, 5 busy;
small sizes: numbers for smoke-testing only).
Each part runs in its own subprocess (the parent never imports JAX); the
parent prints the tables and writes ``bench/results/sweep_<backend>.json`` and
``.md`` (``--quick``: ``sweep_<backend>_quick.*``). Nothing is asserted; the
10 % overhead target is printed as PASS/MISS.

1. ``overhead``: a Gaussian grid, estimator (mle, unbiased) x alpha (8
   values; the replace regime ignores alpha, which is traced, so the 16
   points are one compiled program with 16 different key streams), M = 10,
   C chains per point, G generations, on the exact and the sample path,
   float32, run

   * by ``sim.sweep.sweep`` (everything: planning, chunks of lanes, segments
     of generations, on-device block moments, host merge, theory, z columns,
     the xarray dataset);
   * by ``sim.parallel.simulate_points`` with the sweep's own program (the
     engine without the sweep's theory and dataset), with the default plan
     and in one compiled call (one chunk, one segment);
   * by one hand-written program: ``jax.jit`` of a ``lax.scan`` over
     generations of ``vmap`` over all P x C lanes of the same step
     (``gaussian_family(ddof)`` with the lane's ddof, ``sample_stats`` +
     ``fit_stats`` or ``replace_step``), with the same keys, reducing per
     generation either the mean of ``log_var`` per point (``hand, min``) or
     the same record as the sweep (6 fields) to its mean and central moments
     2-4 per point (``hand, full``: the same work as the sweep, but with
     ``jnp.mean`` instead of the engine's fixed-order block sums).

   Times are steady-state (compiled) wall and CPU seconds, the best of
   ``repeats`` rounds in which every variant runs once (interleaved, so that
   load from other processes hits them alike); compile time is the CPU time
   of the first call minus the best steady call's (wall differences move with
   other processes' load). The overhead is sweep / hand-full.
   ``sweep, theory once`` is the sweep with the model's theory memoised per
   point (a fix of ``sim.sweep._dataset``, which calls it once per record
   field), to show what that costs.
2. ``chains``: chain-generations per second of ``sim.runners.run_gaussian``
   (exact path; sample path at M = 10), float32, against C, best of 2
   compiled runs.
3. ``devices``: the same runs and a sweep, in subprocesses with
   ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (CPU). On a CPU
   the N devices share its cores (here 2), so this measures what sharding
   the lanes costs, not a speed-up: the ideal is a flat line.

On a GPU (``jax.default_backend() == "gpu"``) parts 1 and 2 run there with
larger sizes; part 3 always uses forced CPU devices.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from bench import harness

TARGET_OVERHEAD = 0.10
M = 10
GRID = {
    "estimator": ["mle", "unbiased"],
    "alpha": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
}


# --------------------------------------------------------------------------------------
# Workers (subprocesses)
# --------------------------------------------------------------------------------------


def _points(method: str) -> list[dict]:
    from sim import families

    out = []
    for e in GRID["estimator"]:
        for a in GRID["alpha"]:
            p = dict(families.get("gaussian").defaults)
            p.update(sample_size=M, method=method, dtype="float32", estimator=e, alpha=a)
            out.append(p)
    return out


def _hand_program(method: str, num_points: int, c: int, g: int, full: bool):
    """jit(scan over generations of vmap over the P x C lanes), keys as the sweep's."""
    import jax
    import jax.numpy as jnp

    from sim.chain import chain_key, generation_key, replace_transition, stats_transition
    from sim.families.gaussian import gaussian_family, gaussian_record, real_params

    record = gaussian_record(0.0, 1.0, 3.0, 1e-6)
    params0 = real_params(0.0, 1.0, jnp.float32)
    lanes = num_points * c

    def one(key, params, ddof):
        fam = gaussian_family(ddof)
        transition = stats_transition if method == "exact" else replace_transition
        return transition(fam, M, key, params)[0]

    @jax.jit
    def run(point_keys, point_ddof):
        lane_point = jnp.repeat(jnp.arange(num_points), c)
        chain = jnp.tile(jnp.arange(c), num_points)
        keys = jax.vmap(lambda p, i: chain_key(point_keys[p], i))(lane_point, chain)
        ddof = point_ddof[lane_point]
        state = jax.tree.map(lambda x: jnp.broadcast_to(x, (lanes,)), params0)

        def body(state, t):
            gkeys = jax.vmap(generation_key, in_axes=(0, None))(keys, t)
            state = jax.vmap(one)(gkeys, state, ddof)
            if not full:
                return state, state.log_var.reshape(num_points, c).mean(1)
            x = jnp.stack(jax.vmap(record)(state), -1).reshape(num_points, c, -1)
            mean = x.mean(1)
            d = x - mean[:, None]
            d2 = d * d
            return state, jnp.stack([mean, d2.mean(1), (d2 * d).mean(1), (d2 * d2).mean(1)], -1)

        _, out = jax.lax.scan(body, state, jnp.arange(1, g + 1, dtype=jnp.int32))
        return out  # (G, P) or (G, P, F, 4)

    return run


def _task_overhead(task: dict) -> dict:
    import dataclasses
    import functools

    import jax
    import numpy as np

    from sim import families, parallel
    from sim import sweep as sw
    from sim.families.gaussian import ESTIMATOR_DDOF

    method, c, g, repeats = task["method"], task["chains"], task["generations"], task["repeats"]
    points = _points(method)
    p = len(points)
    fixed = dict(sample_size=M, method=method, dtype="float32")
    root = jax.random.key(0, impl="philox4x32")
    keys = jax.numpy.stack([sw.point_key(root, pt, "gaussian") for pt in points])
    ddof = np.asarray([ESTIMATOR_DDOF[pt["estimator"]] for pt in points], np.float32)
    model = families.get("gaussian")

    # the sweep's own program and per-point values, as sim.sweep builds them
    checked = model.check(points[0])
    traced = tuple(sorted(model.traced(checked)))
    static = {k: v for k, v in checked.items() if k not in traced}
    prog = model.program(static, traced, c, g)
    theta = tuple(
        np.asarray([model.traced(pt)[n](pt[n]) for pt in points], np.float32) for n in traced
    )

    @functools.cache
    def theory_once(label, gen_len):
        pt = json.loads(label)
        return model.theory(pt, np.arange(gen_len))

    def cached_theory(point, gen):
        return theory_once(json.dumps(point, sort_keys=True), len(gen))

    model_once = dataclasses.replace(model, theory=cached_theory)
    hand_min = _hand_program(method, p, c, g, full=False)
    hand_full = _hand_program(method, p, c, g, full=True)
    out = {}

    def engine(**kw):
        return lambda: parallel.simulate_points(
            keys,
            prog.step,
            prog.init,
            prog.record,
            num_generations=g,
            num_chains=c,
            point_params=theta,
            chain_elements=prog.chain_elements,
            progress=False,
            keep_final=False,
            **kw,
        )

    def sweep(m):
        def run():
            out["ds"] = sw.sweep(
                m, GRID, num_chains=c, num_generations=g, fixed=fixed, progress=False
            )

        return run

    variants = {
        "hand, min": lambda: jax.block_until_ready(hand_min(keys, ddof)),
        "hand, full": lambda: out.__setitem__("hand", np.asarray(hand_full(keys, ddof))),
        "engine": engine(),
        "engine, 1 call": engine(chunk_chains=p * c, segment_length=g),
        "sweep": sweep(model),
        "sweep, theory once": sweep(model_once),
    }
    first = {name: harness.timed(fn) for name, fn in variants.items()}
    walls = {name: [] for name in variants}
    cpus = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            w, cp = harness.timed(fn)
            walls[name].append(w)
            cpus[name].append(cp)
    ds = out["ds"]
    man = sw.manifest(ds)
    # does the hand program compute what the sweep computes? (same keys and steps)
    hand_mean = out["hand"][:, :, 1, 0].T  # (P, G): field 1 is log_var, statistic 0 the mean
    sweep_mean = ds.log_var.sel(statistic="mean").values.reshape(p, g + 1)[:, 1:]
    rows = []
    for name in variants:
        rows.append(
            dict(
                part="overhead",
                method=method,
                variant=name,
                points=p,
                chains=c,
                generations=g,
                lanes=p * c,
                first_s=first[name][0],
                first_cpu_s=first[name][1],
                wall_s=min(walls[name]),
                cpu_s=min(cpus[name]),
                walls=walls[name],
                cpus=cpus[name],
                # CPU seconds: wall differences move with other processes' load
                compile_s=first[name][1] - min(cpus[name]),
            )
        )
    plan = parallel.plan_run(
        c, g, num_points=p, chain_elements=prog.chain_elements, num_devices=len(jax.devices())
    )
    return dict(
        rows=rows,
        plan=plan._asdict(),
        sweep_groups=man["groups"],
        max_abs_diff_mean_log_var=float(np.max(np.abs(hand_mean - sweep_mean))),
        max_abs_mean_log_var=float(np.max(np.abs(sweep_mean))),
    )


def _run_gaussian(method, c, g, **kw):
    import jax
    import jax.numpy as jnp

    from sim.runners import run_gaussian

    return lambda: run_gaussian(
        jax.random.key(0, impl="philox4x32"),
        sample_size=M,
        estimator="mle",
        method=method,
        num_chains=c,
        num_generations=g,
        dtype=jnp.float32,
        snapshot_fields=(),
        progress=False,
        **kw,
    )


def _best(fn, repeats: int = 2) -> dict:
    first, first_cpu = harness.timed(fn)
    runs = [harness.timed(fn) for _ in range(repeats)]
    cpu = min(r[1] for r in runs)
    return dict(
        first_s=first,
        wall_s=min(r[0] for r in runs),
        cpu_s=cpu,
        compile_s=first_cpu - cpu,
    )


def _task_chains(task: dict) -> dict:
    rows = []
    for method, g in (("exact", task["g_exact"]), ("sample", task["g_sample"])):
        for c in task["chains"]:
            r = _best(_run_gaussian(method, c, g))
            rows.append(dict(part="chains", method=method, chains=c, generations=g, **r))
    return dict(rows=rows)


def _task_devices(task: dict) -> dict:
    import jax

    from sim import sweep as sw

    n = len(jax.devices())
    rows = []
    for method, c, g in (("exact", task["c_exact"], task["g_exact"]), ("sample", *task["sample"])):
        r = _best(_run_gaussian(method, c, g))
        rows.append(
            dict(
                part="devices",
                what=f"run_gaussian {method}",
                devices=n,
                chains=c,
                generations=g,
                chain_gens=c * g,
                **r,
            )
        )
    pc, g = task["sweep"]
    fixed = dict(sample_size=M, method="exact", dtype="float32")
    r = _best(
        lambda: sw.sweep(
            "gaussian", GRID, num_chains=pc, num_generations=g, fixed=fixed, progress=False
        )
    )
    p = len(GRID["estimator"]) * len(GRID["alpha"])
    rows.append(
        dict(
            part="devices",
            what="sweep exact",
            devices=n,
            chains=p * pc,
            generations=g,
            chain_gens=p * pc * g,
            **r,
        )
    )
    return dict(rows=rows)


def _worker(task: dict) -> dict:
    import jax

    out = {"overhead": _task_overhead, "chains": _task_chains, "devices": _task_devices}[
        task["task"]
    ](task)
    out.update(backend=jax.default_backend(), devices=[str(d) for d in jax.devices()])
    return out


# --------------------------------------------------------------------------------------
# The parent
# --------------------------------------------------------------------------------------


def _run(task: dict, env_extra: dict, wait_quiet: float) -> dict:
    if wait_quiet > 0:
        harness.wait_quiet(wait_quiet)
    env = harness.worker_env(env_extra)
    try:
        run = harness.run_worker("bench.sweep_scaling", task, env=env, measure_load=True)
    except harness.WorkerError as e:
        raise RuntimeError(f"{e} for {task}") from None
    out = run.result
    out.update(process_s=run.wall_s, others_cores=run.others_cores)
    for r in out["rows"]:
        r["others_cores"] = out["others_cores"]
    return out


def _plan(quick: bool, backend: str) -> dict:
    gpu = backend == "gpu"
    if quick:
        return dict(
            overhead=[("exact", 1024, 50, 2), ("sample", 1024, 20, 2)],
            chains=dict(chains=[1_000, 10_000, 100_000], g_exact=10, g_sample=5),
            devices=dict(
                ns=[1, 2, 4, 8], c_exact=1 << 15, g_exact=10, sample=(1 << 14, 5), sweep=(1024, 10)
            ),
        )
    if gpu:
        return dict(
            overhead=[("exact", 1 << 16, 500, 3), ("sample", 1 << 16, 200, 3)],
            chains=dict(
                chains=[1_000, 10_000, 100_000, 1_000_000, 10_000_000], g_exact=100, g_sample=50
            ),
            devices=dict(
                ns=[1, 2, 4, 8], c_exact=1 << 17, g_exact=20, sample=(1 << 16, 10), sweep=(8192, 20)
            ),
        )
    return dict(
        overhead=[("exact", 1 << 14, 200, 3), ("sample", 1 << 13, 100, 3)],
        chains=dict(chains=[1_000, 10_000, 100_000, 1_000_000], g_exact=20, g_sample=10),
        devices=dict(
            ns=[1, 2, 4, 8], c_exact=1 << 17, g_exact=20, sample=(1 << 16, 10), sweep=(8192, 20)
        ),
    )


def _fmt_rate(x: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= scale:
            return f"{x / scale:.1f}{suffix}"
    return f"{x:.0f}"


def _pf(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(results: dict) -> str:
    out = []
    for ov in results.get("overhead", []):
        rows = {r["variant"]: r for r in ov["rows"]}
        r0 = ov["rows"][0]
        hand = rows["hand, full"]
        plan = ov["plan"]
        out.append(
            f"### Sweep overhead, {r0['method']} path (M={M}): {r0['points']} points x "
            f"{r0['chains']:,} chains = {r0['lanes']:,} lanes, G={r0['generations']}; "
            f"engine plan: {plan['num_chunks']} chunk(s) of {plan['chunk']:,} lanes x "
            f"{plan['num_segments']} segment(s) of {plan['segment_length']}; other load "
            f"{ov['others_cores']:.2f} cores\n"
        )
        out.append(
            "| variant | steady wall s | / hand, full | steady CPU s | / hand, full | "
            "ns per chain-gen | compile, CPU s |\n|---|---|---|---|---|---|---|"
        )
        cg = r0["lanes"] * r0["generations"]
        for name, r in rows.items():
            out.append(
                f"| {name} | {r['wall_s']:.3f} | {r['wall_s'] / hand['wall_s']:.3f} | "
                f"{r['cpu_s']:.2f} | {r['cpu_s'] / hand['cpu_s']:.3f} | "
                f"{1e9 * r['wall_s'] / cg:.0f} | {r['compile_s']:.1f} |"
            )
        ratio = rows["sweep"]["wall_s"] / hand["wall_s"]
        out.append(
            f"\nOverhead sweep / hand, full: {100 * (ratio - 1):+.1f} % wall, "
            f"{100 * (rows['sweep']['cpu_s'] / hand['cpu_s'] - 1):+.1f} % CPU "
            f"(target < {100 * TARGET_OVERHEAD:.0f} %: "
            f"**{_pf(ratio - 1 < TARGET_OVERHEAD)}**). Largest |hand - sweep| of the "
            f"per-point mean log_var: {ov['max_abs_diff_mean_log_var']:.1e} "
            f"(values up to {ov['max_abs_mean_log_var']:.1f}).\n"
        )
    ch = results.get("chains")
    if ch:
        out.append(
            f"### Throughput against chains (run_gaussian, float32, {ch['backend']}; other "
            f"load {ch['others_cores']:.2f} cores)\n"
        )
        out.append(
            "| chains | exact: chain-gen/s | ns/chain-gen (CPU ns) | sample M=10: chain-gen/s | "
            "ns/chain-gen (CPU ns) |\n|---|---|---|---|---|"
        )
        by = {}
        for r in ch["rows"]:
            by.setdefault(r["chains"], {})[r["method"]] = r
        for c, d in by.items():
            cells = []
            for m in ("exact", "sample"):
                r = d[m]
                cg = c * r["generations"]
                cells += [
                    _fmt_rate(cg / r["wall_s"]),
                    f"{1e9 * r['wall_s'] / cg:.0f} ({1e9 * r['cpu_s'] / cg:.0f})",
                ]
            out.append(f"| {c:,} | " + " | ".join(cells) + " |")
        g = {r["method"]: r["generations"] for r in ch["rows"]}
        out.append(f"\nG = {g['exact']} (exact), {g['sample']} (sample).\n")
    dv = results.get("devices")
    if dv:
        out.append(
            "### Throughput against devices (forced CPU devices on "
            f"{os.cpu_count()} cores): chain-gen/s of wall time (relative to 1 device) and "
            "CPU ns per chain-gen (all threads)\n"
        )
        whats = list(dict.fromkeys(r["what"] for d in dv for r in d["rows"]))
        first = {r["what"]: r for r in dv[0]["rows"]}
        head = "| devices | " + " | ".join(
            f"{w} ({first[w]['chains']:,} lanes, G={first[w]['generations']})" for w in whats
        )
        out.append(head + " | other load |\n|" + "---|" * (len(whats) + 2))
        base = {r["what"]: r["chain_gens"] / r["wall_s"] for r in dv[0]["rows"]}
        for d in dv:
            cells = []
            for r in d["rows"]:
                rate = r["chain_gens"] / r["wall_s"]
                cells.append(
                    f"{_fmt_rate(rate)} ({rate / base[r['what']]:.2f}x), "
                    f"CPU {1e9 * r['cpu_s'] / r['chain_gens']:.0f} ns"
                )
            out.append(
                f"| {len(d['devices'])} | " + " | ".join(cells) + f" | {d['others_cores']:.2f} |"
            )
        out.append("")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, a smoke run (~1.5 min)")
    ap.add_argument("--out", default=None, help="output stem (default bench/results/sweep_...)")
    ap.add_argument("--only", default="", help="comma-separated parts: overhead,chains,devices")
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="before each part, wait up to S seconds for other processes to go idle",
    )
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        harness.emit(_worker(json.loads(args.worker)))
        return 0
    parts = set(args.only.split(",")) if args.only else {"overhead", "chains", "devices"}
    env = harness.environment()
    backend = env.get("backend", "cpu")
    plan = _plan(args.quick, backend)
    t0 = time.perf_counter()
    results: dict = {}
    if "overhead" in parts:
        results["overhead"] = []
        for method, c, g, repeats in plan["overhead"]:
            print(f"overhead {method} C={c} G={g} ...", end="", flush=True)
            task = dict(task="overhead", method=method, chains=c, generations=g, repeats=repeats)
            r = _run(task, {}, args.wait_quiet)
            results["overhead"].append(r)
            print(f" {r['process_s']:.0f} s", flush=True)
    if "chains" in parts:
        print("chains ...", end="", flush=True)
        results["chains"] = _run(dict(task="chains", **plan["chains"]), {}, args.wait_quiet)
        print(f" {results['chains']['process_s']:.0f} s", flush=True)
    if "devices" in parts:
        results["devices"] = []
        task = dict(task="devices", **{k: v for k, v in plan["devices"].items() if k != "ns"})
        for n in plan["devices"]["ns"]:
            print(f"devices {n} ...", end="", flush=True)
            env = dict(
                JAX_PLATFORMS="cpu",
                XLA_FLAGS=(
                    os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={n}"
                ).strip(),
            )
            r = _run(task, env, args.wait_quiet)
            results["devices"].append(r)
            print(f" {r['process_s']:.0f} s", flush=True)
    meta = harness.metadata(
        "bench.sweep_scaling",
        argv,
        quick=args.quick,
        backend=backend,
        total_s=time.perf_counter() - t0,
        plan=plan,
        env=env,
    )
    text = (
        f"Sweep overhead and scaling ({meta['date']}, {meta['cpus']} x {meta['cpu_model']}, "
        f"backend {backend}{', QUICK' if args.quick else ''}; {meta['total_s']:.0f} s)\n\n"
        + report(results)
    )
    print("\n" + text)
    stem = args.out or os.path.join(
        os.path.dirname(os.path.abspath(__file__)),
        "results",
        f"sweep_{backend}" + ("_quick" if args.quick else ""),
    )
    harness.write_results(stem + ".json", dict(meta=meta, results=results), text)
    print(f"wrote {stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
