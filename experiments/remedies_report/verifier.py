"""The verification filter: what is exact about the filtered chains is tested, the rest reported."""

from __future__ import annotations

import math

import numpy as np

from experiments.remedies_report.base import (
    Context,
    Run,
    comparison,
    report_generations,
    run_key,
    snapshot_at,
    vocabulary,
)
from experiments.remedies_report.config import parse_accept
from experiments.remedies_report.side_by_side import gaussian_theory

# A no-op verifier computes the training statistics from the points
# x = mu + sigma z instead of the standardised z (sim.regimes, ops.points): the
# same chain up to float rounding, which grows as sigma/|mu| shrinks (measured
# at most 2.6e-4 in log sigma^2 at n=100, M=20, float32). A wrong engine
# (filtering, keys) moves chains by O(1).
IDENTITY_TOL = 1e-2


def first_filter_acceptance(m: int, est: str, k: float) -> float:
    r"""P(a draw of fit 1 lands within k sigma0 of mu0), averaged over fit 1.

    Fit 1 is fitted to M real points: :math:`\mu_1 \sim N(0, 1/M)` and
    :math:`\sigma_1^2 = \chi^2_{M-1}/c` independent (sigma0 = 1). Given
    :math:`\sigma_1`, a draw :math:`\mu_1 + \sigma_1 Z` is
    :math:`N(0, \sigma_1^2 + 1/M)`, so the probability is
    :math:`\mathbb{E}[\operatorname{erf}(k/\sqrt{2(\sigma_1^2 + 1/M)})]`, a
    one-dimensional integral over :math:`y = \chi^2_{M-1}/2 \sim
    \mathrm{Gamma}(a = (M-1)/2)`, computed by the trapezoid rule in
    :math:`u = \log y` (smooth, doubly exponentially decaying integrand:
    error far below the Monte-Carlo error).
    """
    c = m if est == "mle" else m - 1
    a = 0.5 * (m - 1)
    lo = math.log(a) - 40.0 / a - 2.0
    hi = math.log(a + 60.0 + 12.0 * math.sqrt(a))
    u = np.linspace(lo, hi, 40_001)
    y = np.exp(u)
    w = np.exp(a * u - y - math.lgamma(a))
    s2 = 2.0 * y / c
    g = np.frompyfunc(math.erf, 1, 1)(k / np.sqrt(2.0 * (s2 + 1.0 / m))).astype(np.float64)
    h = u[1] - u[0]
    total = h * (w.sum() - 0.5 * (w[0] + w[-1]))
    num = h * ((w * g).sum() - 0.5 * (w[0] * g[0] + w[-1] * g[-1]))
    if abs(total - 1.0) > 1e-9:
        raise RuntimeError(f"quadrature of the chi-square density gave {total!r}, not 1")
    return float(num / total)


def verifier_settings(config) -> list[tuple[float, float]]:
    """(accept_good, accept_bad) pairs: the no-op (1, 1) first, no repeats."""
    pairs = [(1.0, 1.0)] + [parse_accept(a) for a in config.verifier_accepts]
    return list(dict.fromkeys(pairs))


def compare_verifier(run: Run, plain: Run) -> list:
    """Tested: fit 2's expected training-set size; a no-op filter changes nothing; a
    filter that keeps no bad point leaves no fit outside the good set. Reported
    (not tested): the effect on collapse, tails and support at G."""
    res, th = run.result, run.theory
    s = run.settings
    g = len(res.generations) - 1
    m = s["sample_size"]
    rows = []
    if s.get("accept") is None:  # the plain chain: the replace theory where it exists
        if run.family == "gaussian":
            lv = res.moments["log_var"]
            for n in report_generations(g):
                rows.append(
                    comparison(
                        run, "E[log s2] (G3)", n, lv.mean[n], lv.sem[n], th["log_var_mean"][n]
                    )
                )
        return rows
    good, bad = s["accept"]
    ts = res.moments["train_size"]
    if g >= 2:
        rows.append(
            comparison(
                run,
                "E[train size] fit 2 (exact integral)",
                2,
                ts.mean[2],
                ts.sem[2],
                th["train_size"][2],
                note=f"P(good draw) = {s['p_good']:.5g}",
                resolution=16 * m * float(np.finfo(np.float32).eps),
            )
        )
    if (good, bad) == (1.0, 1.0):
        off = np.zeros(res.num_chains, bool)
        if run.family == "gaussian":
            for n in report_generations(g):
                for f in ("log_var", "mean"):
                    d = np.abs(snapshot_at(res, f, n) - snapshot_at(plain.result, f, n))
                    off |= ~(d <= IDENTITY_TOL)
        else:
            off = np.any(res.final.params.probs != plain.result.final.params.probs, axis=-1)
        rows.append(
            comparison(
                run,
                "chains off plain replace (no-op)",
                g,
                off.mean(),
                0.0,
                0.0,
                note="same keys; tolerance "
                + (f"{IDENTITY_TOL:g}" if run.family == "gaussian" else "0 (bitwise)"),
            )
        )
    if bad == 0.0 and g >= 2:
        if run.family == "gaussian":
            k = s["k"]
            gens = [n for n in report_generations(g) if n >= 2]
            worst = max(float(np.max(np.abs(snapshot_at(res, "mean", n)))) for n in gens)
            rows.append(
                comparison(
                    run,
                    "max |mu| over chains, n>=2 <= k",
                    g,
                    worst,
                    0.0,
                    min(worst, k),
                    note=f"bound k={k:g} sigma0 (only good points are kept)",
                )
            )
        else:
            worst = float(np.max(res.final.params.probs[:, ~s["good_mask"]].sum(-1)))
            rows.append(comparison(run, "max mass on bad tokens at G", g, worst, 0.0, 0.0))
    # Measured effects at G, beside the plain chain's.
    fields = (
        (("log_var", "E[log s2]"), ("tail_real", "E[tail_real]"))
        if run.family == "gaussian"
        else (("support", "E[support]"), ("tail_mass", "E[tail mass]"), ("heterozygosity", "E[H]"))
    )
    for f, name in fields:
        mo, ref = res.moments[f], plain.result.moments[f]
        rows.append(
            comparison(
                run,
                f"{name} at G",
                g,
                mo.mean[g],
                mo.sem[g],
                math.nan,
                note=f"measured; plain replace {ref.mean[g]:.4g} +- {ref.sem[g]:.2g}",
            )
        )
    rows.append(
        comparison(
            run,
            "E[train size]/M at G",
            g,
            ts.mean[g] / m,
            ts.sem[g] / m,
            math.nan,
            note="measured",
        )
    )
    return rows


