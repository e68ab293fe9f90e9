"""Figures of the Gaussian-chain study: simulation (solid) against theory (dashed).

Each function takes a finished study (its runs' results and theory curves) and
an output directory; nothing here imports the study's module.
"""

from __future__ import annotations

import numpy as np

from experiments import common

TINY = 1e-300


def _panels(study, title):
    k = len(study.runs)
    ncol = min(k, 2)
    nrow = -(-k // ncol)
    fig, axes = common.subplots(nrow, ncol, title, width=5.2)
    for ax in axes.flat[k:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:k])


def plot_log_variance(study, output_dir):
    fig, axes = _panels(study, "log-variance of the fit: mean and 5/50/95% quantiles")
    for ax, run in zip(axes, study.runs, strict=True):
        res, th = run.result, run.theory
        g = res.generations
        lv = res.moments["log_var"]
        ax.plot(g, lv.mean, color="C0", lw=1.5, label="simulation mean")
        ax.fill_between(g, lv.mean - 2 * lv.sem, lv.mean + 2 * lv.sem, color="C0", alpha=0.3)
        ax.plot(g, th["log_var_mean"], "k--", lw=1, label="theory mean")
        s = res.snapshot_generations
        for q in (0.05, 0.5, 0.95):
            ax.plot(
                s,
                run.emp_quantiles[q],
                "o",
                ms=3,
                color="C1",
                label="simulation quantiles" if q == 0.05 else None,
            )
            ax.plot(
                g,
                th[f"log_var_q{q:g}"],
                ":",
                color="C3",
                lw=1,
                label="theory quantiles (saddlepoint)" if q == 0.05 else None,
            )
        ax.set_title(run.label)
        ax.set_xlabel("generation n")
        ax.set_ylabel(r"$\log \sigma_n^2$")
    axes[0].legend(fontsize=7)
    return common.save_figure(fig, output_dir, "log_variance")


def plot_w2(study, output_dir):
    fig, axes = _panels(study, r"$E[W_2^2]$ to the real distribution")
    c = study.config.num_chains
    for ax, run in zip(axes, study.runs, strict=True):
        res, th = run.result, run.theory
        g = res.generations[1:]
        w2 = res.moments["w2_squared"]
        ax.plot(g, w2.mean[1:], color="C0", label="simulation")
        ax.plot(g, th["w2_squared_mean"][1:], "k--", lw=1, label="theory")
        bad = np.array([not common.mean_is_measurable(v, c) for v in th["variance_cv2"][1:]])
        if bad.any():
            ax.axvspan(
                g[bad.argmax()],
                g[-1],
                color="0.85",
                zorder=0,
                label="mean not measurable\n(heavy tail)",
            )
        ax.set_yscale("log")
        ax.set_title(run.label)
        ax.set_xlabel("generation n")
        ax.set_ylabel(r"$E[W_2^2]$")
    axes[0].legend(fontsize=7)
    return common.save_figure(fig, output_dir, "w2")


def plot_tails(study, output_dir):
    k = study.config.tail_k
    fig, axes = _panels(study, f"fitted mass beyond {k:g} real std devs")
    for ax, run in zip(axes, study.runs, strict=True):
        res, th = run.result, run.theory
        g = res.generations
        tr = res.moments["tail_real"]
        ax.plot(g, tr.mean, color="C0", label="mean, from real mean (sim)")
        ax.plot(g, th["tail_real_mean"], "k--", lw=1, label="mean, from real mean (theory)")
        ax.plot(
            res.snapshot_generations,
            np.maximum(run.own_tail_median, TINY),
            "o",
            ms=3,
            color="C1",
            label="median, from own mean (sim)",
        )
        ax.plot(
            g,
            np.maximum(th["tail_own_median"], TINY),
            ":",
            color="C3",
            label="median, from own mean (theory)",
        )
        ax.set_yscale("log")
        ax.set_ylim(max(1e-12, ax.get_ylim()[0]), 1)
        ax.set_title(run.label)
        ax.set_xlabel("generation n")
        ax.set_ylabel("tail mass")
    axes[0].legend(fontsize=7)
    return common.save_figure(fig, output_dir, "tail_mass")


def plot_collapsed(study, output_dir):
    eps = study.config.collapse_eps
    fig, axes = common.subplots(1, 1, width=6.0, height=4.0)
    ax = axes[0, 0]
    for i, run in enumerate(study.runs):
        res, th = run.result, run.theory
        g = res.generations
        ax.plot(g, res.moments["collapsed"].mean, color=f"C{i}", label=f"{run.label} (sim)")
        ax.plot(g, th["collapsed_prob"], "--", color=f"C{i}", lw=1)
    ax.set_title(rf"fraction of chains with $\sigma_n^2 < {eps:g}\,\sigma_0^2$ (dashed: theory)")
    ax.set_xlabel("generation n")
    ax.set_ylabel("fraction collapsed")
    ax.legend(fontsize=7)
    return common.save_figure(fig, output_dir, "collapsed")


def plot_all(study, output_dir) -> list[str]:
    return [
        p
        for f in (plot_log_variance, plot_w2, plot_tails, plot_collapsed)
        for p in f(study, output_dir)
    ]
