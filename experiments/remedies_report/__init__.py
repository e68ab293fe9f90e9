r"""The remedies study (issue 5): the collapsing chains under each data regime.

Four parts, one comparisons table (a section each); every run is a call of
:func:`sim.runners.run_gaussian` or :func:`sim.runners.run_categorical` with a
:class:`sim.regimes.Regime`:

* ``regimes`` (side by side): the 1-D Gaussian chain under replace,
  accumulate, subsample (budget M), fresh (a share alpha of real data) and
  anchored (a fixed real set, synthetic share lambda), against
  :mod:`theory.gaussian` (replace), :func:`theory.mixing.accumulate_moments`
  and :func:`theory.mixing.fresh_fraction_variance` (F1); with the variance
  known (only the mean refitted) against G5, L3
  (:func:`~theory.mixing.accumulate_mean_variance`) and F3
  (:func:`~theory.mixing.anchored_mean`). The categorical chain (Zipf) under
  the same regimes against D1/D3 for replace; the others have no closed form
  for support or heterozygosity, and the table says so. Every regime keeps
  the expected fit equal to p0 (each is an average of draws whose mean is the
  previous fit or p0), so the expected tail mass is tested for all of them.
* ``phase``: the fresh-data chain over a grid of (alpha, M), long-run
  E[sigma^2] and Var(mu) at the last generation against F1, with the F1
  fixed point's contours on the heatmaps. ``alpha`` is rounded as the
  simulator rounds it, R = round(alpha M) real points per generation, and the
  theory is evaluated at alpha_eff = R/M: the very model simulated.
* ``schedule``: the replace chain with M_t = ceil(M0 t^p)
  (:func:`theory.mixing.power_schedule`), E[W2^2] and its two parts against
  :func:`theory.mixing.schedule_w2` (G6): bounded iff sum 1/M_t < inf.
* ``verifier``: the replace chain whose synthetic points are filtered by a
  verifier (:func:`sim.regimes.gaussian_verifier`,
  :func:`sim.regimes.categorical_verifier`). No closed form exists for the
  filtered chain: its effects are reported, not tested. What is tested: the
  expected size of the first filtered training set (fit 2, drawn from fit 1,
  which saw real data only), an exact integral; a no-op verifier (keep
  everything) reproduces the plain replace chain chain by chain (same keys);
  a verifier that never keeps a bad point leaves no chain with a fit outside
  the good set (|mu| <= k sigma0, no mass on bad tokens).

Importable from notebooks: ``run_study(validate(StudyConfig(...)))`` returns
a :class:`Study`; ``write_outputs(study, dir)`` writes everything. The
command line is :mod:`experiments.remedies`, whose flags are made from
:class:`StudyConfig`.

The package is cut by part: :mod:`.config` (settings and their checks),
:mod:`.base` (runs, the study, the run context), :mod:`.side_by_side`,
:mod:`.phase`, :mod:`.schedules` and :mod:`.verifier`; this module runs
them in order and writes the files.
"""

from __future__ import annotations

import numpy as np

from experiments import common
from experiments.remedies_report.base import (
    PARTS,
    Context,
    Run,
    Study,
    report_generations,
    run_key,
    variance_curve,
)
from experiments.remedies_report.config import (
    KINDS,
    KNOWN_KINDS,
    StudyConfig,
    parse_accept,
    real_count,
    validate,
)
from experiments.remedies_report.phase import run_phase
from experiments.remedies_report.schedules import schedules
from experiments.remedies_report.side_by_side import (
    gaussian_theory,
    known_variance_runs,
    known_variance_theory,
    side_by_side_categorical,
    side_by_side_gaussian,
)
from experiments.remedies_report.verifier import (
    first_filter_acceptance,
    verifier_categorical,
    verifier_gaussian,
)

__all__ = [
    "KINDS",
    "KNOWN_KINDS",
    "PARTS",
    "Run",
    "Study",
    "StudyConfig",
    "first_filter_acceptance",
    "gaussian_theory",
    "known_variance_theory",
    "parse_accept",
    "real_count",
    "report_generations",
    "run_key",
    "run_study",
    "summary_rows",
    "validate",
    "write_outputs",
]

GAUSSIAN_FIELDS = ("mean", "log_var", "w2_squared", "tail_real", "collapsed", "train_size")
CATEGORICAL_FIELDS = ("support", "heterozygosity", "entropy", "tail_mass", "tv", "train_size")
PART_TITLES = {
    "regimes": "side by side: Gaussian, mean and variance refitted",
    "known": "side by side: Gaussian, variance known (only the mean refitted)",
    "categorical": "side by side: categorical (Zipf)",
    "phase": "phase diagram: fresh data, long-run moments (F1)",
    "schedule": "sample-size schedules M_t = ceil(M0 t^p) (G6)",
    "verifier": "verification filter",
}


