r"""Throughput of the KDE chain, against scipy.stats.gaussian_kde chain by chain.

Run ``python -m bench.kde_throughput`` (a few minutes on a 2-core CPU) or
``--quick`` (a smoke run, tiny sizes, meaningless numbers). It prints a table
and writes JSON and text to ``bench/results/`` (``--out``). Nothing is asserted.

What it measures, in one run (float32 JAX, in a worker subprocess):

1. ``chain``: :func:`sim.run.run` of family ``kde`` (pick a stored point, add
   kernel noise, refit the bandwidth, records with ``heldout_size=1``, on-device
   reductions), the time of a compiled run. Unit: microseconds per
   chain-generation.
2. ``scipy``: what the public code does: for each chain, ``gaussian_kde(x,
   bw_method=...)`` then ``x = kde.resample(M)``, generation after generation
   (float64, one chain at a time), timed on a subset of the chains and scaled per
   chain-generation. ``numpy``: the same chain vectorised over chains in NumPy
   (one ``integers`` and one ``normal`` call per generation, the bandwidth from
   ``std(ddof=1)``), a stronger baseline than the public code. ``ratio`` =
   baseline time / JAX time per chain-generation (> 1: JAX is faster).
3. ``scaling``: JAX time against C and M (log-log slopes), and the accumulate
   regime against G: its state holds M G points per chain (bytes measured from
   the program's initial state), so its cost per generation grows with G.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from bench import harness

RULE = "scott"
FIXED_H = 0.3


def jax_chain(c, g, m, rule, regime="replace", repeats=2) -> dict:
    import jax
    import jax.numpy as jnp

    from sim import families
    from sim.run import run

    settings = dict(
        sample_size=m,
        rule=rule,
        bandwidth=FIXED_H,
        regime=regime,
        heldout_size=1,
        dtype=jnp.float32,
    )

    def call():
        run(
            "kde",
            jax.random.key(0, impl="philox4x32"),
            num_chains=c,
            num_generations=g,
            progress=False,
            **settings,
        )

    t0 = time.perf_counter()
    call()
    first = time.perf_counter() - t0
    best = harness.best_time(call, repeats, warmup=False)
    spec = families.get("kde")
    prog = spec.program(spec.settings(**settings), (), c, g)
    state = int(sum(np.asarray(x).nbytes for x in jax.tree.leaves(prog.init)))
    return dict(jax_s=best, first_call_s=first, state_bytes=state)


def scipy_chain(c, g, m, rule) -> float:
    from scipy.stats import gaussian_kde

    rng = np.random.default_rng(0)
    t = time.perf_counter()
    for _ in range(c):
        x = rng.normal(size=m)
        for _ in range(g):
            bw = rule if rule != "fixed" else FIXED_H / np.std(x, ddof=1)
            x = gaussian_kde(x, bw_method=bw).resample(m, seed=rng)[0]
    return time.perf_counter() - t


def numpy_chain(c, g, m, rule) -> float:
    rng = np.random.default_rng(0)
    factor = {"scott": 1.0, "silverman": (4 / 3) ** 0.2}.get(rule)
    rows = np.arange(c)[:, None]
    t = time.perf_counter()
    x = rng.normal(size=(c, m))
    for _ in range(g):
        h = FIXED_H if factor is None else factor * x.std(axis=1, ddof=1, keepdims=True) * m**-0.2
        x = x[rows, rng.integers(m, size=(c, m))] + h * rng.normal(size=(c, m))
        x.var(axis=1)  # the variance record
    return time.perf_counter() - t


def _worker(spec: dict) -> dict:
    out = []
    for row in spec["configs"]:
        c, g, m = row["C"], row["G"], row["M"]
        regime = row.get("regime", "replace")
        r = dict(row, rule=spec.get("rule", RULE), regime=regime)
        r.update(jax_chain(c, g, m, r["rule"], regime))
        if spec.get("baselines"):
            sub = row.get("scipy_chains", min(c, 100))
            r["scipy_chains"] = sub
            r["scipy_s"] = scipy_chain(sub, g, m, r["rule"])
            r["numpy_s"] = min(numpy_chain(c, g, m, r["rule"]) for _ in range(2))
        out.append(r)
    return dict(rows=out)


def _plan(quick: bool) -> list[dict]:
    if quick:
        return [
            dict(name="chain", baselines=True, configs=[dict(C=64, G=3, M=20, scipy_chains=4)]),
            dict(name="scaling_C", configs=[dict(C=c, G=3, M=20) for c in (32, 64)]),
            dict(
                name="accumulate_G",
                rule="fixed",
                configs=[dict(C=32, G=g, M=10, regime="accumulate") for g in (2, 4)],
            ),
        ]
    return [
        dict(
            name="chain",
            baselines=True,
            configs=[
                dict(C=2000, G=20, M=100, scipy_chains=100),
                dict(C=2000, G=20, M=1000, scipy_chains=50),
            ],
        ),
        dict(
            name="chain_fixed",
            rule="fixed",
            baselines=True,
            configs=[dict(C=2000, G=20, M=100, scipy_chains=100)],
        ),
        dict(name="scaling_C", configs=[dict(C=c, G=20, M=100) for c in (1000, 4000, 16000)]),
        dict(name="scaling_M", configs=[dict(C=1000, G=20, M=m) for m in (10, 100, 1000)]),
        dict(
            name="accumulate_G",
            rule="fixed",
            configs=[dict(C=1000, G=g, M=20, regime="accumulate") for g in (10, 20, 40)],
        ),
    ]


def _report(groups: dict) -> str:
    lines = []
    head = f"{'group':<12} {'rule':<9} {'C':>6} {'G':>4} {'M':>5} {'JAX s':>8} {'us/ch-gen':>9} "
    head += f"{'scipy us/ch-gen':>15} {'ratio':>7} {'NumPy us/ch-gen':>15} {'ratio':>6}"
    lines += [head, "-" * len(head)]
    for name, res in groups.items():
        if name.startswith(("scaling", "accumulate")):
            continue
        for r in res["rows"]:
            jax_us = r["jax_s"] / (r["C"] * r["G"]) * 1e6
            sc_us = r["scipy_s"] / (r["scipy_chains"] * r["G"]) * 1e6
            np_us = r["numpy_s"] / (r["C"] * r["G"]) * 1e6
            lines.append(
                f"{name:<12} {r['rule']:<9} {r['C']:>6} {r['G']:>4} {r['M']:>5} {r['jax_s']:8.3f} "
                f"{jax_us:9.2f} {sc_us:15.1f} {sc_us / jax_us:7.1f} {np_us:15.2f} "
                f"{np_us / jax_us:6.2f}"
            )
    lines.append("")
    for name, res in groups.items():
        if name.startswith("scaling"):
            axis = name.split("_")[1]
            xs = [r[axis] for r in res["rows"]]
            ys = [r["jax_s"] for r in res["rows"]]
            pts = ", ".join(f"{x}: {y:.3f} s" for x, y in zip(xs, ys, strict=True))
            lines.append(f"cost vs {axis}: slope {harness.loglog_slope(xs, ys):.2f}  ({pts})")
        elif name.startswith("accumulate"):
            xs = [r["G"] for r in res["rows"]]
            ys = [r["jax_s"] for r in res["rows"]]
            pts = ", ".join(
                f"G={r['G']}: {r['jax_s']:.3f} s, state {r['state_bytes'] / 1024:.1f} KiB/chain"
                for r in res["rows"]
            )
            lines.append(
                f"accumulate (M={res['rows'][0]['M']}, fixed h) cost vs G: slope "
                f"{harness.loglog_slope(xs, ys):.2f}  ({pts})"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    ap.add_argument("--out", default=None, help="JSON path (default bench/results/...)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        harness.emit(_worker(json.loads(args.worker)))
        return 0
    out = args.out or os.path.join(
        "bench", "results", "kde_cpu_quick.json" if args.quick else "kde_cpu.json"
    )
    return harness.run_groups(
        "bench.kde_throughput",
        _plan(args.quick),
        _report,
        argv=argv,
        quick=args.quick,
        out=out,
    )


if __name__ == "__main__":
    sys.exit(main())
