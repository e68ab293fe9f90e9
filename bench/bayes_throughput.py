r"""Throughput of the Bayesian (Normal-Inverse-Gamma) chain, conjugate and NUTS fits.

Run ``python -m bench.bayes_throughput`` (a few minutes on a 2-core CPU) or
``--quick`` (a smoke run, tiny sizes, meaningless numbers). It prints tables and
writes JSON and text to ``bench/results/`` (``--out``). Nothing is asserted.

What it measures, in one run (float32 JAX, in worker subprocesses):

1. ``conjugate``: :func:`sim.run.run` of family ``bayes`` with the closed-form
   fit (joint predictive), ``update="refit"`` (every posterior from the prior)
   and ``"sequential"`` (the posterior becomes the next prior; the engine runs it
   as refit under accumulate), sample path (M points per generation) and one
   exact-path row; the fastest of 2 compiled runs after the first call.
   Unit: microseconds per chain-generation. Baselines: ``numpy``, the same
   chain vectorised over chains (float64: per generation one (C, M) normal
   array, mean and scatter, the conjugate update, a Gamma and a normal draw of
   the posterior's parameters), and ``loop``, the same chain by chain in a
   Python loop (NumPy scalars and one size-M draw per generation, the public
   code's way), timed on a subset of the chains and scaled.
2. ``nuts``: the same family with ``fit="nuts"`` (numpyro's NUTS inside the
   vmapped, scanned program: ``nuts_chains`` NUTS chains of ``nuts_warmup`` +
   ``nuts_samples`` steps per fit, the family's defaults 2, 200, 200) at small
   sizes, with the conjugate chain at the same sizes (ratio NUTS / conjugate).
   Baseline: numpyro's standalone ``MCMC(NUTS(model), num_warmup, num_samples,
   num_chains)`` with the same counts on a model of the M raw points, run chain by
   chain in a Python loop, each generation one ``mcmc.run`` and the next M points
   drawn (NumPy) from one posterior draw; the MCMC object is made once and its
   first run (compilation) is not timed. Twice: with ``jit_model_args=True``
   (compiled once for all data sets of the same shape) and with numpyro's default
   ``jit_model_args=False`` (one compilation per ``run``, as a script that calls
   ``mcmc.run`` on new data gets). ``num_chains=2`` on one CPU device runs the
   NUTS chains one after the other (numpyro's fallback from ``"parallel"``); a
   third variant uses ``chain_method="vectorized"``, as the family does.
   ``ratio`` = baseline time / in-program NUTS time per chain-generation.
3. ``scaling``: the conjugate JAX chain against C and M, and the NUTS chain
   against C (log-log slopes).

Workers run with one BLAS/OpenMP thread, as ``bench.gmm_throughput`` (the
reason is there).
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

PRIOR = dict(mu0=0.0, kappa0=1.0, alpha0=3.0, beta0=1.0)  # the family's defaults
NUTS = dict(nuts_warmup=200, nuts_samples=200, nuts_chains=2)  # the family's defaults


def jax_chain(c, g, m, update="refit", fit="conjugate", method="sample", nuts=None, repeats=2):
    import jax
    import jax.numpy as jnp

    from sim.run import run

    settings = dict(
        sample_size=m, update=update, fit=fit, method=method, dtype=jnp.float32, **PRIOR
    )
    if fit == "nuts":
        settings.update(nuts or NUTS)

    def call():
        run(
            "bayes",
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
    return dict(jax_s=best, first_call_s=first)


def _conjugate(pm, pk, pa, pb, n, xbar, scatter):
    kn = pk + n
    mn = (pk * pm + n * xbar) / kn
    an = pa + 0.5 * n
    bn = pb + 0.5 * scatter + 0.5 * (pk * n / kn) * (xbar - pm) ** 2
    return mn, kn, an, bn


def numpy_chain(c, g, m, update) -> float:
    """The conjugate chain vectorised over chains (float64), joint predictive."""
    rng = np.random.default_rng(0)
    p0 = (PRIOR["mu0"], PRIOR["kappa0"], PRIOR["alpha0"], PRIOR["beta0"])
    prior = tuple(np.full(c, v) for v in p0)
    mu, s2 = np.zeros(c), np.ones(c)  # generation 0: the real N(0, 1)
    t = time.perf_counter()
    for _ in range(g):
        x = mu[:, None] + np.sqrt(s2)[:, None] * rng.standard_normal((c, m))
        xbar = x.mean(1)
        scatter = ((x - xbar[:, None]) ** 2).sum(1)
        post = _conjugate(*prior, m, xbar, scatter)
        if update == "sequential":
            prior = post
        mn, kn, an, bn = post
        s2 = bn / rng.gamma(an)
        mu = mn + np.sqrt(s2 / kn) * rng.standard_normal(c)
    return time.perf_counter() - t


def loop_chain(c, g, m, update) -> float:
    """The conjugate chain chain by chain (a Python loop; NumPy for the M points)."""
    rng = np.random.default_rng(0)
    p0 = (PRIOR["mu0"], PRIOR["kappa0"], PRIOR["alpha0"], PRIOR["beta0"])
    t = time.perf_counter()
    for _ in range(c):
        prior, mu, s2 = p0, 0.0, 1.0
        for _ in range(g):
            x = rng.normal(mu, math.sqrt(s2), m)
            xbar = x.mean()
            scatter = float(((x - xbar) ** 2).sum())
            post = _conjugate(*prior, m, xbar, scatter)
            if update == "sequential":
                prior = post
            mn, kn, an, bn = post
            s2 = bn / rng.gamma(an)
            mu = rng.normal(mn, math.sqrt(s2 / kn))
    return time.perf_counter() - t


def numpyro_chain(c, g, m, jit_model_args: bool, chain_method: str, nuts=None) -> dict:
    """numpyro's standalone MCMC(NUTS) refitted chain by chain (float32, JAX's default)."""
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC
    from numpyro.infer import NUTS as NUTSKernel

    nuts = nuts or NUTS
    mu0, k0, a0, b0 = (PRIOR[k] for k in ("mu0", "kappa0", "alpha0", "beta0"))

    def model(x):
        sigma2 = numpyro.sample("sigma2", dist.InverseGamma(a0, b0))
        mu = numpyro.sample("mu", dist.Normal(mu0, jnp.sqrt(sigma2 / k0)))
        numpyro.sample("x", dist.Normal(mu, jnp.sqrt(sigma2)), obs=x)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "not enough devices to run parallel chains"
        mcmc = MCMC(
            NUTSKernel(model),
            num_warmup=nuts["nuts_warmup"],
            num_samples=nuts["nuts_samples"],
            num_chains=nuts["nuts_chains"],
            chain_method=chain_method,
            jit_model_args=jit_model_args,
            progress_bar=False,
        )
    rng = np.random.default_rng(0)
    key = jax.random.key(0)
    t0 = time.perf_counter()
    mcmc.run(key, rng.standard_normal(m).astype(np.float32))  # compilation
    jax.block_until_ready(mcmc.get_samples())
    first = time.perf_counter() - t0
    t = time.perf_counter()
    for ci in range(c):
        x = rng.standard_normal(m).astype(np.float32)
        for gi in range(g):
            mcmc.run(jax.random.fold_in(key, ci * g + gi + 1), x)
            s = mcmc.get_samples()
            i = rng.integers(s["mu"].shape[0])
            mu, s2 = float(s["mu"][i]), float(s["sigma2"][i])
            x = rng.normal(mu, math.sqrt(s2), m).astype(np.float32)
    return dict(numpyro_s=time.perf_counter() - t, numpyro_first_s=first)


def _worker(spec: dict) -> dict:
    out = []
    for row in spec["configs"]:
        c, g, m = row["C"], row["G"], row["M"]
        r = dict(row)
        r.setdefault("update", "refit")
        r.setdefault("fit", "conjugate")
        r.setdefault("method", "sample")
        r.update(jax_chain(c, g, m, r["update"], r["fit"], r["method"], spec.get("nuts")))
        if spec.get("conjugate_too"):
            conj = jax_chain(c, g, m, r["update"], "conjugate", r["method"])
            r["conj_s"], r["conj_first_s"] = conj["jax_s"], conj["first_call_s"]
        if spec.get("baselines") and r["fit"] == "conjugate":
            r["numpy_s"] = min(numpy_chain(c, g, m, r["update"]) for _ in range(2))
            sub = row.get("loop_chains", min(c, 100))
            r["loop_chains"] = sub
            r["loop_s"] = loop_chain(sub, g, m, r["update"])
        for name, kw in spec.get("numpyro", {}).items():
            res = numpyro_chain(kw["chains"], g, m, kw["jit"], kw["method"], spec.get("nuts"))
            r[f"numpyro_{name}"] = dict(kw, **res)
        out.append(r)
    return dict(rows=out)


def _plan(quick: bool) -> list[dict]:
    if quick:
        nuts = dict(nuts_warmup=20, nuts_samples=20, nuts_chains=2)
        return [
            dict(
                name="conjugate",
                baselines=True,
                configs=[
                    dict(C=64, G=3, M=10, loop_chains=4),
                    dict(C=64, G=3, M=10, update="sequential", loop_chains=4),
                    dict(C=64, G=3, M=10, method="exact", loop_chains=4),
                ],
            ),
            dict(
                name="nuts",
                nuts=nuts,
                conjugate_too=True,
                numpyro=dict(
                    jit=dict(chains=2, jit=True, method="sequential"),
                    default=dict(chains=1, jit=False, method="sequential"),
                    vectorized=dict(chains=2, jit=True, method="vectorized"),
                ),
                configs=[dict(C=4, G=2, M=10, fit="nuts")],
            ),
            dict(name="scaling_C", configs=[dict(C=c, G=3, M=10) for c in (32, 64)]),
        ]
    return [
        dict(
            name="conjugate",
            baselines=True,
            configs=[
                dict(C=10000, G=100, M=10, loop_chains=200),
                dict(C=10000, G=100, M=10, update="sequential", loop_chains=200),
                dict(C=10000, G=100, M=100, loop_chains=200),
                dict(C=10000, G=100, M=100, update="sequential", loop_chains=200),
                dict(C=10000, G=100, M=100, method="exact", loop_chains=200),
            ],
        ),
        dict(
            name="nuts",
            conjugate_too=True,
            numpyro=dict(
                jit=dict(chains=4, jit=True, method="sequential"),
                default=dict(chains=1, jit=False, method="sequential"),
                vectorized=dict(chains=4, jit=True, method="vectorized"),
            ),
            configs=[dict(C=32, G=3, M=10, fit="nuts")],
        ),
        dict(name="scaling_C", configs=[dict(C=c, G=100, M=10) for c in (1000, 10000, 100000)]),
        dict(name="scaling_M", configs=[dict(C=10000, G=100, M=m) for m in (10, 100, 1000)]),
        dict(
            name="scaling_C_nuts",
            configs=[dict(C=c, G=2, M=10, fit="nuts") for c in (8, 32, 128)],
        ),
    ]


def _us(seconds, chains, gens) -> float:
    return seconds / (chains * gens) * 1e6


def _report(groups: dict) -> str:
    lines = []
    if "conjugate" in groups:
        head = (
            f"{'conjugate':<10} {'update':<10} {'method':<6} {'C':>6} {'G':>4} {'M':>5} "
            f"{'JAX s':>7} {'compile s':>9} {'us/ch-gen':>9} {'NumPy us':>9} {'ratio':>6} "
            f"{'loop us':>8} {'ratio':>6}"
        )
        lines += [head, "-" * len(head)]
        for r in groups["conjugate"]["rows"]:
            j = _us(r["jax_s"], r["C"], r["G"])
            n = _us(r["numpy_s"], r["C"], r["G"])
            lo = _us(r["loop_s"], r["loop_chains"], r["G"])
            lines.append(
                f"{'':<10} {r['update']:<10} {r['method']:<6} {r['C']:>6} {r['G']:>4} {r['M']:>5} "
                f"{r['jax_s']:7.3f} {r['first_call_s'] - r['jax_s']:9.1f} {j:9.3f} {n:9.3f} "
                f"{n / j:6.2f} {lo:8.1f} {lo / j:6.0f}"
            )
        lines.append("")
    if "nuts" in groups:
        res = groups["nuts"]
        for r in res["rows"]:
            j = _us(r["jax_s"], r["C"], r["G"])
            cj = _us(r["conj_s"], r["C"], r["G"])
            counts = res.get("nuts") or NUTS
            lines.append(
                f"NUTS in the program (C={r['C']}, G={r['G']}, M={r['M']}, warmup "
                f"{counts['nuts_warmup']}, samples {counts['nuts_samples']}, chains "
                f"{counts['nuts_chains']}): {r['jax_s']:.3f} s, {j / 1e3:.2f} ms per chain-gen "
                f"(compile {r['first_call_s'] - r['jax_s']:.1f} s); conjugate at the same sizes "
                f"{cj:.2f} us per chain-gen; NUTS / conjugate = {j / cj:,.0f}x"
            )
            for name in ("jit", "vectorized", "default"):
                nr = r.get(f"numpyro_{name}")
                if nr is None:
                    continue
                u = _us(nr["numpyro_s"], nr["chains"], r["G"])
                lines.append(
                    f"  numpyro MCMC(NUTS) chain by chain, jit_model_args={nr['jit']}, "
                    f"chain_method={nr['method']!r}: {u / 1e3:.2f} ms per chain-gen "
                    f"({nr['chains']} chains x {r['G']} generations, first run "
                    f"{nr['numpyro_first_s']:.1f} s untimed); / in-program NUTS = {u / j:.1f}x"
                )
        lines.append("")
    for name, res in groups.items():
        if name.startswith("scaling"):
            axis = name.split("_")[1]
            xs = [r[axis] for r in res["rows"]]
            ys = [r["jax_s"] for r in res["rows"]]
            pts = ", ".join(
                f"{x}: {y:.3f} s ({_us(y, r['C'], r['G']):.3g} us/ch-gen)"
                for x, y, r in zip(xs, ys, res["rows"], strict=True)
            )
            fit = res["rows"][0].get("fit", "conjugate")
            lines.append(f"{fit} cost vs {axis}: slope {harness.loglog_slope(xs, ys):.2f}  ({pts})")
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
        "bench", "results", "bayes_cpu_quick.json" if args.quick else "bayes_cpu.json"
    )
    env = harness.worker_env(one_thread=True)  # one BLAS thread: see the docstring
    return harness.run_groups(
        "bench.bayes_throughput",
        _plan(args.quick),
        _report,
        argv=argv,
        quick=args.quick,
        out=out,
        env=env,
        extra=lambda spec: dict(nuts=spec.get("nuts")),
    )


if __name__ == "__main__":
    sys.exit(main())
