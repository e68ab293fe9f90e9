"""The Bayesian-chain study: run, compare with theory.bayes, write figures and files.

Importable from notebooks: ``run_study(validate(StudyConfig(...)))`` returns a
:class:`~experiments.common.Study`; ``write_outputs(study, dir)`` writes everything.
The command line is :mod:`experiments.bayes_chain`.

For each sample size M, each update (``refit``: every posterior from the same NIG
prior, regime (a); ``sequential``: the posterior becomes the next prior, regime (b))
and each predictive (``joint``: one posterior draw of (mu, sigma^2), then M normal
points; ``student_t``: M independent draws of the one-point Student-t predictive),
C chains run for G generations. The table sets beside ``theory.bayes``, at the
report generations: E[posterior mean of sigma^2] (``expected_var_mean``), E[mu_n]
and Var[mu_n], and for refit/joint at G the stationary E log of the posterior mean
(``stationary_log_var_mean``, tested where ``drift_rate^G`` < 1e-3). The plug-in
MLE Gaussian chain (``sim`` family ``gaussian``, ``estimator="mle"``, exact path) runs
beside them, its E[log s2] against ``theory.gaussian.log_variance_mean``.

A row is tested only where the statistic has finite fourth moments, so that its MC
SE is itself reliable: the posterior mean of sigma^2 has moments of order below
alpha0 under refit (its stationary law is beta0 / Beta(alpha0, M/2) / (alpha_n - 1))
and below alpha0 + M/2 under sequential updating; rows need that order above 4.
"""

from __future__ import annotations

import dataclasses
import functools
import zlib

import numpy as np

from experiments import common
from experiments.common import MAX_SIZE, setting

UPDATES = ("refit", "sequential")
PREDICTIVES = ("joint", "student_t")
FIELDS = ("var_mean", "log_var_mean", "mean", "pred_var")
MIN_TAIL_ORDER = 4.0  # rows need finite moments beyond this order


@dataclasses.dataclass(frozen=True)
class StudyConfig(common.CommonSettings):
    """Everything that determines a Bayesian-chain study's numbers (and its flags)."""

    num_chains: int = setting(20_000, "Independent chains per configuration (C).", high=MAX_SIZE)
    generations: int = setting(60, "Number of fits per chain (G).", high=MAX_SIZE)
    sample_sizes: tuple[int, ...] = setting(
        (10,), "Samples per generation (M), a list.", high=MAX_SIZE
    )
    updates: tuple[str, ...] = setting(
        UPDATES, "refit (regime a: the same prior every fit) and/or sequential (regime b)."
    )
    predictives: tuple[str, ...] = setting(
        PREDICTIVES,
        "joint (one posterior draw, then M points) and/or student_t (M iid predictive draws).",
    )
    mu0: float = setting(0.0, "Prior mean of mu.")
    kappa0: float = setting(1.0, "Prior pseudo-count of mu (> 0).")
    alpha0: float = setting(5.0, "Prior shape of sigma^2 (> 0).")
    beta0: float = setting(2.0, "Prior scale of sigma^2 (> 0); prior mean beta0/(alpha0-1).")
    real_mean: float = setting(0.0, "Mean of the real distribution.")
    real_sd: float = setting(1.0, "Standard deviation of the real distribution (> 0).")


def validate(config: StudyConfig) -> StudyConfig:
    """Raises ValueError('--flag=value: reason') for the first bad setting."""
    bad = common.bad
    common.check_settings(config)
    if config.num_chains < 2:
        bad("num_chains", config.num_chains, "need at least 2 chains")
    if config.generations < 1:
        bad("generations", config.generations, "need at least 1 generation")
    if not config.sample_sizes:
        bad("sample_sizes", "", "give at least one sample size")
    for m in config.sample_sizes:
        if m < 2:
            bad("sample_sizes", m, "a fit needs M >= 2 points")
    for name, allowed in (("updates", UPDATES), ("predictives", PREDICTIVES)):
        values = getattr(config, name)
        if not values:
            bad(name, "", f"give at least one of {', '.join(allowed)}")
        for v in values:
            if v not in allowed:
                bad(name, v, f"choose from {', '.join(allowed)}")
    for name in ("kappa0", "alpha0", "beta0", "real_sd"):
        v = getattr(config, name)
        if not (np.isfinite(v) and v > 0):
            bad(name, f"{v:g}", "must be finite and > 0")
    for name in ("mu0", "real_mean"):
        v = getattr(config, name)
        if not np.isfinite(v):
            bad(name, f"{v:g}", "must be finite")
    common.check_memory(memory_runs(config), config.x64, config.chunk_chains)
    return config


