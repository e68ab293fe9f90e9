r"""Throughput of the categorical (Wright-Fisher) chain, against vectorised NumPy.

Run ``python -m bench.categorical_throughput`` (about 5 minutes on a 2-core
CPU) or ``--quick`` (a smoke run, tiny sizes, meaningless numbers). It prints
a table and writes JSON and text to ``bench/results/`` (``--out``). Nothing is
asserted; the target is printed beside the numbers.

What it measures, in one run (float32 unless marked; float64 groups run in a
subprocess with ``jax_enable_x64``):

1. ``chain``: :func:`sim.runners.run_categorical` (multinomial counts drawn by
   conditional binomial splits, refit, records, on-device reductions), the
   time of a compiled run, at K = 1,000 and K = 100,000. Unit: ns per
   category per chain-generation, and chain-generations/s.
2. ``numpy``: the same chain as paper code writes it: ``Generator.multinomial
   (M, P)`` with a (C, K) matrix of per-chain probabilities, then ``P =
   counts / M``, on one thread (NumPy's multinomial is single-threaded).
   ``ratio`` = NumPy time / JAX time for the same (C, G, K, M): > 1 means
   JAX is faster.
3. ``profile``: where the time goes at K = 1,000: the multinomial alone
   (``sim.random.multinomial`` under vmap), the step (multinomial + fit), and
   the full chain (+ records and reductions).
4. ``scaling``: time against C, G, K and M, with the log-log slope.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from bench import harness

TARGET_RATIO = 1.0  # at least as fast as NumPy (issue 4)


def _vocab(k: int):
    from sim.families.categorical import Vocabulary

    return Vocabulary.zipf(k, 1.1)


def jax_chain(c, g, k, m, dtype_name, repeats=2) -> float:
    import jax
    import jax.numpy as jnp

    from sim.runners import run_categorical

    v = _vocab(k)

    def call():
        run_categorical(
            jax.random.key(0, impl="philox4x32"),
            vocabulary=v,
            sample_size=m,
            num_chains=c,
            num_generations=g,
            dtype=jnp.dtype(dtype_name),
            first_passage_fields=(),
            progress=False,
        )

    return harness.best_time(call, repeats)


def jax_parts(c, g, k, m, dtype_name, repeats=2) -> dict:
    """Multinomial alone, and step (multinomial + fit), as a scan over G generations."""
    import jax
    import jax.numpy as jnp

    from sim.chain import replace_step
    from sim.families.categorical import categorical
    from sim.random import multinomial

    dtype = jnp.dtype(dtype_name)
    v = _vocab(k)
    p0 = jnp.broadcast_to(jnp.asarray(v.probs, dtype), (c, k))
    keys = jax.random.split(jax.random.key(0, impl="philox4x32"), c)

    @jax.jit
    def draws(keys, p):
        def body(p, t):
            ks = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, t)
            x = jax.vmap(lambda kk, pp: multinomial(kk, m, pp))(ks, p)
            return p, x[:, 0]

        return jax.lax.scan(body, p, jnp.arange(g))[1]

    step = replace_step(categorical(0.0, dtype=dtype), m)
    params0 = jax.tree.map(lambda x: jnp.broadcast_to(x, (c,) + x.shape), v.params(dtype))

    @jax.jit
    def steps(keys, params):
        def body(params, t):
            ks = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, t)
            params, _ = jax.vmap(step)(ks, params)
            return params, params.probs[:, 0]

        return jax.lax.scan(body, params, jnp.arange(g))[1]

    t_draw = harness.best_time(lambda: draws(keys, p0).block_until_ready(), repeats)
    t_step = harness.best_time(lambda: steps(keys, params0).block_until_ready(), repeats)
    return dict(multinomial_s=t_draw, step_s=t_step)


def numpy_chain(c, g, k, m, repeats=1) -> float:
    rng = np.random.default_rng(0)
    p0 = np.broadcast_to(_vocab(k).probs, (c, k))

    def call():
        p = p0
        for _ in range(g):
            x = rng.multinomial(m, p)
            p = x / m

    return harness.best_time(call, repeats)


def _worker(spec: dict) -> dict:
    """Runs one group in this process (the parent sets x64 through the environment)."""
    import jax

    jax.config.update("jax_enable_x64", spec["dtype"] == "float64")
    out = []
    for c, g, k, m in spec["configs"]:
        row = dict(C=c, G=g, K=k, M=m, dtype=spec["dtype"])
        row["jax_s"] = jax_chain(c, g, k, m, spec["dtype"])
        if spec.get("parts"):
            row.update(jax_parts(c, g, k, m, spec["dtype"]))
        if spec.get("numpy"):
            row["numpy_s"] = numpy_chain(c, g, k, m)
        out.append(row)
    return dict(rows=out)


def _run_group(spec: dict) -> dict:
    try:
        return harness.run_worker("bench.categorical_throughput", spec).result
    except harness.WorkerError as e:
        raise RuntimeError(str(e)) from None


def _plan(quick: bool) -> list[dict]:
    if quick:
        main = [(64, 3, 1000, 1000), (4, 2, 100_000, 1000)]
        return [
            dict(name="chain", dtype="float32", configs=main, numpy=True, parts=True),
            dict(
                name="scaling_C",
                dtype="float32",
                configs=[(32, 3, 1000, 1000), (64, 3, 1000, 1000)],
            ),
        ]
    main = [
        (1000, 20, 1000, 1000),
        (1000, 20, 1000, 100),
        (32, 4, 100_000, 100_000),
        (32, 4, 100_000, 1000),
    ]
    return [
        dict(name="chain", dtype="float32", configs=main, numpy=True, parts=True),
        dict(name="chain_f64", dtype="float64", configs=main[:1] + main[2:3], numpy=False),
        dict(
            name="scaling_C",
            dtype="float32",
            configs=[(c, 10, 1000, 1000) for c in (256, 1024, 4096)],
        ),
        dict(
            name="scaling_G", dtype="float32", configs=[(1024, g, 1000, 1000) for g in (5, 20, 80)]
        ),
        dict(
            name="scaling_K",
            dtype="float32",
            configs=[(64, 5, k, 1000) for k in (1000, 10_000, 100_000)],
        ),
        dict(
            name="scaling_M",
            dtype="float32",
            configs=[(1024, 10, 1000, m) for m in (10, 1000, 100_000)],
        ),
    ]


def _slope(xs, ys) -> float:
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def _report(groups: dict) -> str:
    lines = []
    head = f"{'group':<10} {'dtype':<8} {'C':>6} {'G':>4} {'K':>7} {'M':>7} {'JAX s':>8} "
    head += f"{'ns/cat/chain-gen':>17} {'NumPy s':>8} {'ratio':>6}  target"
    lines += [head, "-" * len(head)]
    for name, res in groups.items():
        if name.startswith("scaling"):
            continue
        for r in res["rows"]:
            n = r["C"] * r["G"] * r["K"]
            ns = r["jax_s"] / n * 1e9
            ratio = r["numpy_s"] / r["jax_s"] if "numpy_s" in r else None
            np_s = f"{r['numpy_s']:8.3f}" if "numpy_s" in r else f"{'':>8}"
            rs = f"{ratio:6.2f}" if ratio else f"{'':>6}"
            verdict = "" if ratio is None else ("PASS" if ratio >= TARGET_RATIO else "MISS")
            lines.append(
                f"{name:<10} {r['dtype']:<8} {r['C']:>6} {r['G']:>4} {r['K']:>7} {r['M']:>7} "
                f"{r['jax_s']:8.3f} {ns:17.1f} {np_s} {rs}  {verdict}"
            )
            if "multinomial_s" in r:
                lines.append(
                    f"{'':<10} profile: multinomial {r['multinomial_s'] / r['jax_s']:.0%} "
                    f"of the chain, step (+fit) {r['step_s'] / r['jax_s']:.0%}, "
                    f"records and reductions the rest"
                )
    lines.append("")
    for name, res in groups.items():
        if not name.startswith("scaling"):
            continue
        axis = name.split("_")[1]
        xs = [r[axis] for r in res["rows"]]
        ys = [r["jax_s"] for r in res["rows"]]
        pts = ", ".join(f"{x}: {y:.3f} s" for x, y in zip(xs, ys, strict=True))
        lines.append(f"cost vs {axis}: slope {_slope(xs, ys):.2f}  ({pts})")
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
        "bench", "results", "categorical_cpu_quick.json" if args.quick else "categorical_cpu.json"
    )
    groups = {}
    t0 = time.perf_counter()
    for spec in _plan(args.quick):
        print(f"[{spec['name']}] ...", flush=True)
        groups[spec["name"]] = _run_group(spec)
    text = _report(groups)
    print(text)
    meta = harness.metadata(
        "bench.categorical_throughput", argv, quick=args.quick, wall_s=time.perf_counter() - t0
    )
    harness.write_results(out, dict(meta=meta, groups=groups), text + "\n", suffix=".txt")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
