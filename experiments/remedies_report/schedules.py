"""Sample-size schedules M_t = ceil(M0 t^p): E[W2^2] and its parts against G6."""

from __future__ import annotations

import math
import time

import numpy as np

from experiments.remedies_report.base import (
    Context,
    Run,
    chain_variances,
    comparison,
    measurable,
    report_generations,
    run_key,
)


def schedule_theory(g: int, sizes: np.ndarray, est: str) -> dict:
    """G6 with the schedule, and the squared CV of sigma_n^2 (measurability)."""
    from theory import mixing as tm

    n = np.arange(g + 1)
    w2 = tm.schedule_w2(n, sizes, est)
    # sigma_n^2 = prod_t G_t, E[G_t^2]/E[G_t]^2 = (M_t + 1)/(M_t - 1) for either divisor.
    log_ratio = np.log1p(2.0 / (sizes.astype(np.float64) - 1.0))
    cv2 = np.expm1(np.concatenate([[0.0], np.cumsum(log_ratio)]))
    return dict(
        w2_mean=np.asarray(w2.total, np.float64),
        w2_mean_part=np.asarray(w2.mean_part, np.float64),
        w2_std_part=np.asarray(w2.std_part, np.float64),
        variance_cv2=cv2[: g + 1],
        inv_size_sum=np.concatenate([[0.0], np.cumsum(1.0 / sizes)])[: g + 1],
    )


def compare_schedule(run: Run) -> list:
    """E[W2^2] and its two parts against G6 with the schedule."""
    res, th = run.result, run.theory
    c, g = res.num_chains, len(res.generations) - 1
    rows = []
    for n in report_generations(g):
        ok, why = measurable(run, n, np.ones(1), c)
        w2 = res.moments["w2_squared"]
        note = why or f"sum 1/M_t = {th['inv_size_sum'][n]:.3g}"
        rows.append(
            comparison(run, "E[W2^2] (G6)", n, w2.mean[n], w2.sem[n], th["w2_mean"][n], ok, note)
        )
        mu = res.moments["mean"]
        rows.append(
            comparison(
                run,
                "Var[mu] (G6 mean part)",
                n,
                mu.var[n],
                mu.var_se[n],
                th["w2_mean_part"][n],
                ok,
                why,
            )
        )
        part = (np.sqrt(chain_variances(run, n)) - 1.0) ** 2
        rows.append(
            comparison(
                run,
                "E[(s-1)^2] (G6 std part)",
                n,
                part.mean(),
                part.std(ddof=1) / math.sqrt(c),
                th["w2_std_part"][n],
                ok,
                why,
            )
        )
    return rows


def schedules(ctx: Context) -> None:
    """The replace chain with M_t = ceil(M0 t^p), exact draws (sizes change with t)."""
    from sim.regimes import Regime
    from sim.runners import run_gaussian
    from theory import mixing as tm

    config = ctx.config
    est, g, m0 = config.estimator, config.schedule_generations, config.schedule_m0
    for p in config.schedule_powers:
        sizes = np.asarray(tm.power_schedule(g, m0, p)).astype(np.int64)
        regime = Regime.replace(schedule=tuple(int(x) for x in sizes))
        label = f"sched p={p:g}"
        res = ctx.simulate(
            run_gaussian,
            label,
            run_key(ctx.root, "schedule", round(p * 1000)),
            config.schedule_chains,
            g,
            sample_size=m0,
            estimator=est,
            method="exact",
            regime=regime,
            tail_k=config.tail_k,
            snapshot_generations=tuple(report_generations(g)),
            snapshot_fields=("log_var",),
        )
        t = time.perf_counter()
        th = schedule_theory(g, sizes.astype(np.float64), est)
        res.timings["theory_s"] = time.perf_counter() - t
        settings = dict(kind="replace", power=p, m0=m0, estimator=est, sizes=sizes)
        run = Run(label, "schedule", "gaussian", regime, settings, res, th)
        ctx.add(run, compare_schedule(run))