def memory_runs(config: StudyConfig):
    """The study's runs as the memory model sees them."""
    for m in config.sample_sizes:
        for _ in range(len(config.updates) * len(config.predictives) + 1):
            yield common.RunSize(
                chains=("num_chains", config.num_chains),
                generations=("generations", config.generations),
                fields=len(FIELDS) + 2,
                elements=m,
                elements_flag=("sample_sizes", m),
                advice="use fewer chains (--num_chains, --chunk_chains)",
                state_floats=8,
                columns=20,
            )


@dataclasses.dataclass
class ConfigRun:
    """One configuration: simulation and theory."""

    label: str
    sample_size: int
    update: str  # refit, sequential, or "mle" for the plug-in Gaussian chain
    predictive: str
    result: object  # sim.parallel.SimulationResult
    theory: dict  # name -> (G+1,) float64 arrays


Study = common.Study


def report_generations(g: int) -> list[int]:
    """Generations shown in the table: 1, 2, 5, 10, 20, 50, ... below G, and G."""
    return common.report_generations(g, [k * 10**e for e in range(7) for k in (1, 2, 5)])


def label_of(m, update, predictive) -> str:
    return f"M={m} mle" if update == "mle" else f"M={m} {update} {predictive}"


def config_key(root, label: str):
    """Each configuration's key depends on its own label only."""
    import jax

    return jax.random.fold_in(root, zlib.crc32(label.encode()) & 0x7FFFFFFF)


def prior(config):
    return (config.mu0, config.kappa0, config.alpha0, config.beta0)


def theory_curves(n, m, update, predictive, config) -> dict:
    """Every closed form of one configuration on generations ``n`` (float64)."""
    from theory import bayes as tb
    from theory import gaussian as tg

    if update == "mle":
        return {
            "log_var_mean": np.asarray(tg.log_variance_mean(n, m, "mle", config.real_sd)),
            "var_mean": np.asarray(tg.expected_variance(n, m, "mle", config.real_sd)),
        }
    args = (n, m, *prior(config), config.real_mean, config.real_sd)
    kw = dict(update=update, predictive=predictive)
    out = {
        "var_mean": tb.expected_var_mean(*args, **kw),
        "mean_mean": tb.expected_mean(*args, **kw),
        "mean_var": tb.mean_variance(*args, **kw),
    }
    if update == "refit":
        out["var_mean_limit"] = np.full(
            len(n),
            float(
                tb.var_mean_fixed_point(
                    m, config.kappa0, config.alpha0, config.beta0, predictive=predictive
                )
            ),
        )
        if predictive == "joint":
            out["log_var_mean_limit"] = np.full(
                len(n), float(tb.stationary_log_var_mean(m, config.alpha0, config.beta0))
            )
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def tail_order(update: str, m: int, alpha0: float) -> float:
    """The order below which the posterior mean of sigma^2 has finite moments."""
    return alpha0 if update == "refit" else alpha0 + m / 2


def compare(run: ConfigRun, config) -> list:
    """The comparison rows of one configuration at the report generations."""
    res, th = run.result, run.theory
    g = len(res.generations) - 1
    rows = []
    if run.update == "mle":
        lv = res.moments["log_var"]
        for n in report_generations(g):
            rows.append(
                common.Comparison(
                    config=run.label,
                    statistic="E[log s2]",
                    generation=n,
                    empirical=float(lv.mean[n]),
                    se=float(lv.sem[n]),
                    theory=float(th["log_var_mean"][n]),
                    testable=True,
                    note="",
                )
            )
        return rows
    ok = tail_order(run.update, run.sample_size, config.alpha0) > MIN_TAIL_ORDER
    note = "" if ok else f"heavy tail: moments of order >= {MIN_TAIL_ORDER:g} infinite"
    vm, mean = res.moments["var_mean"], res.moments["mean"]
    for n in report_generations(g):
        for statistic, emp, se, theory in (
            ("E[var_mean]", vm.mean[n], vm.sem[n], th["var_mean"][n]),
            ("E[mu]", mean.mean[n], mean.sem[n], th["mean_mean"][n]),
            ("Var[mu]", mean.var[n], mean.var_se[n], th["mean_var"][n]),
        ):
            rows.append(
                common.Comparison(
                    config=run.label,
                    statistic=statistic,
                    generation=n,
                    empirical=float(emp),
                    se=float(se),
                    theory=float(theory),
                    testable=ok,
                    note=note,
                )
            )
    if "log_var_mean_limit" in th:
        from theory import bayes as tb

        gap = float(tb.drift_rate(run.sample_size, config.kappa0, config.alpha0)) ** g
        lv = res.moments["log_var_mean"]
        near = gap < 1e-3
        rows.append(
            common.Comparison(
                config=run.label,
                statistic="E[log var_mean] (stationary)",
                generation=g,
                empirical=float(lv.mean[g]),
                se=float(lv.sem[g]),
                theory=float(th["log_var_mean_limit"][g]),
                testable=near and ok,
                note="" if near else f"not stationary yet (rate^G = {gap:.1e})",
            )
        )
    return rows


