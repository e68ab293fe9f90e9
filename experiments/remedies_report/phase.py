"""The phase diagram: the fresh-data chain over (alpha, M) against F1, with the F1
fixed point's contours."""

from __future__ import annotations

import math
import time

import numpy as np

from experiments.remedies_report.base import Context, Run, comparison, measurable, run_key
from experiments.remedies_report.config import real_count


def phase_cells(config):
    """Distinct (M, R) cells of the grid, and each nominal cell's (M, R)."""
    grid = {}
    for m in config.phase_sample_sizes:
        for a in config.phase_alphas:
            grid[(m, a)] = (m, real_count(a, m))
    return sorted(set(grid.values())), grid


def compare_phase(run: Run) -> list:
    """E[sigma_G^2] and Var(mu_G) of one (M, R) cell against F1."""
    res, th = run.result, run.theory
    c, g = res.num_chains, len(res.generations) - 1
    s2 = np.exp(res.final.params.log_var.astype(np.float64))
    ok, why = measurable(run, g, s2, c)
    mu = res.moments["mean"]
    return [
        comparison(
            run,
            "E[s2] (F1)",
            g,
            s2.mean(),
            s2.std(ddof=1) / math.sqrt(c),
            th["var_mean"][g],
            ok,
            why,
        ),
        comparison(run, "Var[mu] (F1)", g, mu.var[g], mu.var_se[g], th["mean_var"][g], ok, why),
    ]


def run_phase(ctx: Context) -> dict:
    """The fresh-data grid: one run per distinct (M, R); arrays for the heatmaps."""
    import jax.numpy as jnp

    from sim.regimes import Regime
    from sim.runners import run_gaussian
    from theory import mixing as tm

    config = ctx.config
    est, g, c = config.phase_estimator, config.phase_generations, config.phase_chains
    cells, grid = phase_cells(config)
    n = np.arange(g + 1)
    stats = {}
    for m, r in cells:
        alpha_eff = r / m
        # alpha = 0 is the replace chain (the points path cannot draw 0 real points).
        regime = Regime.fresh(alpha_eff) if r else Regime.replace()
        label = f"ph M={m} a={alpha_eff:.3g}"
        res = ctx.simulate(
            run_gaussian,
            label,
            run_key(ctx.root, "phase", (m * 100_003 + r) % (2**31 - 1)),
            c,
            g,
            sample_size=m,
            estimator=est,
            method=config.method,
            regime=regime,
            snapshot_fields=(),
            tail_k=config.tail_k,
        )
        t = time.perf_counter()
        fr = tm.fresh_fraction_variance(jnp.asarray(n, jnp.float64), m, alpha_eff, est)
        fp = tm.fresh_fraction_fixed_point(m, alpha_eff, est)
        th = dict(
            var_mean=np.asarray(fr.expected_variance, np.float64),
            mean_var=np.asarray(fr.mean_variance, np.float64),
            var_fixed_point=np.full(g + 1, float(fp.expected_variance)),
            mean_var_fixed_point=np.full(g + 1, float(fp.mean_variance)),
        )
        if r == 0:
            from theory import gaussian as tg

            th["variance_cv2"] = np.asarray(tg.variance_cv2(jnp.asarray(n, jnp.float64), m))
        res.timings["theory_s"] = time.perf_counter() - t
        settings = dict(kind="fresh", sample_size=m, real=r, alpha_eff=alpha_eff, estimator=est)
        run = Run(label, "phase", "gaussian", regime, settings, res, th)
        ctx.add(run, compare_phase(run))
        s2 = np.exp(res.final.params.log_var.astype(np.float64))
        stats[(m, r)] = (
            s2.mean(),
            s2.std(ddof=1) / math.sqrt(c),
            res.moments["mean"].var[g],
            th["var_mean"][g],
            th["mean_var"][g],
        )
    alphas, ms = tuple(config.phase_alphas), tuple(config.phase_sample_sizes)
    shape = (len(ms), len(alphas))
    out = {
        k: np.zeros(shape)
        for k in ("var_mean", "var_sem", "mean_var", "theory_var", "theory_mean_var", "alpha_eff")
    }
    for i, m in enumerate(ms):
        for j, a in enumerate(alphas):
            mm, r = grid[(m, a)]
            v = stats[(mm, r)]
            for name, x in zip(
                ("var_mean", "var_sem", "mean_var", "theory_var", "theory_mean_var"), v, strict=True
            ):
                out[name][i, j] = x
            out["alpha_eff"][i, j] = r / m
    # F1 fixed point on every valid (R/M, M) with M between the grid's ends: contour points.
    mm, rr = [], []
    top = max(alphas) + 0.5 * (max(alphas) - min(alphas)) / max(len(alphas) - 1, 1)
    for m in range(min(ms), max(ms) + 1):
        for r in range(0, m):
            if r / m <= max(top, 1.0 / m):
                mm.append(m)
                rr.append(r)
    mm, rr = np.asarray(mm, np.float64), np.asarray(rr, np.float64)
    fp = tm.fresh_fraction_fixed_point(mm, rr / mm, est)
    out.update(
        alphas=np.asarray(alphas),
        sample_sizes=np.asarray(ms),
        estimator=est,
        generations=g,
        contour_m=mm,
        contour_alpha=rr / mm,
        contour_var=np.asarray(fp.expected_variance, np.float64),
        contour_mean_var=np.asarray(fp.mean_variance, np.float64),
    )
    return out
