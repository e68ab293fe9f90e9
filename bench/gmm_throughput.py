r"""Throughput of the Gaussian-mixture (EM) chain, against scikit-learn chain by chain.

Run ``python -m bench.gmm_throughput`` (a few minutes on a 2-core CPU) or
``--quick`` (a smoke run, tiny sizes, meaningless numbers). It prints a table
and writes JSON and text to ``bench/results/`` (``--out``). Nothing is asserted.

What it measures, in one run (float32 JAX, in a worker subprocess):

1. ``chain``: :func:`sim.run.run` of family ``gmm`` (sample M points from the
   previous fit, EM from that fit, ``em_steps`` iterations with ``tol=0``,
   records and on-device reductions), K components in d dimensions, the fastest
   of 2 compiled runs after the first call. Unit: microseconds per
   chain-generation. ``chain_tol``: the same with ``tol > 0`` (the family's
   ``lax.while_loop``, vmapped over chains), and the mean EM iterations the
   chains used.
2. ``sklearn``: what the public code does: per chain one
   ``GaussianMixture(n_components=K, covariance_type="full", max_iter=em_steps,
   tol=tol, reg_covar=1e-6, warm_start=True)`` started at the real mixture
   (``weights_init``, ``means_init``, ``precisions_init``; ``init_params=
   "random_from_data"`` so that no k-means runs), then per generation ``fit(x)``
   (warm: EM starts from the previous fit, as the family does) and ``x =
   sample(M)``; float64, one chain at a time, timed on a subset of the chains
   and scaled per chain-generation. ``numpy``: the same EM vectorised over
   chains in NumPy (float64 arrays (C, K, M, d); batched Cholesky, E- and
   M-steps, the same count of iterations: one E-step, then ``em_steps`` times
   M-step + E-step, as the family and scikit-learn), timed on the first
   generations and scaled, a stronger baseline than the public code.
   ``ratio`` = baseline time / JAX time per chain-generation (> 1: JAX faster).
3. ``scaling``: JAX time against C and M (log-log slopes).

Workers run with one BLAS/OpenMP thread (``harness.worker_env(one_thread=True)``;
XLA's own thread pool is not affected): with OpenBLAS's default threads on
this shared 2-core machine, scikit-learn's d = 2 fit took 325 ms per
chain-generation instead of 9 ms (threads spinning on a busy core), and the
tiny matrices gain nothing from threads.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings

import numpy as np

from bench import harness

SEPARATION = 4.0
REG = 1e-6  # scikit-learn's reg_covar default; the family's cov_floor default


def real_params_np(k: int, d: int, sep: float = SEPARATION):
    """The family's real mixture (``sim.families.gmm.real_params``) in NumPy."""
    offsets = (np.arange(k) - (k - 1) / 2) * sep
    means = np.zeros((k, d))
    means[:, 0] = offsets
    return np.full(k, 1.0 / k), means, np.broadcast_to(np.eye(d), (k, d, d)).copy()


