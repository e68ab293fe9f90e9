r"""Speed of :func:`sim.random.multinomial` against NumPy's ``Generator.multinomial``.

Run ``python -m bench.multinomial_speed`` (about 2 minutes on 2 cores; ``--quick``
for the first configuration only). It prints ns per category per chain, wall clock,
for (chains C, categories K, tokens M) = (1000, 1000, 1000), (50, 100000, 100000) and
(50, 100000, 1000):

* JAX, float32 and float64 (each in its own process: float32 without
  ``jax_enable_x64``), jitted as ``jax.jit(jax.vmap(lambda k, p: multinomial(k, M,
  p)))``, every chain with its own probability vector (the counts / M of a previous
  draw from the uniform vector, as in the real chain), timed after a warm-up call,
  best of 5 (the variants below timed in turns, so that a busy spell of the
  machine hits them all); compile time apart;
* the same inside a ``lax.scan`` of 10 generations (p <- counts / M, as in the
  chain): ns per category per chain and generation. One call allocates and fills
  its temporaries (about 5 K floats per chain) once, which a scan shares between
  generations;
* NumPy on one core: ``rng.multinomial(M, p)`` for each chain's ``p``, best of 3;
* where the JAX time goes (float32 unless ``--profile-f64``), by ablation: the same
  jitted program with parts of the sampler replaced by a deterministic stand-in
  (``floor(n q)``): the tree walk alone (masses, chunk slicing, children), plus the
  random words, plus the inversion passes, plus the BTRS passes (the first pass
  complete), plus the fallback (the real sampler). Each share is the difference
  of two consecutive rows, so it carries the noise of both.

"other load" is the 1-minute load average before each group (other processes on
this machine slow everything down; compare JAX and NumPy within one run).
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from bench import harness

CONFIGS = [(1000, 1000, 1000), (50, 100_000, 100_000), (50, 100_000, 1000)]
SCAN_GENERATIONS = 10
TIMING_ROUNDS = 5


def _probs(c, k, m, seed=0):
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(m, np.full(k, 1.0 / k), size=c)
    return counts / m


def numpy_time(c, k, m):
    p = _probs(c, k, m)
    rng = np.random.default_rng(1)

    def run():
        for row in p:
            rng.multinomial(m, row)

    return harness.best_time(run, 3, warmup=False)


def _passes(stage):
    """The sampler's binomial passes with parts replaced by floor(n q) (deterministic,
    cheap), for ``multinomial(..., passes=...)``.

    stage: "tree" (no randomness at all), "words" (+ the first pass's random words),
    "inversion" (+ real inversion passes), "first" (+ real BTRS passes), "full".
    """
    import jax.numpy as jnp

    import sim.random as sr

    real = sr.binomial_passes()
    if stage == "full":
        return real

    def stand_in(keys, salt, n, q, plan):
        x = jnp.floor(n * q)
        if stage == "tree":
            return x
        width = jnp.finfo(n.dtype).bits
        lane = jnp.broadcast_to(jnp.arange(n.shape[1], dtype=jnp.uint32), n.shape)
        num = 1 if plan[0] == "inversion" else 2 * plan[1]
        w = sr.counter_words(keys, salt, lane, 0, sr.FIRST_PASS_TAG, num, width)
        bit = (w[..., 0] & 1).astype(n.dtype) if num == 1 else (w.sum(-1) & 1).astype(n.dtype)
        return jnp.minimum(x + bit, n)

    def first_pass(plan):
        if stage == "first" or (stage == "inversion" and plan[0] == "inversion"):
            return real.first_pass(plan)
        return sr.batch_rows(lambda keys, salt, n, q: stand_in(keys, salt, n, q, plan))

    finish = sr.batch_rows(lambda keys, salt, n, q, x: jnp.where(jnp.isnan(x), jnp.floor(n * q), x))
    return sr.BinomialPasses(first_pass, finish)


def jax_worker(dtype_name, configs, profile):
    import jax

    if dtype_name == "float64":
        jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_default_prng_impl", "philox4x32")
    import jax.numpy as jnp

    from sim.random import multinomial

    dtype = jnp.dtype(dtype_name)
    out = []
    for c, k, m in configs:
        p = jnp.asarray(_probs(c, k, m), dtype)
        keys = jax.random.split(jax.random.key(2), c)
        stages = ["tree", "words", "inversion", "first", "full"] if profile else ["full"]
        row = {"C": c, "K": k, "M": m, "dtype": dtype_name, "load": os.getloadavg()[0]}
        calls = {}  # name -> (callable, work): compiled first, then timed in turns
        for stage in stages:
            passes = _passes(stage)
            f = jax.jit(jax.vmap(lambda kk, pp, m=m, ps=passes: multinomial(kk, m, pp, passes=ps)))
            t0 = time.perf_counter()
            x = jax.block_until_ready(f(keys, p))
            if stage == "full":
                row["compile_s"] = time.perf_counter() - t0
                x = np.asarray(x)
                assert np.all(x.sum(1) == m) and np.all(x[np.asarray(p) == 0] == 0)
            calls[stage] = (f, c * k)

        def chain(kk, pp, m=m):
            def step(pp, g):
                x = multinomial(jax.random.fold_in(kk, g), m, pp)
                return x.astype(pp.dtype) / m, None

            return jax.lax.scan(step, pp, jnp.arange(SCAN_GENERATIONS))[0]

        f = jax.jit(jax.vmap(chain))
        jax.block_until_ready(f(keys, p))
        calls["scan"] = (f, c * k * SCAN_GENERATIONS)
        best = dict.fromkeys(calls, float("inf"))
        for _ in range(TIMING_ROUNDS):  # round robin: slow phases of the machine hit all
            for name, (f, _work) in calls.items():
                t0 = time.perf_counter()
                jax.block_until_ready(f(keys, p))
                best[name] = min(best[name], time.perf_counter() - t0)
        for name, (_f, work) in calls.items():
            row[f"{name}_ns"] = best[name] / work * 1e9
        out.append(row)
    return out


def _run_worker(dtype_name, configs, profile):
    spec = dict(dtype=dtype_name, configs=configs, profile=profile)
    try:
        return harness.run_worker("bench.multinomial_speed", spec).result
    except harness.WorkerError as e:
        raise SystemExit(f"worker {dtype_name} failed ({e})") from None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the first configuration only")
    ap.add_argument("--profile-f64", action="store_true", help="the time breakdown in float64 too")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        spec = json.loads(args.worker)
        configs = [tuple(c) for c in spec["configs"]]
        harness.emit(jax_worker(spec["dtype"], configs, spec["profile"]))
        return
    configs = CONFIGS[:1] if args.quick else CONFIGS
    res = {"float32": _run_worker("float32", configs, True)}
    res["float64"] = _run_worker("float64", configs, args.profile_f64)
    print(
        f"{'C':>5} {'K':>7} {'M':>7} | {'JAX f32':>8} {'JAX f64':>8} {'NumPy':>7} "
        f"| {'f32/NumPy':>9} | {'scan f32':>8} {'scan f64':>8} | {'compile f32, f64':>16} "
        "| other load"
    )
    for i, (c, k, m) in enumerate(configs):
        load = os.getloadavg()[0]
        t_np = numpy_time(c, k, m) / (c * k) * 1e9
        r32, r64 = res["float32"][i], res["float64"][i]
        print(
            f"{c:>5} {k:>7} {m:>7} | {r32['full_ns']:>8.1f} {r64['full_ns']:>8.1f} "
            f"{t_np:>7.1f} | {r32['full_ns'] / t_np:>8.2f}x | "
            f"{r32['scan_ns']:>8.1f} {r64['scan_ns']:>8.1f} | "
            f"{r32['compile_s']:>6.1f} s {r64['compile_s']:>6.1f} s | "
            f"{r32['load']:.2f} / {r64['load']:.2f} / {load:.2f}"
        )
    print("\nwhere the time goes (ns per category per chain; each share = row minus the row above)")
    for dtype_name, rows in res.items():
        for r in rows:
            if "tree_ns" not in r:
                continue
            prev, parts = 0.0, []
            for stage, label in [
                ("tree", "tree walk"),
                ("words", "random words"),
                ("inversion", "inversion passes"),
                ("first", "BTRS passes"),
                ("full", "fallback"),
            ]:
                parts.append(f"{label} {r[f'{stage}_ns'] - prev:+.1f}")
                prev = r[f"{stage}_ns"]
            print(
                f"  {dtype_name} C={r['C']} K={r['K']} M={r['M']}: "
                + ", ".join(parts)
                + f" = {r['full_ns']:.1f}"
            )


if __name__ == "__main__":
    main()
