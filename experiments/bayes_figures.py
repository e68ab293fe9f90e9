"""Figures of the Bayesian-chain study: simulation (solid, 2 MC SE band) against theory (dashed).

Nothing here imports the study's module.
"""

from __future__ import annotations

import numpy as np

from experiments import common


def _band(ax, g, mo, color, label, scale=1.0):
    mean, sem = mo.mean * scale, mo.sem * scale
    ax.plot(g, mean, color=color, lw=1.5, label=label)
    ax.fill_between(g, mean - 2 * sem, mean + 2 * sem, color=color, alpha=0.25, lw=0)


def plot_variance_drift(study, output_dir):
    """E[posterior mean of sigma^2] for refit (a), sequential (b), and the MLE chain's
    E[sigma^2] and median sigma^2 (exp E log), side by side."""
    fig, axes = common.subplots(
        1, 3, "variance drift: prior refit, sequential, plug-in MLE", width=4.4
    )
    ax_a, ax_b, ax_mle = axes[0]
    c = study.config
    prior_mean = c.beta0 / (c.alpha0 - 1) if c.alpha0 > 1 else np.inf
    for i, run in enumerate(study.runs):
        g, th = run.result.generations, run.theory
        color = f"C{i}"
        if run.update == "mle":
            lv = run.result.moments["log_var"]
            ax_mle.plot(
                g, np.exp(lv.mean), color=color, lw=1.5, label=f"{run.label}: exp E[log s2] (sim)"
            )
            ax_mle.plot(g, np.exp(th["log_var_mean"]), "k--", lw=0.8)
            ax_mle.plot(
                g,
                th["var_mean"],
                ":",
                color=color,
                lw=1.2,
                label=r"theory $E\sigma_n^2 = ((M-1)/M)^n$",
            )
            continue
        ax = ax_a if run.update == "refit" else ax_b
        _band(ax, g, run.result.moments["var_mean"], color, f"{run.label} (sim)")
        ax.plot(g, th["var_mean"], "k--", lw=0.8)
    if np.isfinite(prior_mean):
        ax_a.axhline(
            prior_mean, color="grey", ls=":", lw=1, label=r"prior mean $\beta_0/(\alpha_0-1)$"
        )
    ax_a.set_title(r"(a) refit from the prior: $\to$ the prior", fontsize=9)
    ax_b.set_title("(b) sequential: a martingale, frozen", fontsize=9)
    ax_mle.set_title("plug-in MLE: collapse", fontsize=9)
    ax_mle.set_yscale("log")
    for ax in (ax_a, ax_b, ax_mle):
        ax.set_xlabel("generation n")
        ax.legend(fontsize=6)
    ax_a.set_ylabel(r"$E[\beta_n/(\alpha_n-1)]$ (dashed: theory.bayes)")
    return common.save_figure(fig, output_dir, "variance_drift")


def plot_mean(study, output_dir):
    """Var(mu_n) across chains against theory.bayes.mean_variance."""
    fig, axes = common.subplots(1, 1, "spread of the posterior mean of mu", width=5.4)
    ax = axes[0][0]
    for i, run in enumerate(study.runs):
        if run.update == "mle":
            continue
        g, mo = run.result.generations, run.result.moments["mean"]
        color = f"C{i}"
        ax.plot(g, mo.var, color=color, lw=1.5, label=f"{run.label} (sim)")
        ax.fill_between(
            g, mo.var - 2 * mo.var_se, mo.var + 2 * mo.var_se, color=color, alpha=0.25, lw=0
        )
        ax.plot(g, run.theory["mean_var"], "k--", lw=0.8)
    ax.set_xlabel("generation n")
    ax.set_ylabel(r"Var$(\mu_n)$ (dashed: theory)")
    ax.legend(fontsize=7)
    return common.save_figure(fig, output_dir, "mean_variance")


def plot_all(study, output_dir) -> list[str]:
    return [p for f in (plot_variance_drift, plot_mean) for p in f(study, output_dir)]
