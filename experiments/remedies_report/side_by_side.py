"""Side by side: the Gaussian and categorical chains under every regime
(G2, G3, G5, L3, F1, F3, D1, D3)."""

from __future__ import annotations

import math
import time

import numpy as np

from experiments.remedies_report.base import (
    Context,
    Run,
    categorical_resolution,
    chain_variances,
    comparison,
    make_regime,
    measurable,
    nan_curve,
    report_generations,
    run_key,
    train_size_row,
    vocabulary,
)
from experiments.remedies_report.config import KINDS, KNOWN_KINDS, real_count


def gaussian_theory(kind: str, g: int, m: int, est: str, *, alpha_eff=None):
    """Closed forms for the Gaussian chain under ``kind`` (sigma0 = 1), generations 0..G.

    Fit 1 sees M real points in every regime, so the replace chain's values at
    n <= 1 hold for all of them; past that, subsample and anchored (both
    refitted) have no closed form (NaN).
    """
    import jax.numpy as jnp

    from theory import gaussian as tg
    from theory import mixing as tm

    n = np.arange(g + 1)
    nj = jnp.asarray(n, jnp.float64)
    rep = dict(
        log_var_mean=tg.log_variance_mean(nj, m, est),
        log_var_var=tg.log_variance_var(nj, m),
        var_mean=tg.expected_variance(nj, m, est),
        mean_var=tg.mean_variance(nj, m, est),
        w2_mean=tg.expected_w2_squared(nj, m, est),
        variance_cv2=tg.variance_cv2(nj, m),
    )
    rep = {k: np.asarray(v, np.float64) for k, v in rep.items()}
    if kind == "replace":
        return rep
    out = {k: np.where(n <= 1, rep[k], np.nan) for k in ("var_mean", "mean_var")}
    if kind == "accumulate":
        res = tm.accumulate_moments(n, m, est)
        out = dict(var_mean=res.expected_variance, mean_var=res.mean_variance)
    elif kind == "fresh":
        res = tm.fresh_fraction_variance(nj, m, alpha_eff, est, mixing="fixed")
        fp = tm.fresh_fraction_fixed_point(m, alpha_eff, est, mixing="fixed")
        out = dict(
            var_mean=res.expected_variance,
            mean_var=res.mean_variance,
            var_fixed_point=np.full(g + 1, float(fp.expected_variance)),
            mean_var_fixed_point=np.full(g + 1, float(fp.mean_variance)),
        )
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def known_variance_theory(kind: str, g: int, m: int, *, lam_eff=None) -> dict:
    """Var(mu_n) with sigma = sigma0 = 1 known: G5 (replace), L3, F3."""
    import jax.numpy as jnp

    from theory import gaussian as tg
    from theory import mixing as tm

    n = np.arange(g + 1)
    if kind == "replace":  # mu_{t+1} = mu_t + Z/sqrt(M): G5 with r = 1
        v = tg.mean_variance(jnp.asarray(n, jnp.float64), m, "unbiased")
    elif kind == "accumulate":
        v = tm.accumulate_mean_variance(n, m)
    else:
        v = tm.anchored_mean(n, m, lam_eff).variance
    return dict(mean_var=np.asarray(v, np.float64))


def compare_gaussian(run: Run) -> list:
    """Moments of the Gaussian chain under a regime at the report generations."""
    res, th = run.result, run.theory
    c, g = res.num_chains, len(res.generations) - 1
    mom = res.moments
    rows = []
    for n in report_generations(g):
        s2 = chain_variances(run, n)
        ok, why = measurable(run, n, s2, c)
        if "log_var_mean" in th:
            lv = mom["log_var"]
            rows.append(
                comparison(run, "E[log s2] (G3)", n, lv.mean[n], lv.sem[n], th["log_var_mean"][n])
            )
            rows.append(
                comparison(
                    run, "Var[log s2] (G3)", n, lv.var[n], lv.var_se[n], th["log_var_var"][n]
                )
            )
        src = {"replace": "G2", "accumulate": "accumulate", "fresh": "F1"}.get(run.settings["kind"])
        tag = f" ({src})" if src else " (fit 1 real)" if n <= 1 else ""
        rows.append(
            comparison(
                run,
                f"E[s2]{tag}",
                n,
                s2.mean(),
                s2.std(ddof=1) / math.sqrt(c),
                th["var_mean"][n],
                ok,
                why,
            )
        )
        mu = mom["mean"]
        rows.append(
            comparison(run, f"Var[mu]{tag}", n, mu.var[n], mu.var_se[n], th["mean_var"][n], ok, why)
        )
        if "w2_mean" in th:
            w2 = mom["w2_squared"]
            rows.append(
                comparison(run, "E[W2^2] (G6)", n, w2.mean[n], w2.sem[n], th["w2_mean"][n], ok, why)
            )
    rows.append(train_size_row(run, g))
    return rows


def compare_known(run: Run) -> list:
    res, th = run.result, run.theory
    g = len(res.generations) - 1
    src = {"replace": "G5", "accumulate": "L3", "anchored": "F3"}[run.settings["kind"]]
    mu = res.moments["mean"]
    rows = [
        comparison(
            run, f"Var[mu] ({src}, sigma known)", n, mu.var[n], mu.var_se[n], th["mean_var"][n]
        )
        for n in report_generations(g)
    ]
    rows.append(train_size_row(run, g))
    return rows


