"""The Gaussian-chain study: run, compare with theory, write figures and files.

Importable from notebooks: ``run_study(validate(StudyConfig(...)))`` returns
a :class:`~experiments.common.Study`; ``write_outputs(study, dir)`` writes
everything. The command line is :mod:`experiments.gaussian_chain`, whose flags
are made from :class:`StudyConfig`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from experiments import common
from experiments.common import MAX_SIZE, setting

ESTIMATORS = ("mle", "unbiased")
METHODS = ("sample", "exact")


@dataclasses.dataclass(frozen=True)
class StudyConfig(common.CommonSettings):
    """Everything that determines a Gaussian-chain study's numbers (and its flags)."""

    num_chains: int = setting(10_000, "Independent chains per configuration (C).", high=MAX_SIZE)
    generations: int = setting(500, "Number of fits per chain (G).", high=MAX_SIZE)
    sample_sizes: tuple[int, ...] = setting(
        (10, 100), "Samples per generation (M), a list.", high=MAX_SIZE
    )
    estimators: tuple[str, ...] = setting(
        ("mle", "unbiased"), "Variance estimators: mle, unbiased."
    )
    method: str = setting(
        "sample",
        "sample: draw M samples and refit; exact: draw the sufficient statistics (same Markov "
        "chain, O(1) in M).",
    )
    tail_k: float = setting(2.0, "Tail masses are measured beyond tail_k real std devs.")
    collapse_eps: float = setting(1e-6, "A chain is collapsed when sigma^2 < eps sigma0^2.")


def validate(config: StudyConfig) -> StudyConfig:
    """Raises ValueError('--flag=value: reason') for the first bad setting (every
    setting is checked, and the study must fit in memory)."""
    bad = common.bad
    common.check_settings(config)
    if config.num_chains < 1:
        bad("num_chains", config.num_chains, "need at least 1 chain")
    if config.generations < 1:
        bad("generations", config.generations, "need at least 1 generation")
    if not config.sample_sizes:
        bad("sample_sizes", "", "give at least one sample size")
    for m in config.sample_sizes:
        if m < 2:
            bad("sample_sizes", m, "a variance needs M >= 2 samples")
    if not config.estimators:
        bad("estimators", "", "give at least one of mle, unbiased")
    for e in config.estimators:
        if e not in ESTIMATORS:
            bad("estimators", e, "unknown estimator (choose mle or unbiased)")
    if config.method not in METHODS:
        bad("method", config.method, "choose sample or exact")
    if not config.tail_k >= 0:
        bad("tail_k", config.tail_k, "must be a finite number >= 0")
    if not config.collapse_eps > 0:
        bad("collapse_eps", config.collapse_eps, "must be a finite number > 0")
    common.check_memory(memory_runs(config), config.x64, config.chunk_chains)
    return config


def memory_runs(config: StudyConfig):
    """The study's runs as the memory model sees them (:mod:`experiments.common.memory`)."""
    g = config.generations
    snaps = len(snapshot_generations(g))
    sample = config.method == "sample"
    for m in config.sample_sizes:
        for _ in config.estimators:
            yield common.RunSize(
                chains=("num_chains", config.num_chains),
                generations=("generations", g),
                fields=len(FIELDS),
                elements=m if sample else 0,
                elements_flag=("sample_sizes", m),
                advice="use --method=exact (the same chain, O(1) in M) or fewer chains "
                "(--num_chains, --chunk_chains)",
                snapshots=snaps,
                snapshot_fields=2,
                columns=40,
            )


ESTIMATOR_INDEX = {"mle": 0, "unbiased": 1}
QUANTILES = (0.05, 0.5, 0.95)
FIELDS = ("mean", "log_var", "w2_squared", "tail_own", "tail_real", "collapsed")


@dataclasses.dataclass
class ConfigRun:
    """One (sample size, estimator) configuration: simulation and theory."""

    label: str
    sample_size: int
    estimator: str
    result: object  # sim.parallel.SimulationResult
    theory: dict  # name -> (G+1,) float64 arrays over generations 0..G
    emp_quantiles: dict  # q -> (S,) empirical log-variance quantiles at snapshots
    own_tail_median: np.ndarray  # (S,) median own-tail mass over chains at the snapshots


