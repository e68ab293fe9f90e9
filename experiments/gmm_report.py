"""The Gaussian-mixture chain study (Shumailov et al. 2024's GMM setting, many chains).

Importable from notebooks: ``run_study(validate(StudyConfig(...)))`` returns a
:class:`~experiments.common.Study`; ``write_outputs(study, dir)`` writes
everything. The command line is :mod:`experiments.gmm_chain`.

Two runs with the same M, G and EM settings: the mixture (K components, real
mixture with equal weights and identity covariances at spacing
``--separation``) and the one-component reference (K = 1, real N(0, I_d)),
which is the Gaussian MLE chain.

No closed form is known for the mixture's components (their weights, the L2
distance to the real density, when a component is lost). What is exact for
any K (``sim/families/gmm/record.py``): after every M-step the mixture's total
mean and covariance are the training points' sample mean and MLE covariance,
so E tr Sigma_tot,n = ((M-1)/M)^n tr Sigma_tot,0 and E||mu_n - mu_0||^2 =
(tr Sigma_tot,0 / M) sum_{t<n} ((M-1)/M)^t (THEORY.md W1, which uses only the
first two moments of the sampled law; exact while no floor fires, and off by
O(K weight_floor) when one does). The K = 1 run adds E and Var of log det
Sigma_n (THEORY.md W2; G3 at d = 1). These are the table's rows, by z-scores
with Monte-Carlo standard errors, Bonferroni at ``--false_failure_rate``; a row
is tested only where its estimate is close enough to normal (``testable``).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from experiments import common
from experiments.common import MAX_SIZE, setting

FIELDS = (
    "l2_distance",
    "lost",
    "log_det_cov",
    "trace_cov",
    "mean_sq_error",
    "em_iterations",
    "log_likelihood",
    "ll_change",
    "weight_floored",
    "cov_floored",
)
MAX_SKEW = 0.1


@dataclasses.dataclass(frozen=True)
class StudyConfig(common.CommonSettings):
    """Everything that determines a mixture-chain study's numbers (and its flags).

    The default is Shumailov et al.'s setting (two components, M = 1,000 samples
    per generation, 2,000 generations) with 160 chains instead of one, in d = 2 with
    full covariances; it runs in about 2.5 minutes on 2 shared cores (README).
    """

    num_chains: int = setting(160, "Independent chains per run (C).", high=MAX_SIZE)
    generations: int = setting(2000, "Number of fits per chain (G).", high=MAX_SIZE)
    sample_size: int = setting(1000, "Samples per generation (M).", high=MAX_SIZE)
    components: int = setting(2, "Mixture components K (real and fitted).")
    dim: int = setting(2, "Dimension d (full covariances).")
    separation: float = setting(4.0, "Spacing of the real components' means (sd units).")
    em_steps: int = setting(10, "The most EM iterations per fit.")
    tol: float = setting(
        1e-6, "EM stops when the mean log-likelihood per point changes by less (0: em_steps)."
    )
    cov_floor: float = setting(1e-6, "Smallest eigenvalue of a fitted covariance.")
    weight_floor: float = setting(1e-6, "Smallest fitted weight.")
    lost_weight: float = setting(
        0.01, "A chain has lost a component when its smallest weight is below this."
    )
    reference: bool = setting(True, "Also run the one-component (Gaussian) reference chain.")


def validate(config: StudyConfig) -> StudyConfig:
    """Raises ValueError('--flag=value: reason') for the first bad setting (every
    setting is checked, and the study must fit in memory)."""
    bad = common.bad
    common.check_settings(config)
    if config.num_chains < 1:
        bad("num_chains", config.num_chains, "need at least 1 chain")
    if config.generations < 1:
        bad("generations", config.generations, "need at least 1 generation")
    if config.components < 1:
        bad("components", config.components, "need at least 1 component")
    if config.dim < 1:
        bad("dim", config.dim, "need at least 1 dimension")
    k, d = config.components, config.dim
    if config.sample_size < k * (d + 1):
        bad(
            "sample_size",
            config.sample_size,
            f"must be >= components * (dim + 1) = {k * (d + 1)} (each covariance needs d + 1)",
        )
    if not config.separation >= 0:
        bad("separation", f"{config.separation:g}", "must be >= 0")
    if config.em_steps < 1:
        bad("em_steps", config.em_steps, "EM needs at least 1 iteration")
    if not config.tol >= 0:
        bad("tol", f"{config.tol:g}", "must be >= 0")
    if not config.cov_floor > 0:
        bad("cov_floor", f"{config.cov_floor:g}", "must be > 0")
    if not 0 < config.weight_floor < 1.0 / k:
        bad("weight_floor", f"{config.weight_floor:g}", f"must be in (0, 1/components = {1 / k:g})")
    if not 0 < config.lost_weight <= 1.0 / k:
        bad("lost_weight", f"{config.lost_weight:g}", f"must be in (0, 1/components = {1 / k:g}]")
    common.check_memory(memory_runs(config), config.x64, config.chunk_chains)
    return config


def memory_runs(config: StudyConfig):
    """The study's runs as the memory model sees them (:mod:`experiments.common.memory`)."""
    k, d = config.components, config.dim
    for kk in (k, 1) if config.reference else (k,):
        yield common.RunSize(
            chains=("num_chains", config.num_chains),
            generations=("generations", config.generations),
            fields=len(FIELDS) + kk * (1 + 2 * d),
            elements=config.sample_size * d * (kk + 2),
            elements_flag=("sample_size", config.sample_size),
            advice="use fewer chains (--num_chains, --chunk_chains)",
            snapshots=len(snapshot_generations(config.generations)),
            snapshot_fields=2 + kk,
            state_floats=kk * (1 + d + d * d),
            columns=20 + 3 * kk,
        )


