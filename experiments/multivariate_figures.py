"""Figures of the multivariate Gaussian study: simulation (solid, bands) against theory (dashed).

Each function takes a finished study (its runs' results and theory curves) and an
output directory; one row of panels per size d:M. Nothing here imports the study's
module.
"""

from __future__ import annotations

import numpy as np

from experiments import common

Z90 = 1.6448536269514722  # the 5-95% half-width of a normal law, in sd


def _band(ax, g, mean, se, color, label, scale=1.0):
    ax.plot(g, mean / scale, color=color, lw=1.5, label=label)
    ax.fill_between(g, (mean - 2 * se) / scale, (mean + 2 * se) / scale, color=color,
                    alpha=0.25, lw=0)  # fmt: skip


def _sizes(study):
    """The sizes in study order, each with its runs."""
    out: dict = {}
    for run in study.runs:
        out.setdefault((run.dim, run.sample_size), []).append(run)
    return list(out.items())


def _color(study, run):
    return f"C{study.runs.index(run) % 10}"


def plot_log_det(study, output_dir):
    """E[log det Sigma_n] (2 MC SE band) and the chains' 5-95% quantiles (shaded) beside
    the exact mean (dashed) and the exact law's 5-95% band (dotted: mean +- 1.645 sd, log
    det being a sum of n d independent log chi-squares)."""
    sizes = _sizes(study)
    fig, axes = common.subplots(len(sizes), 1, "log det of the fitted covariance", width=6.4)
    for row, ((d, m), runs) in enumerate(sizes):
        ax = axes[row][0]
        for run in runs:
            res, th, color = run.result, run.theory, _color(study, run)
            mo = res.moments["log_det"]
            _band(ax, res.generations, mo.mean, mo.sem, color, f"{run.label} (sim)")
            snap = np.asarray(res.snapshots["log_det"], np.float64)
            q = np.quantile(snap, (0.05, 0.95), axis=1)
            ax.fill_between(res.snapshot_generations, q[0], q[1], color=color, alpha=0.08, lw=0)
            if "log_det_mean" in th:
                mean, sd = th["log_det_mean"], np.sqrt(th["log_det_var"])
                ax.plot(res.generations, mean, "--", color="k", lw=0.8)
                ax.plot(res.generations, mean - Z90 * sd, ":", color=color, lw=0.8)
                ax.plot(res.generations, mean + Z90 * sd, ":", color=color, lw=0.8)
        ax.set_title(f"d={d}, M={m}: dashed exact mean (W2), dotted its 5-95% law, "
                     "shaded the chains' 5-95%", fontsize=8)  # fmt: skip
        ax.set_xlabel("generation n")
        ax.set_ylabel(r"$\log\det\Sigma_n$")
        ax.legend(fontsize=6, ncol=2)
    return common.save_figure(fig, output_dir, "log_det")


def _indices(d: int, most: int = 8) -> list[int]:
    return sorted({int(round(x)) for x in np.linspace(0, d - 1, min(d, most))})


def plot_spectrum(study, output_dir):
    """The sorted eigenvalues of Sigma_n: each one's median over chains at the snapshot
    generations (log scale), smallest (dark) to largest (light), for the first estimator
    of the study in each regime; dashed: the exact geometric mean exp(E[log det] / d)."""
    import matplotlib

    sizes = _sizes(study)
    regimes = [r for r in ("replace", "accumulate", "subsample")
               if any(run.regime == r for run in study.runs)]  # fmt: skip
    est = study.runs[0].estimator if study.runs else "mle"
    fig, axes = common.subplots(
        len(sizes), max(len(regimes), 1), f"eigenvalue spectrum over generations ({est})",
        width=4.6,
    )  # fmt: skip
    cmap = matplotlib.colormaps["viridis"]
    for row, ((d, _m), runs) in enumerate(sizes):
        for col, regime in enumerate(regimes):
            ax = axes[row][col]
            run = next((r for r in runs if r.regime == regime and r.estimator == est), None)
            if run is None:
                ax.set_visible(False)
                continue
            res, th = run.result, run.theory
            sg = res.snapshot_generations
            med = np.median(np.asarray(res.snapshots["eigenvalues"], np.float64), axis=1)
            idx = _indices(d)
            for j, i in enumerate(idx):
                ends = j in (0, len(idx) - 1)
                color = cmap(j / max(len(idx) - 1, 1))
                label = f"eigenvalue {i + 1} of {d}" if ends else None
                ax.plot(sg, med[:, i], color=color, lw=1.2, label=label)
            ref = th.get("log_det_mean", th.get("replace_log_det_mean"))
            if ref is not None:
                lab = "exp(E log det / d), exact" if regime == "replace" else "replace, exact"
                ax.plot(res.generations, np.exp(ref / d), "k--", lw=0.8, label=lab)
            ax.set_yscale("log")
            ax.set_title(f"{run.label}: median over chains", fontsize=8)
            ax.set_xlabel("generation n")
            ax.set_ylabel("eigenvalue of $\\Sigma_n$ (ascending)")
            ax.legend(fontsize=6)
    return common.save_figure(fig, output_dir, "spectrum")


def plot_moments(study, output_dir):
    """E[tr Sigma_n] / d and E||mu_n - mu_0||^2 against their closed forms (dashed;
    replace: W1, accumulate: d times the 1-D accumulate moments), and E[W2^2] to the real
    distribution (no closed form). Bands: 2 MC SE."""
    sizes = _sizes(study)
    fig, axes = common.subplots(len(sizes), 3, "trace, mean error and W2 to the real N(0, I)",
                                width=4.4)  # fmt: skip
    for row, ((d, m), runs) in enumerate(sizes):
        left, mid, right = axes[row]
        for run in runs:
            res, th, color = run.result, run.theory, _color(study, run)
            g = res.generations
            tr, mse, w2 = (res.moments[f] for f in ("trace", "mean_sq_error", "w2_squared"))
            _band(left, g, tr.mean, tr.sem, color, run.label, scale=d)
            _band(mid, g, mse.mean, mse.sem, color, run.label)
            _band(right, g, w2.mean, w2.sem, color, run.label)
            if "trace_mean" in th:
                left.plot(g, th["trace_mean"] / d, "k--", lw=0.8)
                mid.plot(g, th["mean_sq_error_mean"], "k--", lw=0.8)
        left.set_yscale("log")
        left.set_ylabel(r"$E[\mathrm{tr}\,\Sigma_n] / d$ (dashed: exact)")
        mid.set_ylabel(r"$E\|\mu_n - \mu_0\|^2$ (dashed: exact)")
        right.set_yscale("log")
        right.set_ylabel(r"$E[W_2^2(N(\mu_n, \Sigma_n), N(0, I))]$")
        right.set_title("no closed form", fontsize=8)
        left.set_title(f"d={d}, M={m}", fontsize=8)
        for ax in (left, mid, right):
            ax.set_xlabel("generation n")
            ax.legend(fontsize=6)
    return common.save_figure(fig, output_dir, "moments")


def plot_all(study, output_dir) -> list[str]:
    return [p for f in (plot_log_det, plot_spectrum, plot_moments) for p in f(study, output_dir)]


__all__ = ["plot_all", "plot_log_det", "plot_moments", "plot_spectrum"]
