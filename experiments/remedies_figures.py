"""Figures of the remedies study: simulation (solid, 2 MC s.e. bands) against theory (dashed).

Each function takes a finished study (its runs' results and theory curves) and
an output directory; nothing here imports the study's module.
"""

from __future__ import annotations

import numpy as np

from experiments import common

TINY = 1e-300
# One colour per regime, in the order the study lists them.
KIND_COLORS = {
    "replace": "C0",
    "accumulate": "C1",
    "subsample": "C2",
    "fresh": "C3",
    "anchored": "C4",
}


def _color(run) -> str:
    return KIND_COLORS[run.settings.get("kind", "replace")]


def _band(ax, g, mean, sem, color, label=None):
    ax.plot(g, mean, color=color, lw=1.5, label=label)
    ax.fill_between(g, mean - 2 * sem, mean + 2 * sem, color=color, alpha=0.2, lw=0)


def _theory(ax, g, values, color, label=None):
    v = np.asarray(values, np.float64)
    if np.any(np.isfinite(v)):
        ax.plot(g, v, "--", color=color, lw=1, label=label)


def _moment(ax, run, field, scale=1.0, color=None, ls="-"):
    res = run.result
    mo = res.moments[field]
    _band(ax, res.generations, mo.mean * scale, mo.sem * scale, color or _color(run), run.label)
    if ls != "-":
        ax.lines[-1].set_linestyle(ls)


def _symlog_generations(ax, g):
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(0, g[-1])
    ax.set_xlabel("generation n (log scale past 1)")


def plot_regimes_gaussian(study, output_dir):
    runs = study.part("regimes")
    known = study.part("known")
    if not runs and not known:
        return []
    cfg = study.config
    fig, axes = common.subplots(
        2,
        3,
        f"Gaussian chain under each regime (M={cfg.sample_size}, {cfg.estimator}); "
        "dashed: closed forms",
        width=5.0,
    )
    ax_lv, ax_var, ax_mu = axes[0]
    ax_w2, ax_known, ax_train = axes[1]
    for run in runs:
        res, th = run.result, run.theory
        g, color = res.generations, _color(run)
        _moment(ax_lv, run, "log_var")
        _theory(ax_lv, g, th.get("log_var_mean", np.nan * g), color)
        gens, vm, vs = run.variance_curve()
        _band(ax_var, gens, vm, vs, color, run.label)
        _theory(ax_var, g, th["var_mean"], color)
        # log-scale panels from generation 1 (generation 0 has no spread, Var(mu_0) = 0)
        mu, w2, ts = (res.moments[f] for f in ("mean", "w2_squared", "train_size"))
        _band(ax_mu, g[1:], mu.var[1:], mu.var_se[1:], color, run.label)
        _theory(ax_mu, g[1:], th["mean_var"][1:], color)
        _band(ax_w2, g[1:], w2.mean[1:], w2.sem[1:], color, run.label)
        _theory(ax_w2, g[1:], th.get("w2_mean", np.nan * g)[1:], color)
        ax_train.plot(g[1:], ts.mean[1:], color=color, lw=1.5, label=run.label)
        if "var_fixed_point" in th:
            ax_var.axhline(th["var_fixed_point"][0], color=color, ls=":", lw=1)
            ax_mu.axhline(th["mean_var_fixed_point"][0], color=color, ls=":", lw=1)
        if "variance_cv2" in th:
            c = res.num_chains
            bad = np.array([not common.mean_is_measurable(v, c) for v in th["variance_cv2"]])
            if bad.any():
                for ax in (ax_var, ax_mu, ax_w2):
                    ax.axvspan(g[bad.argmax()], g[-1], color="0.9", zorder=0)
    for run in known:
        res, th = run.result, run.theory
        g, mu = res.generations, res.moments["mean"]
        _band(ax_known, g[1:], mu.var[1:], mu.var_se[1:], _color(run), run.label)
        _theory(ax_known, g[1:], th["mean_var"][1:], _color(run))
    ax_lv.set_ylabel(r"$E[\log \sigma_n^2]$")
    ax_var.set_ylabel(r"$E[\sigma_n^2]$ (dotted: F1 fixed point)")
    ax_var.set_yscale("log")
    ax_mu.set_ylabel(r"Var$(\mu_n)$")
    ax_mu.set_yscale("log")
    ax_w2.set_ylabel(r"$E[W_2^2]$")
    ax_w2.set_yscale("log")
    ax_known.set_ylabel(r"Var$(\mu_n)$, $\sigma$ known (G5, L3, F3)")
    ax_known.set_yscale("log")
    ax_train.set_ylabel("training-set size")
    ax_train.set_yscale("log")
    for ax in axes.flat:
        ax.set_xlabel("generation n")
    if runs:
        ax_lv.legend(fontsize=7, title="grey: replace mean not measurable", title_fontsize=6)
    if known:
        ax_known.legend(fontsize=7)
    else:
        ax_known.set_visible(False)
    return common.save_figure(fig, output_dir, "regimes_gaussian")