@dataclasses.dataclass
class ConfigRun:
    """One run (the mixture, or the one-component reference): simulation and theory."""

    label: str
    components: int
    result: object  # sim.parallel.SimulationResult
    theory: dict  # name -> (G+1,) float64 curves


Study = common.Study


def label_of(k: int, d: int, m: int) -> str:
    return f"K={k} d={d} M={m}"


def report_generations(g: int) -> list[int]:
    marks = [k * 10**e for e in range(7) for k in (1, 2, 5)]
    return common.report_generations(g, marks)


def snapshot_generations(g: int) -> tuple[int, ...]:
    """About 40 generations, evenly spaced on a log scale, for the quantile bands."""
    return tuple(sorted({int(round(x)) for x in np.geomspace(1, g, 40)} | {0}))


def real_trace(k: int, d: int, separation: float) -> float:
    from sim.families.gmm.spec import real_trace as rt

    return rt(k, d, separation)


def theory_curves(n: np.ndarray, k: int, d: int, m: int, separation: float) -> dict:
    """The closed forms of one run on generations ``n`` (float64)."""
    from theory import gaussian as tg
    from theory import multivariate as tm

    tr0 = real_trace(k, d, separation)
    out = {
        "trace_cov_mean": tr0 * np.asarray(tg.expected_variance(n, m, "mle")),
        "mean_sq_error_mean": tr0 * np.asarray(tg.mean_variance(n, m, "mle")),
        # the single-Gaussian reference beside any K: log det of the K = 1 chain
        "gaussian_log_det_mean": np.asarray(tm.log_det_mean(n, m, d, "mle")),
        "gaussian_log_det_var": np.asarray(tm.log_det_var(n, m, d)),
    }
    return {key: np.asarray(v, np.float64) for key, v in out.items()}


def trace_is_testable(n: int, m: int, d: int, c: int) -> bool:
    """A log-normal proxy (common.mean_is_measurable) with the Gaussian chain's CV^2 of
    the fitted variance, ((M+1)/(M-1))^n - 1 (THEORY.md G2), divided by d (a trace
    averages d directions)."""
    cv2 = math.expm1(n * math.log1p(2.0 / (m - 1))) / d if m > 1 else math.inf
    return common.mean_is_measurable(cv2, c, MAX_SKEW)


def mse_is_testable(d: int, c: int) -> bool:
    """||mu_n - mu_0||^2 is close to a scaled chi^2_d (skewness sqrt(8/d)): its mean over
    C chains has skewness sqrt(8 / (d C))."""
    return math.sqrt(8.0 / (d * c)) <= MAX_SKEW