def run_study(config, progress: bool = True) -> Study:
    """Simulates every part of ``config`` and compares with theory."""
    with common.float64():
        return _run_study(config, progress)


def _run_study(config, progress: bool) -> Study:
    import jax.numpy as jnp

    from sim.chain import root_key

    dtype = jnp.float64 if config.x64 else jnp.float32
    ctx = Context(
        config,
        root_key(config.seed, config.prng_impl),
        progress,
        dict(dtype=dtype, chunk_chains=config.chunk_chains, progress=None if progress else False),
        [],
        {p: [] for p in PARTS},
    )
    if config.num_chains > 0:
        side_by_side_gaussian(ctx)
        if config.known_variance:
            known_variance_runs(ctx)
    if config.cat_chains > 0:
        side_by_side_categorical(ctx)
    phase = run_phase(ctx) if config.phase_chains > 0 else None
    if config.schedule_chains > 0:
        schedules(ctx)
    if config.verifier_chains > 0:
        verifier_gaussian(ctx)
    if config.cat_chains > 0:
        verifier_categorical(ctx)
    rows = [r for p in PARTS for r in ctx.sections[p]]
    titles = [(section_title(p, config), ctx.sections[p]) for p in PARTS]
    return common.judged(
        config,
        ctx.runs,
        rows,
        table=lambda rows, z_crit: common.format_sections(titles, z_crit),
        study_cls=Study,
        phase=phase,
    )


def section_title(part: str, config) -> str:
    c = config
    detail = {
        "regimes": f"M={c.sample_size} {c.estimator}, method={c.method}, "
        f"fresh alpha={c.fresh_alpha:g}, anchored lambda={c.anchor_lam:g}, "
        f"subsample B=M ({c.subsample_chains} chains)",
        "known": f"M={c.sample_size}, sigma = sigma0 = 1",
        "categorical": f"Zipf K={c.num_categories} beta={c.zipf_beta:g}, M={c.cat_sample_size}",
        "phase": f"{c.phase_estimator}, fixed count R = round(alpha M), "
        f"G={c.phase_generations}, method={c.method}",
        "schedule": f"M0={c.schedule_m0}, {c.estimator}, exact draws",
        "verifier": f"k={c.verifier_k:g} sigma0 (Gaussian), top {c.verifier_good_ranks} "
        "tokens good (categorical); accept good:bad",
    }[part]
    return f"{PART_TITLES[part]} ({detail})"


# ----------------------------------------------------------------------------- outputs


def summary_rows(study: Study):
    """Tidy per-generation rows: empirical moments beside the theory columns."""
    for run in study.runs:
        res, th = run.result, run.theory
        fields = GAUSSIAN_FIELDS if run.family == "gaussian" else CATEGORICAL_FIELDS
        curve = None
        if run.family == "gaussian" and "log_var" in res.snapshots:
            gens, vm, vs = variance_curve(run)
            curve = {int(n): (vm[j], vs[j]) for j, n in enumerate(gens)}
        for n in res.generations:
            row = dict(
                part=run.part,
                config=run.label,
                regime=run.regime.label,
                family=run.family,
                sample_size=run.settings.get("sample_size", run.settings.get("m0")),
                generation=int(n),
            )
            common.moment_columns(row, res.moments, fields, n)
            if curve is not None:
                row["var_mean"], row["var_sem"] = curve.get(int(n), ("", ""))
            common.theory_columns(row, th, n, len(res.generations))
            yield row


def run_arrays(run: Run) -> dict:
    res = run.result
    out = dict(train_size_final=np.asarray(res.moments["train_size"].mean))
    if run.family == "gaussian":
        out.update(mean=res.final.params.mean, log_var=res.final.params.log_var)
        for f, v in res.snapshots.items():
            out[f"snapshot_{f}"] = v
        out["snapshot_generations"] = res.snapshot_generations
        if "sizes" in run.settings:
            out["schedule"] = run.settings["sizes"]
    else:
        out.update(final_probs=res.final.params.probs)
    return out


def write_outputs(
    study: Study, output_dir: str, flags_dict: dict | None = None, wall_s: float | None = None
) -> list[str]:
    """Writes CSVs, figures (PNG + PDF), per-chain states (.npz) and a manifest."""
    from experiments import remedies_figures

    return common.write_study(
        study,
        output_dir,
        experiment="remedies",
        summary_rows=summary_rows(study),
        run_arrays=run_arrays,
        plot_all=remedies_figures.plot_all,
        flags_dict=flags_dict,
        wall_s=wall_s,
    )