def plot_regimes_categorical(study, output_dir):
    runs = study.part("categorical")
    if not runs:
        return []
    cfg = study.config
    fig, axes = common.subplots(
        1,
        3,
        f"categorical chain under each regime (Zipf K={cfg.num_categories}, "
        f"M={cfg.cat_sample_size}); dashed: replace theory (D1, D3), the tail mass's "
        "expectation is constant under every regime",
    )
    for run in runs:
        res, th = run.result, run.theory
        g, color = res.generations, _color(run)
        for ax, field in zip(axes[0], ("support", "tail_mass", "heterozygosity"), strict=True):
            _moment(ax, run, field)
            _theory(ax, g, th.get(field, np.nan * g), color)
    axes[0, 0].set_ylabel("support size")
    axes[0, 0].set_yscale("log")
    axes[0, 1].set_ylabel("mass on the initial tail")
    axes[0, 2].set_ylabel("heterozygosity")
    for ax in axes[0]:
        _symlog_generations(ax, runs[0].result.generations)
    axes[0, 0].legend(fontsize=7)
    return common.save_figure(fig, output_dir, "regimes_categorical")


def plot_phase(study, output_dir):
    ph = study.phase
    if not ph:
        return []
    alphas, ms = ph["alphas"], ph["sample_sizes"]
    positive = alphas[alphas > 0]
    shift = 0.5 * positive.min() if positive.size else 0.01

    def fx(a):
        return np.log10(np.asarray(a, np.float64) + shift)

    def edges(centres):
        c = np.asarray(centres, np.float64)
        if c.size == 1:
            return np.array([c[0] - 0.5, c[0] + 0.5])
        mid = 0.5 * (c[1:] + c[:-1])
        return np.concatenate([[2 * c[0] - mid[0]], mid, [2 * c[-1] - mid[-1]]])

    xs, ys = fx(alphas), np.log10(ms.astype(np.float64))
    est = ph["estimator"]
    levels_var = (0.5, 0.8, 0.9, 0.95) if est == "mle" else (1.05, 1.1, 1.25, 1.5)
    levels_mu = (0.05, 0.1, 0.2, 0.5)
    fig, axes = common.subplots(
        1,
        2,
        f"fresh data: long-run moments at n={ph['generations']} ({est}, R = round(alpha M) "
        "real points per generation); lines: F1 fixed point",
        width=6.0,
        height=4.6,
    )
    tri_x, tri_y = fx(ph["contour_alpha"]), np.log10(ph["contour_m"])
    for ax, key, contour, levels, title in (
        (axes[0, 0], "var_mean", ph["contour_var"], levels_var, r"simulated $E[\sigma_n^2]$"),
        (axes[0, 1], "mean_var", ph["contour_mean_var"], levels_mu, r"simulated Var$(\mu_n)$"),
    ):
        z = ph[key]
        mesh = ax.pcolormesh(edges(xs), edges(ys), z, cmap="viridis", shading="flat")
        fig.colorbar(mesh, ax=ax)
        for i in range(len(ms)):
            for j in range(len(alphas)):
                mark = "" if abs(ph["alpha_eff"][i, j] - alphas[j]) < 1e-12 else "*"
                ax.text(
                    xs[j],
                    ys[i],
                    f"{z[i, j]:.2f}{mark}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="w" if z[i, j] < np.nanmedian(z) else "k",
                )
        ok = np.isfinite(contour)
        spread = len(np.unique(tri_x[ok])) > 1 and len(np.unique(tri_y[ok])) > 1
        if spread and np.ptp(contour[ok]) > 0:  # a single M gives no 2-D contour
            cs = ax.tricontour(
                tri_x[ok], tri_y[ok], contour[ok], levels=levels, colors="r", linewidths=1
            )
            ax.clabel(cs, fontsize=7, fmt="%g")
        ax.set_xticks(xs, [f"{a:g}" for a in alphas])
        ax.set_yticks(ys, [str(m) for m in ms])
        ax.set_xlim(edges(xs)[0], edges(xs)[-1])
        ax.set_ylim(edges(ys)[0], edges(ys)[-1])
        ax.set_xlabel(r"$\alpha$ (real share; * rounded to R/M)")
        ax.set_ylabel("M")
        ax.set_title(title, fontsize=9)
    return common.save_figure(fig, output_dir, "phase_diagram")


