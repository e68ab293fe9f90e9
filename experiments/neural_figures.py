"""Figures of the neural-chain study (bands: 10%-90% of the chains; lines: medians).

Each function takes a finished study and an output directory; nothing here imports the
study's module.
"""

from __future__ import annotations

import numpy as np

from experiments import common


def _band(ax, g, per_chain, color, label):
    lo, med, hi = np.quantile(per_chain, [0.1, 0.5, 0.9], axis=1)
    ax.plot(g, med, color=color, lw=1.6, label=label)
    ax.fill_between(g, lo, hi, color=color, alpha=0.25, lw=0)


def plot_perplexity(study, output_dir):
    """Perplexity on held-out real text against generation, each regime (the paper's figure)."""
    fig, axes = common.subplots(1, 2, "models retrained on their own text", width=5.2)
    left, right = axes[0]
    h = None
    for i, run in enumerate(study.runs):
        res = run.result
        g = res.snapshot_generations
        _band(left, g, res.snapshots["perplexity"], f"C{i}", run.label)
        _band(right, g, res.snapshots["kl"], f"C{i}", run.label)
        h = run.theory["entropy_rate"]
    if h is not None:
        left.axhline(np.exp(h), color="k", ls="--", lw=0.8, label=r"source: $e^{H}$")
    left.set_xlabel("generation n")
    left.set_ylabel("perplexity on held-out real text")
    left.legend(fontsize=7)
    right.set_xlabel("generation n")
    right.set_ylabel(r"exact $\sum_c \pi(c)\,\mathrm{KL}(P(\cdot|c)\,\|\,q_n(\cdot|c))$ (nats)")
    right.set_title("KL from the source to the model", fontsize=9)
    right.legend(fontsize=7)
    return common.save_figure(fig, output_dir, "perplexity")


def plot_survival(study, output_dir):
    """Token survival by initial-frequency bucket beside the categorical chain's exact one."""
    runs = study.runs
    if not runs:
        return []
    th = runs[0].theory
    wf = th["categorical_token_survival"]
    nb = wf.shape[1]
    fig, axes = common.subplots(1, nb, "token survival by initial-frequency bucket", width=3.2)
    for b in range(nb):
        ax = axes[0][b]
        for i, run in enumerate(runs):
            res = run.result
            mo = res.moments["token_survival"]
            ax.plot(res.generations, mo.mean[:, b], color=f"C{i}", lw=1.5, label=run.label)
        g = runs[0].result.generations
        ax.plot(g, wf[:, b], "k--", lw=0.9, label="categorical chain (exact)")
        ax.plot([1], [th["token_survival_fit1"][b]], "k*", ms=7, label="fit 1 (exact)")
        ax.set_title(f"bucket {b}" + (" (rarest)" if b == 0 else ""), fontsize=9)
        ax.set_xlabel("generation n")
        ax.set_ylim(-0.02, 1.02)
        if b == 0:
            ax.set_ylabel("share of the bucket's tokens in the corpus")
            ax.legend(fontsize=6)
    return common.save_figure(fig, output_dir, "survival")


def plot_nll_histograms(study, output_dir):
    """Per-sequence mean NLL under the source of each generation's training corpus."""
    runs = study.runs
    if not runs:
        return []
    fig, axes = common.subplots(
        1, len(runs), "per-sequence log-likelihood under the source", width=4.6
    )
    edges = runs[0].theory["bin_edges"]
    h = runs[0].theory["entropy_rate"]
    centres = 0.5 * (edges[1:] + edges[:-1]) / h
    for j, run in enumerate(runs):
        ax = axes[0][j]
        res = run.result
        g = len(res.generations) - 1
        shown = sorted({0, 1, 2, 5, 10, 20, 50, g} & set(range(g + 1)))
        impossible = []
        for i, n in enumerate(shown):
            hist = res.moments["nll_hist"].mean[n]
            ax.plot(centres, hist[: len(centres)], color=f"C{i}", lw=1.3, label=f"n={n}")
            impossible.append(hist[-1])
        ax.set_xlabel("mean NLL per token / H of fit n's training corpus")
        ax.set_ylabel("share of sequences")
        ax.set_title(
            f"{run.label}: share with a forbidden transition "
            + ", ".join(f"{x:.2f}" for x in impossible),
            fontsize=8,
        )
        ax.legend(fontsize=6)
    return common.save_figure(fig, output_dir, "nll_histograms")


def plot_all(study, output_dir) -> list[str]:
    return [
        p
        for f in (plot_perplexity, plot_survival, plot_nll_histograms)
        for p in f(study, output_dir)
    ]