def compare_categorical(run: Run) -> list:
    """D1/D3 for replace; the tail-mass martingale for every regime."""
    res, th = run.result, run.theory
    c, g = res.num_chains, len(res.generations) - 1
    eps = categorical_resolution(run)
    rows = []
    for n in report_generations(g):
        tm_ = res.moments["tail_mass"]
        rows.append(
            comparison(
                run,
                "E[tail mass] (martingale)",
                n,
                tm_.mean[n],
                tm_.sem[n],
                th["tail_mass"][n],
                resolution=eps,
            )
        )
        sup = res.moments["support"]
        se = sup.sem[n]
        if "support_var_indep" in th:  # a floor where no chain varies (categorical_report)
            se = max(se, math.sqrt(th["support_var_indep"][n] / c))
        rows.append(
            comparison(
                run,
                "E[support] (D3)",
                n,
                sup.mean[n],
                se,
                th["support"][n],
                resolution=eps * max(1.0, th["support"][n])
                if math.isfinite(th["support"][n])
                else 0,
            )
        )
        h = res.moments["heterozygosity"]
        rows.append(
            comparison(
                run, "E[H] (D1)", n, h.mean[n], h.sem[n], th["heterozygosity"][n], resolution=eps
            )
        )
    rows.append(train_size_row(run, g))
    return rows


def side_by_side_gaussian(ctx: Context) -> None:
    """Every regime, mean and variance refitted; snapshots of log sigma^2 at every n."""
    from sim.runners import run_gaussian

    config = ctx.config
    m, est, g = config.sample_size, config.estimator, config.generations
    alpha_eff = real_count(config.fresh_alpha, m) / m
    for kind in config.regimes:
        sub = kind == "subsample"
        method = "sample" if sub else config.method  # a pool of points needs points
        c = config.subsample_chains if sub else config.num_chains
        if c == 0:
            continue
        regime = make_regime(kind, config, m)
        label = f"G {kind}"
        res = ctx.simulate(
            run_gaussian,
            label,
            run_key(ctx.root, "regimes", KINDS.index(kind)),
            c,
            g,
            sample_size=m,
            estimator=est,
            method=method,
            regime=regime,
            tail_k=config.tail_k,
            snapshot_generations=tuple(range(g + 1)),
            snapshot_fields=("log_var",),
        )
        t = time.perf_counter()
        th = gaussian_theory(kind, g, m, est, alpha_eff=alpha_eff)
        res.timings["theory_s"] = time.perf_counter() - t
        settings = dict(kind=kind, sample_size=m, estimator=est, method=method)
        if kind == "fresh":
            settings["alpha_eff"] = alpha_eff
        run = Run(label, "regimes", "gaussian", regime, settings, res, th)
        ctx.add(run, compare_gaussian(run))


def known_variance_runs(ctx: Context) -> None:
    """Replace, accumulate and anchored with sigma = sigma0 known (G5, L3, F3)."""
    from sim.runners import run_gaussian

    config = ctx.config
    m, g = config.sample_size, config.generations
    lam_eff = real_count(config.anchor_lam, m) / m
    for kind in (k for k in config.regimes if k in KNOWN_KINDS):
        regime = make_regime(kind, config, m)
        label = f"Gk {kind}"
        res = ctx.simulate(
            run_gaussian,
            label,
            run_key(ctx.root, "known", KINDS.index(kind)),
            config.num_chains,
            g,
            sample_size=m,
            estimator=config.estimator,
            method=config.method,
            regime=regime,
            known_variance=1.0,
            tail_k=config.tail_k,
            snapshot_fields=(),
        )
        th = known_variance_theory(kind, g, m, lam_eff=lam_eff)
        settings = dict(kind=kind, sample_size=m, method=config.method, known_variance=1.0)
        run = Run(label, "known", "gaussian", regime, settings, res, th)
        ctx.add(run, compare_known(run))


def side_by_side_categorical(ctx: Context) -> None:
    """Every regime on the Zipf vocabulary; D1/D3 for replace, the martingale for all."""
    from experiments.categorical_report import main_theory
    from sim.runners import run_categorical

    config = ctx.config
    vocab = vocabulary(config)
    kw = ctx.categorical_kw(vocab)
    k, m, g = vocab.num_categories, config.cat_sample_size, config.cat_generations
    tail_rank = kw["tail_rank"]
    p0_tail = float(np.sort(vocab.probs)[::-1][tail_rank:].sum())
    for kind in config.regimes:
        c = config.cat_subsample_chains if kind == "subsample" else config.cat_chains
        if c == 0:
            continue
        regime = make_regime(kind, config, m)
        label = f"C {kind}"
        res = ctx.simulate(
            run_categorical,
            label,
            run_key(ctx.root, "categorical", KINDS.index(kind)),
            c,
            g,
            regime=regime,
            **kw,
        )
        t = time.perf_counter()
        if kind == "replace":
            full = main_theory(vocab, m, g, kw["bucket_edges"], tail_rank)
            th = {n: full[n] for n in ("support", "support_var_indep", "heterozygosity")}
        else:
            th = dict(support=nan_curve(g), heterozygosity=nan_curve(g))
            th["support"][0] = k
        th["tail_mass"] = np.full(g + 1, p0_tail)
        res.timings["theory_s"] = time.perf_counter() - t
        settings = dict(kind=kind, sample_size=m, vocabulary=vocab.name)
        run = Run(label, "categorical", "categorical", regime, settings, res, th)
        ctx.add(run, compare_categorical(run))
