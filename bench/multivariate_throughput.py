r"""Throughput of the multivariate Gaussian chain, against NumPy chain by chain and batched.

Run ``python -m bench.multivariate_throughput`` (a few minutes on a 2-core CPU)
or ``--quick`` (a smoke run, tiny sizes, meaningless numbers). It prints a table
and writes JSON and text to ``bench/results/`` (``--out``). Nothing is asserted.

What it measures, in one run (float32 JAX, in a worker subprocess per group):

1. ``sample`` and ``exact``: :func:`sim.run.run` of family ``multivariate``
   (MLE, replace) with ``method="sample"`` (draw M points in standardised
   coordinates, refit relative to the previous factor) and ``method="exact"``
   (the mean from a normal and the scatter from a Wishart by the Bartlett
   decomposition, O(d^2) whatever M), records (log det, trace, squared error of
   the mean, the eigenvalue spectrum, W2^2) and on-device reductions included;
   the fastest of 2 compiled runs after the first call. Unit: microseconds per
   chain-generation.
2. ``loop``: what the public code does (Kazdan et al.'s ``fit_gaussians``): for
   each chain, for each generation, ``rng.multivariate_normal(mu, Sigma, M)``
   (``default_rng``), ``mu = x.mean(0)``, ``Sigma = np.cov(x, rowvar=False,
   bias=True)`` and its records (squared error of the mean, log det by
   ``slogdet``, trace); float64, one chain at a time, timed on a subset of the
   chains and scaled per chain-generation. The ratios use
   ``method="cholesky"``; ``svd`` is the same loop with the default
   ``method="svd"`` (what the public code calls). ``numpy``: the chain
   vectorised over chains (float64: ``rng.standard_normal((C, M, d))``, ``x =
   mu + z L^T`` by batched matmul, the scatter by ``np.einsum("cmi,cmj->cij")``
   with ``optimize=True`` (plain einsum measured 1.5-4.5x slower), batched
   ``np.linalg.cholesky``, the same three records from the factor), timed on
   the first generations and scaled, a stronger baseline than the public code.
   ``ratio`` = baseline time / JAX time per chain-generation (> 1: JAX faster).
3. ``profile`` (d sweep only): where JAX's time goes, each a jitted
   ``scan(vmap(step))`` over the same C and G with :mod:`sim.chain`'s keys and
   steps: ``step`` the sample path's step alone (draw and fit, no records),
   ``+rec`` the same plus the family's record (the spectrum, whose graded QR
   steps and blockwise SVD are O(d^3)), ``exact step`` the exact path's step
   alone. The engine's run minus ``+rec`` is its own share (records kept per
   generation, block moments, chunks).
4. Scaling: cost against d (3 to 100 at M = 316) and M (32 to 1,000 at d = 10)
   for every method (log-log slopes of microseconds per chain-generation), and
   JAX time against C.

Workers run with one BLAS/OpenMP thread (``harness.worker_env(one_thread=True)``;
XLA's own thread pool is not affected), as in ``bench.gmm_throughput``: the
NumPy matrices are small and the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from bench import harness

ESTIMATOR = "mle"  # the public code's np.cov(bias=True)


def jax_chain(c, g, m, d, method, repeats=2) -> dict:
    import jax
    import jax.numpy as jnp

    from sim.run import run

    def call():
        run(
            "multivariate",
            jax.random.key(0, impl="philox4x32"),
            num_chains=c,
            num_generations=g,
            progress=False,
            dim=d,
            sample_size=m,
            estimator=ESTIMATOR,
            method=method,
            dtype=jnp.float32,
        )

    t0 = time.perf_counter()
    call()
    first = time.perf_counter() - t0
    return dict(jax_s=harness.best_time(call, repeats, warmup=False), first_call_s=first)


def jax_profile(c, g, m, d, repeats=2) -> dict:
    """Seconds of ``scan(vmap(step))`` over C chains and G generations: the sample
    step, the sample step plus the record, the exact step (see the docstring)."""
    import jax
    import jax.numpy as jnp

    from sim.chain import chain_key, generation_key, replace_step, stats_step
    from sim.families.multivariate import multivariate, real_params
    from sim.families.multivariate.record import multivariate_record

    fam = multivariate(d, ESTIMATOR)
    p0 = real_params(d, jnp.float32)
    root = jax.random.key(0, impl="philox4x32")
    ids = jnp.arange(c, dtype=jnp.int32)

    def program(step, record):
        def one(key, p):
            q = step(key, p)[0]
            if record:
                return q, sum(jnp.sum(x) for x in jax.tree.leaves(multivariate_record(q)))
            return q, q.log_det

        @jax.jit
        def prog(root, ids):
            keys = jax.vmap(chain_key, in_axes=(None, 0))(root, ids)
            state = jax.tree.map(lambda x: jnp.broadcast_to(x, ids.shape + x.shape), p0)

            def body(carry, t):
                gkeys = jax.vmap(generation_key, in_axes=(0, None))(keys, t)
                q, extra = jax.vmap(one)(gkeys, carry[0])
                return (q, carry[1] + extra), None

            ts = jnp.arange(1, g + 1, dtype=jnp.int32)
            return jax.lax.scan(body, (state, jnp.zeros(ids.shape, jnp.float32)), ts)[0][1]

        return lambda: jax.block_until_ready(prog(root, ids))

    out = {}
    for name, step, record in (
        ("step_s", replace_step(fam, m), False),
        ("step_record_s", replace_step(fam, m), True),
        ("exact_step_s", stats_step(fam, m), False),
    ):
        out[name] = harness.best_time(program(step, record), repeats)
    return out


def numpy_loop(c, g, m, d, method) -> float:
    """The public code's chain, one chain at a time (float64)."""
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    for _ in range(c):
        mu, cov = np.zeros(d), np.eye(d)
        for _ in range(g):
            x = rng.multivariate_normal(mu, cov, size=m, method=method)
            mu = x.mean(0)
            cov = np.cov(x, rowvar=False, bias=True)
            _ = (mu @ mu, np.linalg.slogdet(cov)[1], np.trace(cov))
    return time.perf_counter() - t


