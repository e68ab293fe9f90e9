r"""What the data regimes cost, against the plain replace chain measured in the same run.

Run ``python -m bench.regimes_throughput`` (a few minutes on a 2-core CPU) or
``--quick`` (tiny sizes, meaningless numbers). It prints a table and writes
JSON and text to ``bench/results/`` (``--out``). Nothing is asserted.

1. ``overhead``: the time of a compiled run of the Gaussian chain (float32)
   under each regime, divided by the plain chain's (``run_gaussian`` without a
   regime) for the same (C, G, M) and method: ``ratio`` > 1 means the regime
   costs more. ``exact`` draws summaries (O(1) in M), ``sample`` draws M points.
2. ``categorical``: the same for the categorical chain (K = M = 1000).
3. ``growth``: time and per-chain state bytes against G for ``accumulate``
   (summaries: constant state, linear time) and ``subsample`` (a stored pool:
   state O(G M), time O(G^2 M)), with the log-log slope of time in G.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from bench import harness


def _regimes():
    from sim.families.gaussian import gaussian_verifier
    from sim.regimes import Regime

    return {
        "replace": Regime.replace(),
        "accumulate": Regime.accumulate(),
        "fresh(0.1)": Regime.fresh(0.1),
        "anchored(0.5)": Regime.anchored(0.5),
        "subsample(M)": None,  # built per M
        "verify(k=2)": Regime.replace(verifier=gaussian_verifier(k=2.0, accept_bad=0.1)),
    }


def gaussian_overhead(c, g, m, repeats):
    import jax
    import jax.numpy as jnp

    from sim.regimes import Regime
    from sim.runners import run_gaussian

    rows = []
    for method in ("exact", "sample"):

        def run(regime, method=method):
            return lambda: run_gaussian(
                jax.random.key(0, impl="philox4x32"),
                sample_size=m,
                num_chains=c,
                num_generations=g,
                method=method,
                regime=regime,
                dtype=jnp.float32,
                snapshot_fields=(),
                progress=False,
            )

        base = harness.best_time(run(None), repeats)
        rows.append(
            dict(
                part="overhead",
                method=method,
                regime="plain",
                c=c,
                g=g,
                m=m,
                seconds=base,
                ns_per_chain_gen=1e9 * base / (c * g),
                ratio=1.0,
            )
        )
        for name, regime in _regimes().items():
            if name == "subsample(M)":
                regime = Regime.subsample(m)
            needs_points = name.startswith(("subsample", "verify"))
            if method == "exact" and needs_points:
                continue
            t = harness.best_time(run(regime), repeats)
            rows.append(
                dict(
                    part="overhead",
                    method=method,
                    regime=name,
                    c=c,
                    g=g,
                    m=m,
                    seconds=t,
                    ns_per_chain_gen=1e9 * t / (c * g),
                    ratio=t / base,
                )
            )
    return rows


def categorical_overhead(c, g, k, repeats):
    import jax
    import jax.numpy as jnp

    from sim.families.categorical import Vocabulary, categorical_verifier
    from sim.regimes import Regime
    from sim.runners import run_categorical

    vocab = Vocabulary.zipf(k, 1.1)

    def run(regime):
        return lambda: run_categorical(
            jax.random.key(0, impl="philox4x32"),
            vocabulary=vocab,
            sample_size=k,
            num_chains=c,
            num_generations=g,
            regime=regime,
            dtype=jnp.float32,
            first_passage_fields=(),
            progress=False,
        )

    base = harness.best_time(run(None), repeats)
    rows = [dict(part="categorical", regime="plain", c=c, g=g, k=k, seconds=base, ratio=1.0)]
    regimes = {
        "accumulate": Regime.accumulate(),
        "fresh(0.1)": Regime.fresh(0.1),
        "verify": Regime.replace(verifier=categorical_verifier(vocab, float(vocab.probs[99]))),
    }
    for name, regime in regimes.items():
        t = harness.best_time(run(regime), repeats)
        rows.append(dict(part="categorical", regime=name, c=c, g=g, k=k, seconds=t, ratio=t / base))
    return rows


def growth(c, m, gens, repeats):
    import jax
    import jax.numpy as jnp

    from sim.regimes import Regime
    from sim.runners import run_gaussian

    rows = []
    for name, regime in (
        ("accumulate", Regime.accumulate()),
        ("subsample(M)", Regime.subsample(m)),
    ):
        times = []
        for g in gens:
            out = {}

            def call(g=g, regime=regime, out=out):
                out["res"] = run_gaussian(
                    jax.random.key(0, impl="philox4x32"),
                    sample_size=m,
                    num_chains=c,
                    num_generations=g,
                    method="sample",
                    regime=regime,
                    dtype=jnp.float32,
                    snapshot_fields=(),
                    progress=False,
                )

            t = harness.best_time(call, repeats)
            res = out["res"]
            state = sum(np.asarray(x).nbytes for x in jax.tree.leaves(res.final)) // c
            times.append(t)
            rows.append(
                dict(
                    part="growth",
                    regime=name,
                    c=c,
                    m=m,
                    g=g,
                    seconds=t,
                    state_bytes_per_chain=int(state),
                )
            )
        slope = float(np.polyfit(np.log(gens), np.log(times), 1)[0])
        for r in rows[-len(gens) :]:
            r["time_slope_in_g"] = slope
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)
    if args.quick:
        c, g, m, k, gens, rep = 256, 10, 20, 100, (5, 10), 1
    else:
        c, g, m, k, gens, rep = 8192, 100, 20, 1000, (25, 50, 100, 200), 2
    rows = gaussian_overhead(c, g, m, rep)
    rows += categorical_overhead(min(c, 1000), min(g, 50), k, rep)
    rows += growth(min(c, 2048), m, gens, rep)
    lines = [f"{'part':12} {'method':7} {'regime':14} {'sizes':28} {'s':>8} {'ratio':>7} extra"]
    for r in rows:
        sizes = ",".join(f"{key}={r[key]}" for key in ("c", "g", "m", "k") if key in r)
        extra = ""
        if "state_bytes_per_chain" in r:
            extra = f"state {r['state_bytes_per_chain']} B/chain, slope {r['time_slope_in_g']:.2f}"
        elif "ns_per_chain_gen" in r:
            extra = f"{r['ns_per_chain_gen']:.0f} ns/chain-gen"
        ratio = f"{r['ratio']:.2f}" if "ratio" in r else ""
        lines.append(
            f"{r['part']:12} {r.get('method', ''):7} {r['regime']:14} {sizes:28} "
            f"{r['seconds']:8.3f} {ratio:>7} {extra}"
        )
    text = "\n".join(lines)
    print(text)
    if not args.quick:
        meta = harness.metadata("bench.regimes_throughput", argv, when=time.ctime())
        path = os.path.join(args.out, "regimes_cpu.json")
        harness.write_results(path, dict(meta=meta, rows=rows), text + "\n", suffix=".txt")


if __name__ == "__main__":
    main()
