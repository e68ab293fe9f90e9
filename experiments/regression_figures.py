"""Figures of the regression-chain study: simulation (2 s.e. band) against theory (dashed)."""

from __future__ import annotations

import numpy as np

from experiments import common

REGIME_COLORS = {"replace": "C3", "accumulate": "C0", "subsample": "C2"}


def _panels(study):
    """Runs grouped by panel (size, design, estimator), in study order."""
    panels: dict[str, list] = {}
    for run in study.runs:
        panels.setdefault(run.panel, []).append(run)
    return panels


def _grid(k: int, title: str):
    ncol = min(k, 4)
    nrow = -(-k // ncol)
    fig, axes = common.subplots(nrow, ncol, title, width=4.4, height=3.4)
    for ax in axes.flat[k:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:k])


def _band(ax, g, mo, color, label):
    ax.plot(g, mo.mean, color=color, lw=1.5, label=label)
    ax.fill_between(g, mo.mean - 2 * mo.sem, mo.mean + 2 * mo.sem, color=color, alpha=0.25, lw=0)


def _plot_field(study, output_dir, field, name, title, ylabel):
    panels = _panels(study)
    fig, axes = _grid(len(panels), title)
    for ax, (panel, runs) in zip(axes, panels.items(), strict=True):
        for run in runs:
            color = REGIME_COLORS[run.regime]
            g = run.result.generations
            label = run.regime_label + (" (no closed form)" if run.no_theory_reason else "")
            _band(ax, g, run.result.moments[field], color, label)
            if field in run.theory:
                ax.plot(g, run.theory[field], "--", color="k", lw=0.9)
        ax.plot([], [], "k--", lw=0.9, label="theory")
        ax.set_title(panel, fontsize=8)
        ax.set_xlabel("generation n")
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=6)
    return common.save_figure(fig, output_dir, name)


def plot_test_error(study, output_dir):
    return _plot_field(
        study,
        output_dir,
        "test_error",
        "test_error",
        r"excess test error $E\|\hat w_n - w^*\|^2$ by data regime",
        r"$E\|\hat w_n - w^*\|^2$",
    )


def plot_weight_norm(study, output_dir):
    return _plot_field(
        study,
        output_dir,
        "weight_norm_sq",
        "weight_norm",
        r"$E\|\hat w_n\|^2$: ridge shrinks the fit, OLS does not",
        r"$E\|\hat w_n\|^2$",
    )


def plot_z_scores(study, output_dir):
    """(simulation - theory) / MC s.e. of the test error, every generation of every testable run."""
    fig, axes = common.subplots(1, 1, width=7.0, height=4.0)
    ax = axes[0, 0]
    z_crit = study.z_crit
    for i, run in enumerate(r for r in study.runs if "test_error" in r.theory):
        mo, th = run.result.moments["test_error"], run.theory["test_error"]
        g = run.result.generations[1:]
        z = (mo.mean[1:] - th[1:]) / np.maximum(mo.sem[1:], 1e-300)
        ax.plot(g, z, ".-", color=f"C{i % 10}", lw=0.6, ms=3, label=run.label)
    ax.axhline(z_crit, color="k", ls=":", lw=1)
    ax.axhline(-z_crit, color="k", ls=":", lw=1, label=f"table threshold |z|={z_crit:.2f}")
    ax.set_xlabel("generation n")
    ax.set_ylabel("z = (simulation - theory) / MC s.e.")
    ax.set_title("test error against its closed form, every generation", fontsize=9)
    ax.legend(fontsize=5, ncol=2)
    return common.save_figure(fig, output_dir, "z_scores")


def plot_all(study, output_dir) -> list[str]:
    return [
        p for f in (plot_test_error, plot_weight_norm, plot_z_scores) for p in f(study, output_dir)
    ]