def numpy_batched(c, g, m, d) -> float:
    """The chain vectorised over chains (float64), ``g`` generations."""
    rng = np.random.default_rng(0)
    mu = np.zeros((c, d))
    chol = np.broadcast_to(np.eye(d), (c, d, d)).copy()
    t = time.perf_counter()
    for _ in range(g):
        z = rng.standard_normal((c, m, d))
        x = mu[:, None] + z @ np.swapaxes(chol, -1, -2)
        mu = x.mean(1)
        xc = x - mu[:, None]
        cov = np.einsum("cmi,cmj->cij", xc, xc, optimize=True) / m
        chol = np.linalg.cholesky(cov)
        diag = np.diagonal(chol, axis1=-2, axis2=-1)
        _ = ((mu * mu).sum(1), 2 * np.log(diag).sum(1), np.trace(cov, axis1=-2, axis2=-1))
    return time.perf_counter() - t


def _worker(spec: dict) -> dict:
    out = []
    for row in spec["configs"]:
        c, g, m, d = row["C"], row["G"], row["M"], row["d"]
        r = dict(row)
        for method in spec.get("methods", ("sample", "exact")):
            res = jax_chain(c, g, m, d, method)
            r.update({f"{method}_{k}": v for k, v in res.items()})
        if spec.get("profile"):
            r.update(jax_profile(c, g, m, d))
        if spec.get("baselines"):
            sub, lg = row["loop_chains"], row.get("loop_gens", g)
            r.update(loop_chains=sub, loop_gens=lg)
            r["loop_s"] = numpy_loop(sub, lg, m, d, "cholesky")
            r["svd_s"] = numpy_loop(sub, lg, m, d, "svd")
            ng = row.get("numpy_gens", g)
            r["numpy_gens"] = ng
            r["numpy_s"] = min(numpy_batched(c, ng, m, d) for _ in range(2))
        out.append(r)
    return dict(rows=out)


def _plan(quick: bool) -> list[dict]:
    if quick:
        return [
            dict(
                name="d",
                baselines=True,
                profile=True,
                configs=[dict(d=d, M=8, C=16, G=2, loop_chains=2) for d in (2, 3)],
            ),
            dict(
                name="M",
                baselines=True,
                configs=[dict(d=2, M=m, C=16, G=2, loop_chains=2) for m in (8, 16)],
            ),
            dict(
                name="scaling_C",
                methods=("sample",),
                configs=[dict(d=2, M=8, C=c, G=2) for c in (16, 32)],
            ),
        ]
    return [
        dict(
            name="d",
            baselines=True,
            profile=True,
            configs=[
                dict(d=3, M=316, C=1000, G=10, loop_chains=20),
                dict(d=10, M=316, C=1000, G=10, loop_chains=20),
                dict(d=31, M=316, C=300, G=10, loop_chains=10),
                dict(d=100, M=316, C=100, G=5, loop_chains=4, numpy_gens=3),
            ],
        ),
        dict(
            name="M",
            baselines=True,
            configs=[dict(d=10, M=m, C=1000, G=10, loop_chains=20) for m in (32, 100, 316, 1000)],
        ),
        dict(
            name="scaling_C",
            methods=("sample",),
            configs=[dict(d=10, M=100, C=c, G=5) for c in (250, 1000, 4000)],
        ),
    ]


