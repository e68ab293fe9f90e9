"""Figures of the Gaussian-mixture study: simulation (solid, bands) against theory (dashed).

Each function takes a finished study and an output directory; nothing here
imports the study's module.
"""

from __future__ import annotations

import numpy as np

from experiments import common


def _band(ax, g, mean, se, color, label):
    ax.plot(g, mean, color=color, lw=1.5, label=label)
    ax.fill_between(g, mean - 2 * se, mean + 2 * se, color=color, alpha=0.25, lw=0)


def _quantiles(res, field, qs=(0.1, 0.5, 0.9)):
    snap = np.asarray(res.snapshots[field], np.float64)
    return res.snapshot_generations, np.quantile(snap, qs, axis=1)


def plot_l2(study, output_dir):
    """The L2 distance to the real mixture density: mean (2 MC SE band) and the
    chains' 10-50-90% quantiles at the snapshot generations."""
    fig, axes = common.subplots(1, 1, "L2 distance between the fitted and the real density")
    ax = axes[0][0]
    for i, run in enumerate(study.runs):
        res, color = run.result, f"C{i}"
        mo = res.moments["l2_distance"]
        _band(ax, res.generations, mo.mean, mo.sem, color, f"{run.label}: mean")
        sg, q = _quantiles(res, "l2_distance")
        ax.fill_between(sg, q[0], q[2], color=color, alpha=0.1, lw=0)
        ax.plot(sg, q[1], ":", color=color, lw=1, label=f"{run.label}: median, 10-90%")
    ax.set_xlabel("generation n")
    ax.set_ylabel(r"$\|f_n - f_0\|_2$")
    ax.legend(fontsize=7)
    return common.save_figure(fig, output_dir, "l2_distance")


def plot_weights(study, output_dir):
    """Mixture runs: each sorted component's mean weight (2 MC SE band) and the
    smaller weight's 10-50-90% quantiles; the fraction of chains that lost a component."""
    fig, axes = common.subplots(1, 2, "component weights and lost components", width=5.2)
    left, right = axes[0]
    for i, run in enumerate(r for r in study.runs if r.components > 1):
        res = run.result
        g, mo = res.generations, res.moments["weights"]
        for j in range(run.components):
            _band(left, g, mo.mean[:, j], mo.sem[:, j], f"C{j}", f"{run.label}: weight {j}")
        snap = np.asarray(res.snapshots["weights"], np.float64).min(-1)
        q = np.quantile(snap, (0.1, 0.5, 0.9), axis=1)
        sg = res.snapshot_generations
        left.fill_between(sg, q[0], q[2], color="k", alpha=0.1, lw=0)
        left.plot(sg, q[1], "k:", lw=1, label="smallest weight: median, 10-90%")
        lost = res.moments["lost"]
        c = res.num_chains
        p = lost.mean
        se = np.sqrt(np.maximum(p * (1 - p), 0) / c)
        _band(right, g, p, se, f"C{i}", f"{run.label}")
    left.set_xlabel("generation n")
    left.set_ylabel("weight (components sorted by mean)")
    left.legend(fontsize=7)
    lw = study.config.lost_weight
    right.set_xlabel("generation n")
    right.set_ylabel(f"fraction of chains with a weight < {lw:g}")
    right.set_title("no closed form (band: binomial 2 SE)", fontsize=9)
    right.legend(fontsize=7)
    return common.save_figure(fig, output_dir, "weights")


def plot_variance(study, output_dir):
    """The mixture's total variance against its exact mean r^n tr Sigma_0 (any K), and
    log det of its covariance beside the single-Gaussian theory (exact for K = 1)."""
    fig, axes = common.subplots(1, 2, "variance beside the single-Gaussian theory", width=5.2)
    left, right = axes[0]
    for i, run in enumerate(study.runs):
        res, th, color = run.result, run.theory, f"C{i}"
        g = res.generations
        tr0 = th["trace_cov_mean"][0]
        mo = res.moments["trace_cov"]
        _band(left, g, mo.mean / tr0, mo.sem / tr0, color, f"{run.label} (sim)")
        sg, q = _quantiles(res, "log_det_cov")
        ld = res.moments["log_det_cov"]
        shift = ld.mean[0]
        _band(right, g, ld.mean - shift, ld.sem, color, f"{run.label}: mean (sim)")
        right.fill_between(sg, q[0] - shift, q[2] - shift, color=color, alpha=0.1, lw=0)
    if study.runs:
        th, g = study.runs[0].theory, study.runs[0].result.generations
        left.plot(g, th["trace_cov_mean"] / th["trace_cov_mean"][0], "k--", lw=0.8,
                  label=r"exact: $((M-1)/M)^n$")  # fmt: skip
        right.plot(g, th["gaussian_log_det_mean"], "k--", lw=0.8,
                   label="Gaussian (K=1) theory, W2")  # fmt: skip
    left.set_xlabel("generation n")
    left.set_ylabel(r"$E[\mathrm{tr}\,\Sigma_{tot,n}] / \mathrm{tr}\,\Sigma_{tot,0}$")
    left.legend(fontsize=7)
    right.set_xlabel("generation n")
    right.set_ylabel(r"$\log\det\Sigma_{tot,n} - \log\det\Sigma_{tot,0}$ (10-90% shaded)")
    right.set_title("no closed form for K > 1: the Gaussian law as reference", fontsize=9)
    right.legend(fontsize=7)
    return common.save_figure(fig, output_dir, "variance")


def plot_all(study, output_dir) -> list[str]:
    return [p for f in (plot_l2, plot_weights, plot_variance) for p in f(study, output_dir)]
