"""Figures of the categorical-chain study: simulation (solid) against theory (dashed).

Each function takes a finished study (its runs' results and theory curves) and
an output directory; nothing here imports the study's module.
"""

from __future__ import annotations

import numpy as np

from experiments import common


def _band(ax, g, mo, color, label, index=None):
    mean = mo.mean if index is None else mo.mean[:, index]
    sem = mo.sem if index is None else mo.sem[:, index]
    ax.plot(g, mean, color=color, lw=1.5, label=label)
    ax.fill_between(g, mean - 2 * sem, mean + 2 * sem, color=color, alpha=0.25, lw=0)


def _symlog_generations(ax, g):
    """Generations on a log scale that keeps generation 0."""
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(0, g[-1])
    ax.set_xlabel("generation n (log scale past 1)")


def plot_survival(study, output_dir):
    run = study.run("main")
    res, th = run.result, run.theory
    g = res.generations
    fig, axes = common.subplots(
        1, 1, f"survival of categories by initial rank ({run.vocabulary.name})"
    )
    ax = axes[0, 0]
    for b, label in enumerate(run.bucket_labels):
        color = f"C{b % 10}"
        _band(ax, g, res.moments["survival"], color, label, b)
        ax.plot(g, th["survival"][:, b], "k--", lw=0.8)
    ax.plot([], [], "k--", lw=0.8, label="exact (transition matrix)")
    _symlog_generations(ax, g)
    ax.set_ylabel("P(category still present)")
    ax.set_title(f"M={run.sample_size} tokens per generation; bands: 2 MC s.e.")
    ax.legend(fontsize=7)
    return common.save_figure(fig, output_dir, "survival")


def plot_diversity(study, output_dir):
    run = study.run("main")
    res, th = run.result, run.theory
    g = res.generations
    m = run.sample_size
    fig, axes = common.subplots(1, 3, f"diversity loss ({run.vocabulary.name}, M={m})")
    ax = axes[0, 0]
    h0 = th["heterozygosity"][0]
    h = res.moments["heterozygosity"]
    ax.plot(g, h.mean / h0, lw=1.5, label=r"simulation $E[H_n]/H_0$")
    ax.plot(g, (1 - 1 / m) ** g, "k--", lw=1, label=r"$(1-1/M)^n$ (D1)")
    ax.set_xlabel("generation n")
    ax.set_ylabel("heterozygosity / initial")
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    _band(ax, g, res.moments["support"], "C0", "simulation")
    ax.plot(g, th["support"], "k--", lw=1, label="exact E[support] (D3)")
    ax.set_yscale("log")
    _symlog_generations(ax, g)
    ax.set_ylabel("support size")
    ax.legend(fontsize=7)
    ax = axes[0, 2]
    _band(ax, g, res.moments["entropy"], "C2", "entropy (nats)")
    _symlog_generations(ax, g)
    ax.set_ylabel("entropy of the fit (nats)")
    ax.legend(fontsize=7)
    return common.save_figure(fig, output_dir, "diversity")


def plot_absorption(study, output_dir):
    runs = [r for r in study.runs if r.part == "absorption"]
    if not runs:
        return []
    run = runs[0]
    t = run.result.first_passage["absorbed"]
    t = t[t >= 0]
    fig, axes = common.subplots(
        1, 1, f"absorption time ({run.label}, p0={np.round(run.vocabulary.probs, 3)})"
    )
    ax = axes[0, 0]
    ax.hist(t, bins=60, density=True, color="C0", alpha=0.7, label=f"{t.size:,} chains")
    ax.axvline(t.mean(), color="C0", lw=1.5, label=f"simulation mean {t.mean():.2f}")
    ax.axvline(
        run.theory["absorption_exact"],
        color="k",
        ls="--",
        lw=1,
        label=f"exact mean {run.theory['absorption_exact']:.2f} (D4)",
    )
    ax.axvline(
        run.theory["absorption_diffusion"],
        color="C3",
        ls=":",
        lw=1,
        label=f"diffusion {run.theory['absorption_diffusion']:.2f}",
    )
    ax.set_xlabel("generations until the fit is a point mass")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    return common.save_figure(fig, output_dir, "absorption")


def plot_bias(study, output_dir):
    runs = [r for r in study.runs if r.part == "bias"]
    if not runs:
        return []
    fig, axes = common.subplots(
        2,
        2,
        "sampling bias: simulation (solid), infinite-M drift (dashed; for smoothing: exact E[H])",
    )
    panels = (
        ("support", "support size", "support_limit", "log"),
        ("tail_mass", "mass on the initial tail", "tail_mass_limit", "linear"),
        ("mode_mass", "mass of the mode (head)", "mode_mass_limit", "linear"),
        ("heterozygosity", "heterozygosity", "heterozygosity_limit", "linear"),
    )
    for ax, (field, ylabel, lim, yscale) in zip(axes.flat, panels, strict=True):
        for i, run in enumerate(runs):
            g = run.result.generations
            color = f"C{i % 10}"
            _band(ax, g, run.result.moments[field], color, run.label)
            ax.plot(g, run.theory[lim], "--", color=color, lw=0.8)
        ax.set_yscale(yscale)
        ax.set_xlabel("generation n")
        ax.set_ylabel(ylabel)
    axes[0, 0].legend(fontsize=7, title=f"M={runs[0].sample_size}", title_fontsize=7)
    return common.save_figure(fig, output_dir, "bias")


def plot_all(study, output_dir) -> list[str]:
    return [
        p
        for f in (plot_survival, plot_diversity, plot_absorption, plot_bias)
        for p in f(study, output_dir)
    ]