def _us(r, key, chains="C", gens="G") -> float:
    """Microseconds per chain-generation of the timing ``key`` of row ``r``."""
    return r[key] / (r[chains] * r[gens]) * 1e6


def _report(groups: dict) -> str:
    lines = []
    head = (
        f"{'group':<6} {'d':>3} {'M':>5} {'C':>5} {'G':>3} {'sample us':>10} {'compile s':>9} "
        f"{'exact us':>9} {'compile s':>9} {'loop us':>9} {'svd us':>9} {'NumPy us':>9} "
        f"{'loop/smp':>8} {'np/smp':>7} {'loop/ex':>8} {'np/ex':>7}"
    )
    lines += [head, "-" * len(head)]
    series = {}
    for name, res in groups.items():
        if name.startswith("scaling"):
            continue
        for r in res["rows"]:
            us = dict(
                sample=_us(r, "sample_jax_s"),
                exact=_us(r, "exact_jax_s"),
                loop=_us(r, "loop_s", "loop_chains", "loop_gens"),
                svd=_us(r, "svd_s", "loop_chains", "loop_gens"),
                numpy=_us(r, "numpy_s", gens="numpy_gens"),
            )
            for k, v in us.items():
                series.setdefault(name, {}).setdefault(k, []).append((r[name], v))
            lines.append(
                f"{name:<6} {r['d']:>3} {r['M']:>5} {r['C']:>5} {r['G']:>3} {us['sample']:10.1f} "
                f"{r['sample_first_call_s'] - r['sample_jax_s']:9.1f} {us['exact']:9.1f} "
                f"{r['exact_first_call_s'] - r['exact_jax_s']:9.1f} {us['loop']:9.1f} "
                f"{us['svd']:9.1f} {us['numpy']:9.1f} {us['loop'] / us['sample']:8.2f} "
                f"{us['numpy'] / us['sample']:7.2f} {us['loop'] / us['exact']:8.2f} "
                f"{us['numpy'] / us['exact']:7.2f}"
            )
    lines.append("")
    prof = [r for r in groups.get("d", {}).get("rows", []) if "step_s" in r]
    if prof:
        head = (
            f"{'profile d':>9} {'M':>5} {'step us':>9} {'+rec us':>9} {'engine us':>9} "
            f"{'rec share':>9} {'NumPy/step':>10} {'exact step':>10} {'engine ex':>9}"
        )
        lines += [head, "-" * len(head)]
        for r in prof:
            step, rec = _us(r, "step_s"), _us(r, "step_record_s")
            full, np_us = _us(r, "sample_jax_s"), _us(r, "numpy_s", gens="numpy_gens")
            lines.append(
                f"{r['d']:>9} {r['M']:>5} {step:9.1f} {rec:9.1f} {full:9.1f} "
                f"{(rec - step) / full:9.2f} {np_us / step:10.2f} "
                f"{_us(r, 'exact_step_s'):10.1f} {_us(r, 'exact_jax_s'):9.1f}"
            )
        lines.append("")
    for axis, per in series.items():
        fixed = "M" if axis == "d" else "d"
        at = groups[axis]["rows"][0][fixed]
        parts = []
        for k, pts in per.items():
            xs, ys = zip(*pts, strict=True)
            parts.append(f"{k} {harness.loglog_slope(xs, ys):.2f}")
        lines.append(f"slope of us/ch-gen vs {axis} ({fixed}={at}): " + ", ".join(parts))
    for name, res in groups.items():
        if name.startswith("scaling"):
            axis = name.split("_")[1]
            xs = [r[axis] for r in res["rows"]]
            ys = [r["sample_jax_s"] for r in res["rows"]]
            pts = ", ".join(
                f"{x}: {y:.3f} s ({_us(r, 'sample_jax_s'):.1f} us/ch-gen)"
                for x, y, r in zip(xs, ys, res["rows"], strict=True)
            )
            lines.append(
                f"JAX sample cost vs {axis}: slope {harness.loglog_slope(xs, ys):.2f}  ({pts})"
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
        "bench", "results", "multivariate_cpu_quick.json" if args.quick else "multivariate_cpu.json"
    )
    env = harness.worker_env(one_thread=True)  # one BLAS thread: see the docstring
    return harness.run_groups(
        "bench.multivariate_throughput",
        _plan(args.quick),
        _report,
        argv=argv,
        quick=args.quick,
        out=out,
        env=env,
    )


if __name__ == "__main__":
    sys.exit(main())