def jax_chain(c, g, m, k, d, steps, tol, repeats=2) -> dict:
    import jax
    import jax.numpy as jnp

    from sim.run import run

    settings = dict(
        components=k,
        dim=d,
        sample_size=m,
        separation=SEPARATION,
        max_steps=steps,
        tol=tol,
        dtype=jnp.float32,
    )
    res = {}

    def call():
        res["r"] = run(
            "gmm",
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
    its = np.asarray(res["r"].moments["em_iterations"].mean)[1:]
    return dict(jax_s=best, first_call_s=first, em_iterations=float(its.mean()))


def sklearn_chain(c, g, m, k, d, steps, tol) -> dict:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    w0, mu0, cov0 = real_params_np(k, d)
    prec0 = np.linalg.inv(cov0)
    rs = np.random.RandomState(0)  # one state object, so that sample() draws afresh
    iters = []
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(c):
            gm = GaussianMixture(
                n_components=k,
                covariance_type="full",
                max_iter=steps,
                tol=tol,
                reg_covar=REG,
                init_params="random_from_data",
                weights_init=w0,
                means_init=mu0,
                precisions_init=prec0,
                warm_start=True,
                random_state=rs,
            )
            lab = rs.choice(k, size=m, p=w0)
            x = mu0[lab] + rs.standard_normal((m, d))
            for _ in range(g):
                gm.fit(x)
                iters.append(gm.n_iter_)
                x = gm.sample(m)[0]
    return dict(sklearn_s=time.perf_counter() - t, sklearn_iterations=float(np.mean(iters)))


def np_e_step(x, w, mu, cov):
    """Batched E-step: responsibilities (C, K, M) and mean log-likelihood per chain."""
    d = x.shape[-1]
    chol = np.linalg.cholesky(cov)  # (c, k, d, d)
    inv = np.linalg.inv(chol)
    diff = x[:, None] - mu[:, :, None]  # (c, k, m, d)
    y = diff @ np.swapaxes(inv, -1, -2)  # matmul: einsum measured 10-20x slower here
    log_diag = np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(-1)
    logp = np.log(w)[..., None] - 0.5 * (y * y).sum(-1) - log_diag[..., None]
    logp = logp - 0.5 * d * math.log(2 * math.pi)
    top = logp.max(1, keepdims=True)
    e = np.exp(logp - top)
    s = e.sum(1, keepdims=True)
    return e / s, (top + np.log(s)).mean((1, 2))


def np_m_step(x, resp):
    """Batched M-step (scikit-learn's, with ``reg_covar`` on the diagonal)."""
    m, d = x.shape[1], x.shape[2]
    nk = resp.sum(-1)  # (c, k)
    mu = (resp @ x) / nk[..., None]
    diff = x[:, None] - mu[:, :, None]
    cov = (np.swapaxes(resp[..., None] * diff, -1, -2) @ diff) / nk[..., None, None]
    return nk / m, mu, cov + REG * np.eye(d)


def np_em(x, w, mu, cov, steps):
    """One E-step, then ``steps`` times M-step + E-step (the family's and sklearn's count)."""
    resp, _ = np_e_step(x, w, mu, cov)
    for _ in range(steps):
        w, mu, cov = np_m_step(x, resp)
        resp, _ = np_e_step(x, w, mu, cov)
    return w, mu, cov


def numpy_chain(c, g, m, k, d, steps) -> float:
    """EM chains vectorised over chains in NumPy (float64), ``g`` generations."""
    rng = np.random.default_rng(0)
    w0, mu0, cov0 = real_params_np(k, d)
    w = np.broadcast_to(w0, (c, k)).copy()
    mu = np.broadcast_to(mu0, (c, k, d)).copy()
    cov = np.broadcast_to(cov0, (c, k, d, d)).copy()
    rows = np.arange(c)[:, None]
    t = time.perf_counter()
    for _ in range(g):
        chol = np.linalg.cholesky(cov)
        cw = np.cumsum(w, 1)
        cw /= cw[:, -1:]
        lab = (rng.random((c, m, 1)) >= cw[:, None, :-1]).sum(-1)
        z = rng.standard_normal((c, m, d))
        x = mu[rows, lab] + (chol[rows, lab] @ z[..., None])[..., 0]
        w, mu, cov = np_em(x, w, mu, cov, steps)
    return time.perf_counter() - t


def _worker(spec: dict) -> dict:
    out = []
    for row in spec["configs"]:
        c, g, m = row["C"], row["G"], row["M"]
        k, d, steps, tol = row["K"], row["d"], row["steps"], row.get("tol", 0.0)
        r = dict(row, tol=tol)
        r.update(jax_chain(c, g, m, k, d, steps, tol))
        if spec.get("baselines"):
            sub = row.get("sklearn_chains", min(c, 20))
            r["sklearn_chains"] = sub
            r.update(sklearn_chain(sub, g, m, k, d, steps, tol))
            if tol == 0:
                ng = row.get("numpy_gens", g)
                r["numpy_gens"] = ng
                r["numpy_s"] = min(numpy_chain(c, ng, m, k, d, steps) for _ in range(2))
        out.append(r)
    return dict(rows=out)


def _plan(quick: bool) -> list[dict]:
    if quick:
        base = dict(K=2, steps=3)
        return [
            dict(
                name="chain",
                baselines=True,
                configs=[
                    dict(base, d=1, C=32, G=3, M=20, sklearn_chains=3),
                    dict(base, d=2, C=32, G=3, M=20, sklearn_chains=3),
                ],
            ),
            dict(
                name="chain_tol",
                baselines=True,
                configs=[dict(base, d=1, C=32, G=3, M=20, tol=1e-6, sklearn_chains=3)],
            ),
            dict(name="scaling_C", configs=[dict(base, d=1, C=c, G=3, M=20) for c in (16, 32)]),
        ]
    base = dict(K=2, steps=10)
    return [
        dict(
            name="chain",
            baselines=True,
            configs=[
                dict(base, d=1, C=1000, G=20, M=100, sklearn_chains=20),
                dict(base, d=2, C=1000, G=20, M=100, sklearn_chains=20),
                dict(base, d=1, C=1000, G=10, M=1000, sklearn_chains=10, numpy_gens=3),
                dict(base, d=2, C=1000, G=10, M=1000, sklearn_chains=10, numpy_gens=3),
                dict(base, K=4, d=2, C=1000, G=20, M=100, sklearn_chains=20, numpy_gens=10),
            ],
        ),
        dict(
            name="chain_tol",
            baselines=True,
            configs=[dict(base, d=2, C=1000, G=20, M=100, tol=1e-6, sklearn_chains=20)],
        ),
        dict(
            name="scaling_C", configs=[dict(base, d=1, C=c, G=10, M=100) for c in (250, 1000, 4000)]
        ),
        dict(
            name="scaling_M", configs=[dict(base, d=1, C=500, G=10, M=m) for m in (30, 100, 1000)]
        ),
    ]


def _report(groups: dict) -> str:
    lines = []
    head = (
        f"{'group':<10} {'K':>2} {'d':>2} {'M':>5} {'EM':>3} {'tol':>6} {'C':>5} {'G':>3} "
        f"{'JAX s':>7} {'compile s':>9} {'us/ch-gen':>9} {'JAX its':>7} {'sklearn us':>10} "
        f"{'its':>5} {'ratio':>6} {'NumPy us':>9} {'ratio':>6}"
    )
    lines += [head, "-" * len(head)]
    for name, res in groups.items():
        if name.startswith("scaling"):
            continue
        for r in res["rows"]:
            jax_us = r["jax_s"] / (r["C"] * r["G"]) * 1e6
            sk_us = r["sklearn_s"] / (r["sklearn_chains"] * r["G"]) * 1e6
            if "numpy_s" in r:
                np_us = r["numpy_s"] / (r["C"] * r["numpy_gens"]) * 1e6
                np_txt = f"{np_us:9.1f} {np_us / jax_us:6.2f}"
            else:
                np_txt = f"{'-':>9} {'-':>6}"
            lines.append(
                f"{name:<10} {r['K']:>2} {r['d']:>2} {r['M']:>5} {r['steps']:>3} {r['tol']:>6g} "
                f"{r['C']:>5} {r['G']:>3} {r['jax_s']:7.3f} "
                f"{r['first_call_s'] - r['jax_s']:9.1f} {jax_us:9.2f} {r['em_iterations']:7.2f} "
                f"{sk_us:10.1f} {r['sklearn_iterations']:5.2f} {sk_us / jax_us:6.1f} {np_txt}"
            )
    lines.append("")
    for name, res in groups.items():
        if name.startswith("scaling"):
            axis = name.split("_")[1]
            xs = [r[axis] for r in res["rows"]]
            ys = [r["jax_s"] for r in res["rows"]]
            pts = ", ".join(
                f"{x}: {y:.3f} s ({y / (r['C'] * r['G']) * 1e6:.1f} us/ch-gen)"
                for x, y, r in zip(xs, ys, res["rows"], strict=True)
            )
            lines.append(f"cost vs {axis}: slope {harness.loglog_slope(xs, ys):.2f}  ({pts})")
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
        "bench", "results", "gmm_cpu_quick.json" if args.quick else "gmm_cpu.json"
    )
    env = harness.worker_env(one_thread=True)  # one BLAS thread: see the docstring
    return harness.run_groups(
        "bench.gmm_throughput",
        _plan(args.quick),
        _report,
        argv=argv,
        quick=args.quick,
        out=out,
        env=env,
    )


if __name__ == "__main__":
    sys.exit(main())