def compare(run: ConfigRun, config: StudyConfig) -> list:
    """The comparison rows of one run at the report generations."""
    res, th, c = run.result, run.theory, config.num_chains
    m, d = config.sample_size, config.dim
    rows = []
    mo = res.moments
    for n in report_generations(len(res.generations) - 1):
        cells = [
            ("E[tr Sigma]", mo["trace_cov"].mean[n], mo["trace_cov"].sem[n],
             th["trace_cov_mean"][n], trace_is_testable(n, m, d, c)),
            ("E||mu-mu0||^2", mo["mean_sq_error"].mean[n], mo["mean_sq_error"].sem[n],
             th["mean_sq_error_mean"][n], mse_is_testable(d, c)),
        ]  # fmt: skip
        if run.components == 1:
            ld = mo["log_det_cov"]
            cells += [
                ("E[log det]", ld.mean[n], ld.sem[n], th["gaussian_log_det_mean"][n], True),
                ("Var[log det]", ld.var[n], ld.var_se[n], th["gaussian_log_det_var"][n], True),
            ]
        for statistic, empirical, se, theory, ok in cells:
            ok = ok and n > 0 and float(se) > 0
            rows.append(
                common.Comparison(
                    config=run.label,
                    statistic=statistic,
                    generation=n,
                    empirical=float(empirical),
                    se=float(se),
                    theory=float(theory),
                    testable=ok,
                    note="" if ok else "skewed estimate: a z-test needs more chains",
                )
            )
    return rows


def run_study(config, progress: bool = True) -> Study:
    """Simulates the mixture (and the reference) and compares with the exact moments."""
    with common.float64():
        return _run_study(config, progress)


def _run_study(config, progress: bool) -> Study:
    import functools

    import jax
    import jax.numpy as jnp

    from sim.chain import root_key
    from sim.run import run as run_family

    g, c, m, d = config.generations, config.num_chains, config.sample_size, config.dim
    dtype = jnp.float64 if config.x64 else jnp.float32
    root = root_key(config.seed, config.prng_impl)
    n = np.arange(g + 1)
    runner = functools.partial(run_family, "gmm")
    runs, rows = [], []
    for k in (config.components, 1) if config.reference else (config.components,):
        if runs and k == runs[0].components:
            continue
        label = label_of(k, d, m)
        res = common.timed_run(
            runner,
            label,
            progress,
            f", EM <= {config.em_steps} iterations, tol {config.tol:g}",
            key=jax.random.fold_in(root, k),
            components=k,
            dim=d,
            sample_size=m,
            separation=config.separation,
            max_steps=config.em_steps,
            tol=config.tol,
            cov_floor=config.cov_floor,
            weight_floor=config.weight_floor,
            lost_weight=min(config.lost_weight, 1.0 / k),
            num_chains=c,
            num_generations=g,
            dtype=dtype,
            chunk_chains=config.chunk_chains,
            snapshot_generations=snapshot_generations(g),
            snapshot_fields=("l2_distance", "weights", "log_det_cov"),
            progress=None if progress else False,
        )
        with common.timing(res.timings, "theory_s"):
            th = theory_curves(n, k, d, m, config.separation)
        run = ConfigRun(label, k, res, th)
        runs.append(run)
        rows += compare(run, config)
    return common.judged(config, runs, rows)


# ----------------------------------------------------------------------------- outputs


def summary_rows(study: Study):
    """Tidy per-generation rows: empirical moments beside the theory columns."""
    for run in study.runs:
        res, th = run.result, run.theory
        for n in res.generations:
            row = dict(config=run.label, components=run.components, generation=int(n))
            common.moment_columns(row, res.moments, FIELDS, n)
            for j in range(run.components):
                row[f"weight{j}_mean"] = res.moments["weights"].mean[n, j]
                row[f"mean{j}_mean"] = res.moments["means"].mean[n, j, 0]
                row[f"variance{j}_mean"] = res.moments["variances"].mean[n, j, 0]
            row["log_det_cov_var_se"] = res.moments["log_det_cov"].var_se[n]
            common.theory_columns(row, th, n, len(res.generations))
            yield row


def write_outputs(
    study: Study, output_dir: str, flags_dict: dict | None = None, wall_s: float | None = None
) -> list[str]:
    """Writes CSVs, figures (PNG + PDF), per-chain finals (.npz) and a manifest."""
    from experiments import gmm_figures

    return common.write_study(
        study,
        output_dir,
        experiment="gmm_chain",
        summary_rows=summary_rows(study),
        run_arrays=lambda run: dict(
            weights=run.result.final.weights,
            means=run.result.final.means,
            covs=run.result.final.covs,
            lost_generation=run.result.first_passage["lost"],
            l2_distance_snapshots=run.result.snapshots["l2_distance"],
            snapshot_generations=run.result.snapshot_generations,
        ),
        plot_all=gmm_figures.plot_all,
        flags_dict=flags_dict,
        wall_s=wall_s,
    )
