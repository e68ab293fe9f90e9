"""Figures of the Poisson-chain study: simulation (solid) against theory (dashed).

Each function takes a finished study (its runs' results and theory curves) and
an output directory; nothing here imports the study's module.
"""

from __future__ import annotations

import numpy as np

from experiments import common


def plot_extinction(study, output_dir):
    """P(extinct) against exp(-M lam0 g_n); survival against 1 - exp(-M lam0 g_n) and
    its asymptote 1 - exp(-2 M lam0 / n) on log-log axes."""
    fig, axes = common.subplots(1, 2, "absorption of the fitted rate at 0", width=5.4)
    left, right = axes[0]
    c = study.config.num_chains
    for i, run in enumerate(study.runs):
        res, th = run.result, run.theory
        g = res.generations
        p = res.moments["extinct"].mean
        se = np.sqrt(np.maximum(th["zero_probability"] * (1 - th["zero_probability"]), 0) / c)
        color = f"C{i}"
        left.plot(g, p, color=color, lw=1.5, label=f"{run.label} (sim)")
        left.fill_between(g, p - 2 * se, p + 2 * se, color=color, alpha=0.25, lw=0)
        left.plot(g, th["zero_probability"], "k--", lw=0.8)
        n = g[1:]
        survival = 1.0 - p[1:]
        shown = survival > 0
        right.plot(n[shown], survival[shown], color=color, lw=1.5, label=f"{run.label} (sim)")
        right.plot(n, th["survival"][1:], "k--", lw=0.8)
        right.plot(n, th["survival_asymptote"][1:], ":", color=color, lw=1)
    left.set_xlabel("generation n")
    left.set_ylabel(r"$P(\lambda_n = 0)$")
    left.set_title(r"dashed: $e^{-M\lambda_0 g_n}$", fontsize=9)
    left.legend(fontsize=7)
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("generation n")
    right.set_ylabel(r"$P(\lambda_n \neq 0)$")
    right.set_title(
        r"dashed: $1 - e^{-M\lambda_0 g_n}$; dotted: $1 - e^{-2M\lambda_0/n}$", fontsize=9
    )
    return common.save_figure(fig, output_dir, "extinction")


def plot_rate_moments(study, output_dir):
    """E[rate] / lam0 (theory: 1) and Var[rate] M / lam0 (theory: n), every run on one axis."""
    fig, axes = common.subplots(1, 2, "the fitted rate across chains", width=5.4)
    left, right = axes[0]
    for i, run in enumerate(study.runs):
        res = run.result
        g = res.generations
        lam0, m = run.lam0, run.sample_size
        if not lam0 > 0:
            continue
        mo = res.moments["rate"]
        color = f"C{i}"
        mean, sem = mo.mean / lam0, mo.sem / lam0
        left.plot(g, mean, color=color, lw=1.5, label=f"{run.label} (sim)")
        left.fill_between(g, mean - 2 * sem, mean + 2 * sem, color=color, alpha=0.25, lw=0)
        scale = m / lam0
        var, var_se = mo.var * scale, mo.var_se * scale
        right.plot(g, var, color=color, lw=1.5, label=f"{run.label} (sim)")
        right.fill_between(g, var - 2 * var_se, var + 2 * var_se, color=color, alpha=0.25, lw=0)
    if study.runs:
        g = study.runs[0].result.generations
        left.axhline(1.0, color="k", ls="--", lw=0.8, label=r"theory: $E[\lambda_n] = \lambda_0$")
        right.plot(g, g, "k--", lw=0.8, label=r"theory: $n$")
    left.set_xlabel("generation n")
    left.set_ylabel(r"$E[\lambda_n] / \lambda_0$ (band: 2 MC SE)")
    left.legend(fontsize=7)
    right.set_xlabel("generation n")
    right.set_ylabel(r"$\mathrm{Var}(\lambda_n)\, M / \lambda_0$")
    right.legend(fontsize=7)
    return common.save_figure(fig, output_dir, "rate_moments")


def plot_all(study, output_dir) -> list[str]:
    return [p for f in (plot_extinction, plot_rate_moments) for p in f(study, output_dir)]