def verifier_gaussian(ctx: Context) -> None:
    """Replace with points, unfiltered and filtered, all on one key (common random
    numbers: a no-op filter must then give the very same chains)."""
    from sim.families.gaussian import gaussian_verifier
    from sim.regimes import Regime
    from sim.runners import run_gaussian

    config = ctx.config
    m, est, g, k = (
        config.sample_size,
        config.estimator,
        config.verifier_generations,
        config.verifier_k,
    )
    c = config.verifier_chains
    key = run_key(ctx.root, "verifier", 0)
    kw = dict(
        sample_size=m,
        estimator=est,
        method="sample",
        tail_k=config.tail_k,
        snapshot_generations=tuple(report_generations(g)),
        snapshot_fields=("log_var", "mean"),
    )
    res = ctx.simulate(run_gaussian, "vG plain", key, c, g, regime=Regime.replace(), **kw)
    settings = dict(kind="replace", sample_size=m, accept=None)
    th = gaussian_theory("replace", g, m, est)
    plain = Run("vG plain", "verifier", "gaussian", Regime.replace(), settings, res, th)
    ctx.add(plain, compare_verifier(plain, plain))
    p_good = first_filter_acceptance(m, est, k)
    for good, bad in verifier_settings(config):
        regime = Regime.replace(
            verifier=gaussian_verifier(0.0, 1.0, k, accept_good=good, accept_bad=bad)
        )
        label = f"vG {good:g}-{bad:g}"
        res = ctx.simulate(run_gaussian, label, key, c, g, regime=regime, **kw)
        ts = np.full(g + 1, m * (good * p_good + bad * (1 - p_good)))
        ts[:2] = (0.0, m)  # fit 1 sees real data, never filtered
        settings = dict(kind="replace", sample_size=m, accept=(good, bad), k=k, p_good=p_good)
        run = Run(label, "verifier", "gaussian", regime, settings, res, dict(train_size=ts))
        ctx.add(run, compare_verifier(run, plain))


def verifier_categorical(ctx: Context) -> None:
    """Tokens of the top ``verifier_good_ranks`` ranks are good; one key for all runs."""
    from sim.families.categorical import categorical_verifier
    from sim.regimes import Regime
    from sim.runners import run_categorical

    config = ctx.config
    vocab = vocabulary(config)
    kw = ctx.categorical_kw(vocab)
    m, g, c = config.cat_sample_size, config.cat_generations, config.cat_chains
    key = run_key(ctx.root, "verifier", 1)
    min_prob = float(np.sort(vocab.probs)[::-1][config.verifier_good_ranks - 1])
    good_mask = vocab.probs >= min_prob
    mass_good = float(vocab.probs[good_mask].sum())
    res = ctx.simulate(run_categorical, "vC plain", key, c, g, regime=Regime.replace(), **kw)
    settings = dict(kind="replace", sample_size=m, accept=None)
    plain = Run("vC plain", "verifier", "categorical", Regime.replace(), settings, res, {})
    ctx.add(plain, compare_verifier(plain, plain))
    for good, bad in verifier_settings(config):
        regime = Regime.replace(
            verifier=categorical_verifier(vocab, min_prob, accept_good=good, accept_bad=bad)
        )
        label = f"vC {good:g}-{bad:g}"
        res = ctx.simulate(run_categorical, label, key, c, g, regime=regime, **kw)
        # E[p_1] = p0 (fit 1 is the real sample's frequencies), so the expected
        # number kept at fit 2 is M sum_i p0_i accept(i), exactly.
        ts = np.full(g + 1, m * (good * mass_good + bad * (1 - mass_good)))
        ts[:2] = (0.0, m)
        settings = dict(
            kind="replace",
            sample_size=m,
            accept=(good, bad),
            p_good=mass_good,
            good_mask=good_mask,
            min_prob=min_prob,
        )
        run = Run(label, "verifier", "categorical", regime, settings, res, dict(train_size=ts))
        ctx.add(run, compare_verifier(run, plain))