def plot_schedule(study, output_dir):
    runs = study.part("schedule")
    if not runs:
        return []
    cfg = study.config
    fig, axes = common.subplots(
        1,
        3,
        rf"$E[W_2^2]$ with $M_t = \lceil {cfg.schedule_m0}\, t^p \rceil$ ({cfg.estimator}): "
        r"bounded iff $\sum_t 1/M_t < \infty$ ($p > 1$); dashed: G6; "
        "thin/open: mean not measurable",
    )
    for i, run in enumerate(runs):
        res, th = run.result, run.theory
        g = res.generations[1:]
        color = f"C{i % 10}"
        c = res.num_chains
        ok = np.array([common.mean_is_measurable(v, c) for v in th["variance_cv2"][1:]])
        w2 = res.moments["w2_squared"].mean[1:]
        mu = res.moments["mean"].var[1:]
        for ax, emp, key in (
            (axes[0, 0], w2, "w2_mean"),
            (axes[0, 1], mu, "w2_mean_part"),
        ):
            ax.plot(
                g,
                np.where(ok, emp, np.nan),
                color=color,
                lw=1.5,
                label=f"p={run.settings['power']:g}",
            )
            ax.plot(g, np.where(ok, np.nan, emp), color=color, lw=0.6)
            ax.plot(g, th[key][1:], "--", color=color, lw=1)
        gens = res.snapshot_generations
        part = np.mean((np.exp(0.5 * res.snapshots["log_var"].astype(np.float64)) - 1) ** 2, 1)
        measurable = np.array([common.mean_is_measurable(th["variance_cv2"][n], c) for n in gens])
        for mask, face in ((measurable, color), (~measurable, "none")):
            axes[0, 2].plot(gens[mask], part[mask], "o", color=color, mfc=face, ms=4)
        axes[0, 2].plot(g, th["w2_std_part"][1:], "--", color=color, lw=1)
    titles = (r"$E[W_2^2]$", r"mean part Var$(\mu_n)$", r"std part $E[(\sigma_n-\sigma_0)^2]$")
    for ax, title in zip(axes[0], titles, strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("generation n")
        ax.set_title(title, fontsize=9)
    axes[0, 0].legend(fontsize=7)
    return common.save_figure(fig, output_dir, "schedule_w2")


def plot_verifier(study, output_dir):
    runs = study.part("verifier")
    if not runs:
        return []
    gauss = [r for r in runs if r.family == "gaussian"]
    cat = [r for r in runs if r.family == "categorical"]
    rows = [x for x in (gauss, cat) if x]
    fig, axes = common.subplots(
        len(rows),
        3,
        "verification filter on synthetic points (accept good-bad); real data never filtered",
    )
    for ax_row, group in zip(axes, rows, strict=True):
        panels = (
            (("log_var", r"$E[\log \sigma_n^2]$"), ("tail_real", "E[tail mass], real scale"))
            if group[0].family == "gaussian"
            else (("support", "support size"), ("tail_mass", "mass on the initial tail"))
        )
        for i, run in enumerate(group):
            color = f"C{i % 10}" if i else "k"  # plain: black
            ls = "--" if run.settings.get("accept") == (1.0, 1.0) else "-"  # on top of plain
            m = run.settings["sample_size"]
            for ax, (field, _) in zip(ax_row[:2], panels, strict=True):
                _moment(ax, run, field, color=color, ls=ls)
            _moment(ax_row[2], run, "train_size", scale=1.0 / m, color=color, ls=ls)
        for ax, (_, ylabel) in zip(ax_row[:2], panels, strict=True):
            ax.set_ylabel(ylabel)
            ax.set_xlabel("generation n")
        ax_row[2].set_ylabel("kept training points / M")
        ax_row[2].set_xlabel("generation n")
        if group[0].family == "categorical":
            ax_row[0].set_yscale("log")
        ax_row[0].legend(fontsize=7)
    return common.save_figure(fig, output_dir, "verifier")


def plot_all(study, output_dir) -> list[str]:
    return [
        p
        for f in (
            plot_regimes_gaussian,
            plot_regimes_categorical,
            plot_phase,
            plot_schedule,
            plot_verifier,
        )
        for p in f(study, output_dir)
    ]