Study = common.Study


def report_generations(g: int) -> list[int]:
    """Generations shown in the table: 1, 10, 100, ... below G, and G."""
    return common.report_generations(g, (1, 10, 100, 1000, 10_000, 100_000))


def snapshot_generations(g: int, num: int = 40) -> list[int]:
    """Log-spaced generations (plus the table's) where per-chain values are kept."""
    grid = np.unique(np.round(np.geomspace(1, g, num)).astype(int))
    return sorted({0, *grid.tolist(), *report_generations(g)})


def config_key(root, sample_size: int, estimator: str):
    """Each configuration's key depends on its own settings only."""
    import jax

    return jax.random.fold_in(jax.random.fold_in(root, sample_size), ESTIMATOR_INDEX[estimator])


def own_tail(log_var: np.ndarray, tail_k: float) -> np.ndarray:
    """2 Phi(-k sigma0 / sigma) from log-variances (sigma0 = 1)."""
    import jax.numpy as jnp
    from jax.scipy.special import erfc

    lv = jnp.asarray(log_var, jnp.float64)
    return np.asarray(erfc(tail_k / np.sqrt(2.0) * jnp.exp(-0.5 * lv)))


def theory_curves(n: np.ndarray, m: int, estimator: str, tail_k: float, eps: float) -> dict:
    """Every closed form of the study on generations ``n`` (float64, sigma0 = 1)."""
    import jax.numpy as jnp

    from theory import gaussian as tg

    nj = jnp.asarray(n, jnp.float64)
    out = {
        "log_var_mean": tg.log_variance_mean(nj, m, estimator),
        "log_var_var": tg.log_variance_var(nj, m),
        "w2_squared_mean": tg.expected_w2_squared(nj, m, estimator),
        "mean_var": tg.mean_variance(nj, m, estimator),
        "tail_real_mean": tg.expected_tail_mass(np.asarray(n), m, tail_k, estimator),
        "tail_own_median": tg.median_tail_mass(nj, m, tail_k, estimator),
        "collapsed_prob": tg.collapse_probability(nj, m, eps, estimator),
        "variance_cv2": tg.variance_cv2(nj, m),
    }
    for q in QUANTILES:
        out[f"log_var_q{q:g}"] = tg.log_variance_quantile(q, nj, m, estimator)
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def compare(run: ConfigRun, num_chains: int, tail_k: float) -> list:
    """The comparison rows of one configuration at the report generations."""
    res, th, c = run.result, run.theory, num_chains
    mom = res.moments
    snaps_at = [int(s) for s in res.snapshot_generations]
    rows = []
    for n in report_generations(len(res.generations) - 1):
        row = dict(config=run.label, generation=n)
        lv_n = res.snapshots["log_var"][snaps_at.index(n)]
        lv = mom["log_var"]
        rows.append(
            common.Comparison(
                statistic="E[log s2]",
                empirical=lv.mean[n],
                se=lv.sem[n],
                theory=th["log_var_mean"][n],
                **row,
            )
        )
        rows.append(
            common.Comparison(
                statistic="Var[log s2]",
                empirical=lv.var[n],
                se=lv.var_se[n],
                theory=th["log_var_var"][n],
                **row,
            )
        )
        # The median of the own-tail mass is a monotone function of the median
        # of log sigma^2, so both are tested at once by the fraction of chains
        # below the theoretical median: Binomial(C, 1/2) under the theory.
        frac = float(np.mean(lv_n <= th["log_var_q0.5"][n]))
        med_tail = float(np.median(own_tail(lv_n, tail_k)))
        rows.append(
            common.Comparison(
                statistic="P(log s2 <= median) [tail_own]",
                empirical=frac,
                se=common.binomial_se(0.5, c),
                theory=0.5,
                note=f"median own tail {med_tail:.3g} vs {th['tail_own_median'][n]:.3g}",
                **row,
            )
        )
        p = float(th["collapsed_prob"][n])
        rows.append(
            common.Comparison(
                statistic="P(collapsed)",
                empirical=mom["collapsed"].mean[n],
                se=common.binomial_se(p, c),
                theory=p,
                **row,
            )
        )
        tr = mom["tail_real"]
        rows.append(
            common.Comparison(
                statistic="E[tail_real]",
                empirical=tr.mean[n],
                se=tr.sem[n],
                theory=th["tail_real_mean"][n],
                **row,
            )
        )
        ok = common.mean_is_measurable(float(th["variance_cv2"][n]), c)
        note = "" if ok else "heavy tail: mean not measurable with this many chains"
        w2, mu = mom["w2_squared"], mom["mean"]
        rows.append(
            common.Comparison(
                statistic="E[W2^2]",
                empirical=w2.mean[n],
                se=w2.sem[n],
                theory=th["w2_squared_mean"][n],
                testable=ok,
                note=note,
                **row,
            )
        )
        rows.append(
            common.Comparison(
                statistic="Var[mu]",
                empirical=mu.var[n],
                se=mu.var_se[n],
                theory=th["mean_var"][n],
                testable=ok,
                note=note,
                **row,
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
    from sim.runners import run_gaussian

    g, c = config.generations, config.num_chains
    dtype = jnp.float64 if config.x64 else jnp.float32
    root = root_key(config.seed, config.prng_impl)
    snaps = snapshot_generations(g)
    n = np.arange(g + 1)
    runs, rows = [], []
    for m in config.sample_sizes:
        for est in config.estimators:
            label = f"M={m} {est}"
            res = common.timed_run(
                run_gaussian,
                label,
                progress,
                f", method={config.method}",
                key=config_key(root, m, est),
                sample_size=m,
                estimator=est,
                method=config.method,
                num_chains=c,
                num_generations=g,
                tail_k=config.tail_k,
                collapse_eps=config.collapse_eps,
                dtype=dtype,
                snapshot_generations=snaps,
                snapshot_fields=("log_var", "mean"),
                chunk_chains=config.chunk_chains,
                progress=None if progress else False,
            )
            with common.timing(res.timings, "theory_s"):
                th = theory_curves(n, m, est, config.tail_k, config.collapse_eps)
            lv = res.snapshots["log_var"].astype(np.float64)
            emp_q = {q: np.quantile(lv, q, axis=1) for q in QUANTILES}
            med = np.median(own_tail(res.snapshots["log_var"], config.tail_k), axis=1)
            run = ConfigRun(label, m, est, res, th, emp_q, med)
            if progress:
                print(f"[{label}] theory in {res.timings['theory_s']:.1f} s", flush=True)
            runs.append(run)
            rows += compare(run, c, config.tail_k)
    return common.judged(config, runs, rows)


# ----------------------------------------------------------------------------- outputs


def summary_rows(study: Study):
    """Tidy per-generation rows: empirical moments beside the theory columns."""
    for run in study.runs:
        res, th = run.result, run.theory
        snaps = {int(s): j for j, s in enumerate(res.snapshot_generations)}
        for n in res.generations:
            row = dict(
                config=run.label,
                sample_size=run.sample_size,
                estimator=run.estimator,
                method=study.config.method,
                generation=int(n),
            )
            common.moment_columns(row, res.moments, FIELDS, n)
            for q in QUANTILES:
                j = snaps.get(int(n))
                row[f"log_var_q{q:g}"] = run.emp_quantiles[q][j] if j is not None else ""
            common.theory_columns(row, th, n, len(res.generations))
            yield row


def write_outputs(
    study: Study, output_dir: str, flags_dict: dict | None = None, wall_s: float | None = None
) -> list[str]:
    """Writes CSVs, figures (PNG + PDF), per-chain states (.npz) and a manifest."""
    from experiments import gaussian_figures

    return common.write_study(
        study,
        output_dir,
        experiment="gaussian_chain",
        summary_rows=summary_rows(study),
        run_arrays=lambda run: dict(
            mean=run.result.final.mean,
            log_var=run.result.final.log_var,
            snapshot_log_var=run.result.snapshots["log_var"],
            snapshot_generations=run.result.snapshot_generations,
        ),
        plot_all=gaussian_figures.plot_all,
        flags_dict=flags_dict,
        wall_s=wall_s,
    )