def run_study(config, progress: bool = True) -> Study:
    """Simulates every configuration of ``config`` and compares with theory."""
    with common.float64():
        return _run_study(config, progress)


def _run_study(config, progress: bool) -> Study:
    import jax.numpy as jnp

    from sim.chain import root_key
    from sim.run import run as run_family

    g, c = config.generations, config.num_chains
    dtype = jnp.float64 if config.x64 else jnp.float32
    root = root_key(config.seed, config.prng_impl)
    n = np.arange(g + 1)
    common_kw = dict(
        num_chains=c,
        num_generations=g,
        dtype=dtype,
        chunk_chains=config.chunk_chains,
        progress=None if progress else False,
    )
    runs, rows = [], []
    for m in config.sample_sizes:
        todo = [(u, p) for u in config.updates for p in config.predictives] + [("mle", "")]
        for update, predictive in todo:
            label = label_of(m, update, predictive)
            if update == "mle":
                runner = functools.partial(run_family, "gaussian")
                kw = dict(
                    estimator="mle", method="exact", mu0=config.real_mean, sigma0=config.real_sd
                )
            else:
                runner = functools.partial(run_family, "bayes")
                kw = dict(
                    update=update,
                    predictive=predictive,
                    mu0=config.mu0,
                    kappa0=config.kappa0,
                    alpha0=config.alpha0,
                    beta0=config.beta0,
                    real_mean=config.real_mean,
                    real_sd=config.real_sd,
                )
            res = common.timed_run(
                runner,
                label,
                progress,
                "",
                key=config_key(root, label),
                sample_size=m,
                **kw,
                **common_kw,
            )
            with common.timing(res.timings, "theory_s"):
                th = theory_curves(n, m, update, predictive, config)
            run = ConfigRun(label, m, update, predictive, res, th)
            runs.append(run)
            rows += compare(run, config)
    return common.judged(config, runs, rows)


# ----------------------------------------------------------------------------- outputs


def summary_rows(study: Study):
    """Tidy per-generation rows: empirical moments beside the theory columns."""
    for run in study.runs:
        res, th = run.result, run.theory
        fields = ("log_var", "mean") if run.update == "mle" else FIELDS
        for n in res.generations:
            row = dict(
                config=run.label,
                sample_size=run.sample_size,
                update=run.update,
                predictive=run.predictive,
                generation=int(n),
            )
            common.moment_columns(row, res.moments, fields, n)
            common.theory_columns(row, th, n, len(res.generations))
            yield row


def final_arrays(run: ConfigRun) -> dict:
    """Per-chain finals: the posterior mean of mu and of sigma^2 (MLE: mu and log s2)."""
    final = run.result.final
    params = getattr(final, "params", final)  # sequential runs carry a regime state
    if run.update == "mle":
        return dict(mean=np.asarray(params.mean), log_var=np.asarray(params.log_var))
    alpha = np.asarray(params.alpha, np.float64)
    var_mean = np.exp(np.asarray(params.log_s2, np.float64)) * alpha / (alpha - 1)
    return dict(mean=np.asarray(params.mean), var_mean=var_mean, kappa=np.asarray(params.kappa))


def write_outputs(
    study: Study, output_dir: str, flags_dict: dict | None = None, wall_s: float | None = None
) -> list[str]:
    """Writes CSVs, figures (PNG + PDF), per-chain finals (.npz) and a manifest."""
    from experiments import bayes_figures

    return common.write_study(
        study,
        output_dir,
        experiment="bayes_chain",
        summary_rows=summary_rows(study),
        run_arrays=final_arrays,
        plot_all=bayes_figures.plot_all,
        flags_dict=flags_dict,
        wall_s=wall_s,
    )
