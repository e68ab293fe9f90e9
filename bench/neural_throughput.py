"""Neural chains: vmapped training over chains against a Python loop over chains, one run.

One *generation* of a chain = sample a corpus from the current model, count its
(window, next) pairs, train ``steps`` Adam steps on them (the family's
``sample``, ``ops.stats`` and ``ops.fit_stats_info``). Measured, in one process and one
run (so the ratio is against a baseline of the same moment's load):

* vmapped: one jitted ``vmap`` of the generation over C chains;
* loop: the same jitted generation for one chain, called C times from Python (the same
  keys; the chains' results agree with the vmapped ones, tests/test_neural.py);

as chains per second (best of ``--repeats`` after a compile), for C in ``--chains``, the
window MLP at several hidden widths and the transformer, and the corpus size M. The
training cost does not depend on M (full-batch loss over the (V+1)^context windows);
sampling and counting do. No GPU was lent to this run (see bench/README.md); PyTorch
is not installed here, so there is no PyTorch baseline.

    python -m bench.neural_throughput                  # writes bench/results/neural_cpu.*
    python -m bench.neural_throughput --quick
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from bench import harness

RESULTS = os.path.join(harness.ROOT, "bench", "results", "neural_cpu.json")


def _setup(model, hidden, sample_size, steps):
    import jax

    from sim.families.neural import spec as nspec
    from sim.families.neural.family import neural_family, real_params

    s = nspec.check(
        {
            **nspec.DEFAULTS,
            "model": model,
            "hidden": hidden,
            "sample_size": sample_size,
            "steps": steps,
        }
    )
    cfg = nspec.config(s)
    fam = neural_family(cfg, nspec.decode_rule(s), s["learning_rate"])
    p0 = real_params(cfg)

    def generation(key, params):
        k1, k2 = jax.random.split(key)
        data = fam.sample(k1, params, sample_size)
        return fam.ops.fit_stats_info(k2, fam.ops.stats(data))[0]

    from sim.families.neural.family import built

    return generation, p0, built(cfg).num_params


def measure(model, hidden, sample_size, steps, chains, repeats):
    import jax

    generation, p0, nparams = _setup(model, hidden, sample_size, steps)
    one = jax.jit(generation)
    many = jax.jit(jax.vmap(generation, (0, None)))
    out = []
    for c in chains:
        keys = jax.random.split(jax.random.key(0), c)

        def vm(keys=keys):
            jax.block_until_ready(many(keys, p0))

        def loop(keys=keys, c=c):
            for i in range(c):
                jax.block_until_ready(one(keys[i], p0))

        t_v = harness.best_time(vm, repeats)
        t_l = harness.best_time(loop, repeats)
        out.append(
            dict(
                model=model,
                hidden=hidden,
                params=nparams,
                sample_size=sample_size,
                steps=steps,
                chains=c,
                vmapped_s=t_v,
                loop_s=t_l,
                vmapped_chains_per_s=c / t_v,
                loop_chains_per_s=c / t_l,
                speedup=t_l / t_v,
            )
        )
        print(json.dumps(out[-1]), flush=True)
    return out


def table(rows) -> str:
    head = (
        f"{'model':12} {'hidden':>6} {'params':>7} {'M':>5} {'C':>4} "
        f"{'vmap ch/s':>10} {'loop ch/s':>10} {'speedup':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['model']:12} {r['hidden']:6d} {r['params']:7d} {r['sample_size']:5d} "
            f"{r['chains']:4d} {r['vmapped_chains_per_s']:10.2f} {r['loop_chains_per_s']:10.2f} "
            f"{r['speedup']:8.2f}"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer cases (a smoke run)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--output", default=RESULTS)
    args = ap.parse_args(argv)
    chains = (1, 4) if args.quick else (1, 4, 16, 64)
    cases = [("mlp", 64, 64, chains)]
    if not args.quick:
        cases += [
            ("mlp", 16, 64, (16,)),
            ("mlp", 256, 64, (16,)),
            ("transformer", 64, 64, (1, 16)),
            ("mlp", 64, 16, (16,)),
            ("mlp", 64, 256, (16,)),
        ]
    meta = harness.metadata("bench.neural_throughput", argv, gpu="none lent to this run")
    rows = []
    for model, hidden, m, cs in cases:
        rows += measure(model, hidden, m, args.steps, cs, args.repeats)
    meta["loadavg_after"] = os.getloadavg()
    text = table(rows)
    print(text)
    if not args.quick:
        harness.write_results(args.output, dict(meta=meta, rows=rows), text + "\n", ".txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
