"""Figures of the KDE-chain study: simulation (solid, band 2 MC SE) against theory (dashed).

Each function takes a finished study (its runs' results and theory curves) and an
output directory; nothing here imports the study's module.
"""

from __future__ import annotations

from experiments import common


def _band(ax, g, mean, se, color, label):
    ax.plot(g, mean, color=color, lw=1.5, label=label)
    ax.fill_between(g, mean - 2 * se, mean + 2 * se, color=color, alpha=0.25, lw=0)


def plot_variance(study, output_dir):
    """E[variance] of the fitted KDE against theory.kde (log scale), beside the Gaussian
    MLE collapse r^n (dotted): the KDE's variance grows instead."""
    fig, axes = common.subplots(1, 2, "variance of the fitted KDE across chains", width=5.4)
    left, right = axes[0]
    for i, run in enumerate(study.runs):
        res, th = run.result, run.theory
        g = res.generations
        mo = res.moments["variance"]
        ax = right if run.regime == "accumulate" else left
        color = f"C{i}"
        _band(ax, g, mo.mean, mo.sem, color, f"{run.label} (sim)")
        ax.plot(g, th["variance_mean"], "k--", lw=0.8)
        if "fixed_point" in th:
            ax.axhline(th["fixed_point"][0], color=color, ls=":", lw=0.8)
        if "replace_variance" in th:
            ax.plot(g, th["replace_variance"], ":", color=color, lw=1, label="replace, same h")
    for ax in (left, right):
        if study.runs:
            g = max((r.result.generations for r in study.runs), key=len)
            m = study.runs[0].sample_size
            ax.plot(
                g,
                ((m - 1) / m) ** g,
                color="grey",
                ls="-.",
                lw=0.8,
                label=f"Gaussian MLE collapse, M={m}",
            )
        ax.set_yscale("log")
        ax.set_xlabel("generation n")
        ax.legend(fontsize=7)
    left.set_ylabel(r"$E[S_n + h_n^2]$ / $\sigma_0^2$ (dashed: theory.kde)")
    left.set_title("replace: fixed h -> M h^2 (dotted); rules: g^n", fontsize=9)
    right.set_title(r"accumulate, fixed h: $\sigma_0^2 + h^2 H_n - Var(\bar x_n)$", fontsize=9)
    return common.save_figure(fig, output_dir, "variance")


def plot_mean(study, output_dir):
    """Var(mean) across chains against its closed form: a random walk of the KDE's mean."""
    fig, axes = common.subplots(1, 1, "variance of the fitted mean across chains", width=5.4)
    ax = axes[0][0]
    for i, run in enumerate(study.runs):
        res, th = run.result, run.theory
        g = res.generations
        mo = res.moments["mean"]
        _band(ax, g, mo.var, mo.var_se, f"C{i}", f"{run.label} (sim)")
        ax.plot(g, th["mean_var"], "k--", lw=0.8)
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_xlabel("generation n")
    ax.set_ylabel(r"Var$(\bar x_n)$ / $\sigma_0^2$ (dashed: theory.kde)")
    ax.legend(fontsize=7)
    return common.save_figure(fig, output_dir, "mean_variance")


def plot_fit_quality(study, output_dir):
    """Held-out real log-likelihood and the mass beyond k sigma0 (no closed form: the
    real distribution's values at generation 0 are the reference)."""
    fig, axes = common.subplots(1, 2, "the fitted KDE against the real distribution", width=5.4)
    left, right = axes[0]
    for i, run in enumerate(study.runs):
        res = run.result
        g = res.generations
        color = f"C{i}"
        ll, tail = res.moments["heldout_loglik"], res.moments["tail_mass"]
        _band(left, g, ll.mean, ll.sem, color, run.label)
        _band(right, g, tail.mean, tail.sem, color, run.label)
    if study.runs:
        r0 = study.runs[0].result
        left.axhline(
            r0.moments["heldout_loglik"].mean[0], color="k", ls="--", lw=0.8, label="real density"
        )
        right.axhline(
            r0.moments["tail_mass"].mean[0], color="k", ls="--", lw=0.8, label="real: 2 Phi(-k)"
        )
    left.set_xlabel("generation n")
    left.set_ylabel("mean log-density of the held-out real sample")
    right.set_xlabel("generation n")
    right.set_ylabel(rf"$P_{{fit}}(|X - \mu_0| > {study.config.tail_k:g}\,\sigma_0)$")
    right.set_yscale("log")
    for ax in (left, right):
        ax.legend(fontsize=7)
    return common.save_figure(fig, output_dir, "fit_quality")


def plot_all(study, output_dir) -> list[str]:
    return [p for f in (plot_variance, plot_mean, plot_fit_quality) for p in f(study, output_dir)]


__all__ = ["plot_all", "plot_fit_quality", "plot_mean", "plot_variance"]
