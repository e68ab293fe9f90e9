r"""The multivariate Gaussian chain study: run, compare with theory.multivariate, write files.

Importable from notebooks: ``run_study(validate(StudyConfig(...)))`` returns a
:class:`~experiments.common.Study`; ``write_outputs(study, dir)`` writes
everything. The command line is :mod:`experiments.multivariate_chain`, whose
flags are made from :class:`StudyConfig`.

Runs, for every pair d:M of ``--sizes``, every estimator (``mle`` divides the
scatter by M, ``unbiased`` by M - 1) and every regime of ``--regimes``, C
chains of the full-covariance Gaussian refitted to M samples of the previous
fit (generation 0: the real N(0, I_d); family ``multivariate``, its records
``log_det``, ``trace``, ``mean_sq_error``, ``eigenvalues``, ``w2_squared``).

What is compared (z-scores with Monte-Carlo standard errors, Bonferroni at
``--false_failure_rate``):

* replace: E and Var of log det Sigma_n (``theory.multivariate.log_det_mean``,
  ``log_det_var``: exact, Bartlett, THEORY.md W2), E tr Sigma_n
  (``expected_trace``) and E||mu_n - mu_0||^2 (``mean_sq_error``, W1);
* accumulate: E tr Sigma_n and E||mu_n - mu_0||^2 against d times the 1-D
  accumulate moments of :func:`theory.mixing.accumulate_moments`. This is exact:
  coordinate j of every point drawn from N(mu_t, Sigma_t) is N(mu_t,j,
  Sigma_t,jj), and the pooled fit's (mu_j, Sigma_jj) are the pooled mean and
  variance of coordinate j alone, so each coordinate's (mu_j, Sigma_jj) is the
  1-D accumulate chain (with the same divisor); the trace and the squared
  error are sums over coordinates. log det under accumulate has no closed
  form: shown, not tested;
* subsample (``--budget`` points drawn without replacement from every point so
  far; the sample path, it stores the points): no closed form; shown, not
  tested. The eigenvalue spectrum and W2 have no closed form in any regime
  (figures only).

A row is tested where its estimate is close enough to normal for a z-test
(skewness of the mean at most 0.1): log det always (a sum of independent log
chi-squares); the trace under replace by the exact squared coefficient of
variation of tr Sigma_n (:func:`trace_cv2`, a second-moment recursion of the
Wishart chain) through the log-normal proxy of
:func:`experiments.common.mean_is_measurable` (the unbiased chain's trace is a
martingale whose mean is carried by ever rarer chains); the squared error by
its chi-square skewness and the trace's rule one generation earlier; under
accumulate by the chains' own skewness and coefficient of variation.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import zlib

import numpy as np

from experiments import common
from experiments.common import MAX_SIZE, setting

ESTIMATORS = ("mle", "unbiased")
REGIMES = ("replace", "accumulate", "subsample")
METHODS = ("exact", "sample")
FIELDS = ("log_det", "trace", "mean_sq_error", "w2_squared")
MAX_SKEW = 0.1  # the rule of common.mean_is_measurable
SHORT = {"mle": "mle", "unbiased": "unb"}
SUFFIX = {"replace": "", "accumulate": " acc", "subsample": " sub"}


def parse_size(text: str) -> tuple[int, int]:
    """One ``d:M`` entry of ``--sizes`` as (d, M) (``ValueError(reason)`` if it is not one)."""
    parts = str(text).split(":")
    if len(parts) != 2:
        raise ValueError("not a pair d:M of integers")
    try:
        d, m = (common.settings.parse_int(p) for p in parts)
    except ValueError:
        raise ValueError("not a pair d:M of integers") from None
    return d, m


@dataclasses.dataclass(frozen=True)
class StudyConfig(common.CommonSettings):
    """Everything that determines a multivariate-chain study's numbers (and its flags).

    The default (two sizes, both estimators, replace on the exact path, 2,000
    chains x 100 generations: four compiled programs) runs in about a minute on 2
    shared cores from a cold compilation cache; ``--regimes=replace,accumulate,subsample``
    adds the other regimes (two programs more per size and estimator).
    """

    sizes: tuple[tuple[int, int], ...] = setting(
        ((3, 10), (10, 32)),
        "Pairs d:M (dimension, samples per generation; d < M), a list.",
        item=parse_size,
        show=lambda x: f"{x[0]}:{x[1]}",
    )
    estimators: tuple[str, ...] = setting(
        ESTIMATORS, "Covariance estimators: mle (divides by M), unbiased (M - 1)."
    )
    regimes: tuple[str, ...] = setting(
        ("replace",), "Data regimes: replace, accumulate, subsample (a list)."
    )
    method: str = setting(
        "exact",
        "replace and accumulate runs: exact (draw the mean and the Wishart scatter, O(d^2) "
        "per generation whatever M) or sample (draw M points). subsample always samples.",
    )
    num_chains: int = setting(
        2000, "Independent chains per replace or accumulate run (C).", high=MAX_SIZE
    )
    generations: int = setting(
        100, "Number of fits per replace or accumulate chain (G).", high=MAX_SIZE
    )
    budget: int = setting(0, "Points per fit of the subsample regime (0: M).", high=MAX_SIZE)
    subsample_chains: int = setting(
        500, "Chains per subsample run (each stores every point: O(M G d)).", high=MAX_SIZE
    )
    subsample_generations: int = setting(
        30, "Fits per subsample chain (memory and time grow like G^2).", high=MAX_SIZE
    )


def budget(config, m: int) -> int:
    """The subsample budget: ``config.budget`` points, or M when it is 0."""
    return config.budget or m


def validate(config: StudyConfig) -> StudyConfig:
    """Raises ValueError('--flag=value: reason') for the first bad setting.

    Every setting is checked, also those of a part that is switched off
    (``--budget`` without the subsample regime), and the study must fit in memory.
    """
    bad = common.bad
    common.check_settings(config)
    if not config.sizes:
        bad("sizes", "", "give at least one pair d:M")
    for d, m in config.sizes:
        if d < 1:
            bad("sizes", f"{d}:{m}", "the dimension d must be >= 1")
        if m <= d:
            bad(
                "sizes",
                f"{d}:{m}",
                "need M > d (the covariance of M points in d >= M dimensions is singular)",
            )
        if m > common.MAX_INT:
            bad("sizes", f"{d}:{m}", f"out of range (at most {common.MAX_INT:,})")
    if not config.estimators:
        bad("estimators", "", f"give at least one of {', '.join(ESTIMATORS)}")
    for x in config.estimators:
        if x not in ESTIMATORS:
            bad("estimators", x, f"choose from {', '.join(ESTIMATORS)}")
    if not config.regimes:
        bad("regimes", "", f"give at least one of {', '.join(REGIMES)}")
    for x in config.regimes:
        if x not in REGIMES:
            bad("regimes", x, f"choose from {', '.join(REGIMES)}")
    if config.method not in METHODS:
        bad("method", config.method, f"choose from {', '.join(METHODS)}")
    for name in ("num_chains", "subsample_chains"):
        if getattr(config, name) < 2:
            bad(name, getattr(config, name), "need at least 2 chains (for standard errors)")
    for name in ("generations", "subsample_generations"):
        if getattr(config, name) < 1:
            bad(name, getattr(config, name), "need at least 1 generation")
    if config.budget < 0:
        bad("budget", config.budget, "must be >= 1 (0: M, the sample size)")
    for d, m in config.sizes:
        b = budget(config, m)
        if b <= d:
            bad("budget", config.budget, f"a subsample's covariance needs budget > d = {d}")
        if b > m:
            bad("budget", config.budget, f"at most M = {m} (fit 1's pool holds the M real points)")
    common.check_memory(memory_runs(config), config.x64, config.chunk_chains)
    return config


def plan(config) -> list[tuple[int, int, str, str]]:
    """(d, M, estimator, regime) of every run, in table order."""
    return [
        (d, m, est, regime)
        for d, m in config.sizes
        for regime in REGIMES
        if regime in config.regimes
        for est in config.estimators
    ]


def memory_runs(config: StudyConfig):
    """The study's runs as the memory model sees them (:mod:`experiments.common.memory`):
    the exact path draws O(d^2) numbers per chain and generation, the sample path M d,
    a subsample chain keeps every point (M d per generation)."""
    for d, m, _est, regime in plan(config):
        sub = regime == "subsample"
        g = config.subsample_generations if sub else config.generations
        if sub:
            elements = m * d * (g + 2) + d * d
        elif config.method == "exact":
            elements = d * d
        else:
            elements = m * d + d * d
        yield common.RunSize(
            chains=("subsample_chains", config.subsample_chains)
            if sub
            else ("num_chains", config.num_chains),
            generations=("subsample_generations", g) if sub else ("generations", g),
            fields=len(FIELDS) + d + 1,
            elements=elements,
            elements_flag=("subsample_generations", g) if sub else ("sizes", f"{d}:{m}"),
            advice="use fewer --subsample_generations or --subsample_chains (the subsample "
            "pool keeps every point)"
            if sub
            else "use --method=exact, smaller sizes or fewer chains (--chunk_chains)",
            snapshots=len(snapshot_generations(g)),
            snapshot_fields=1 + d,
            state_floats=2 + d + d * d,
            columns=24 + d,
        )


@dataclasses.dataclass
class ConfigRun:
    """One run: a size, an estimator and a regime; simulation and theory."""

    label: str
    dim: int
    sample_size: int
    estimator: str
    regime: str
    method: str
    num_chains: int
    result: object  # sim.parallel.SimulationResult
    theory: dict  # name -> (G+1,) float64 curves ({} without a closed form)

    @property
    def size(self) -> str:
        return f"d={self.dim}, M={self.sample_size}"


Study = common.Study


def label_of(d: int, m: int, estimator: str, regime: str) -> str:
    """``d3M10 mle``, ``d3M10 unb acc``, ``d10M32 mle sub``."""
    return f"d{d}M{m} {SHORT[estimator]}{SUFFIX[regime]}"


def config_key(root, d: int, m: int, estimator: str, regime: str):
    """Each run's key depends on its own settings only."""
    import jax

    salt = zlib.crc32(f"{d}/{m}/{estimator}/{regime}".encode()) & 0x7FFFFFFF
    return jax.random.fold_in(root, salt)


def report_generations(g: int) -> list[int]:
    """Generations shown in the table: 1, 2, 5, 10, 20, 50, ... below G, and G."""
    marks = [k * 10**e for e in range(7) for k in (1, 2, 5)]
    return common.report_generations(g, marks)


def snapshot_generations(g: int, num: int = 26) -> tuple[int, ...]:
    """About ``num`` generations evenly spaced over 0..G (log det falls linearly in n)."""
    return tuple(sorted({int(round(x)) for x in np.linspace(0, g, num)}))


def theory_curves(n: np.ndarray, d: int, m: int, estimator: str, regime: str) -> dict:
    """The closed forms of one run on generations ``n`` (float64; {} without one)."""
    from theory import mixing as tmix
    from theory import multivariate as tm

    if regime == "replace":
        out = {
            "log_det_mean": tm.log_det_mean(n, m, d, estimator),
            "log_det_var": tm.log_det_var(n, m, d),
            "trace_mean": tm.expected_trace(n, m, d, estimator),
            "mean_sq_error_mean": tm.mean_sq_error(n, m, d, estimator),
        }
    elif regime == "accumulate":
        acc = tmix.accumulate_moments(n, m, estimator)
        out = {
            "trace_mean": d * np.asarray(acc.expected_variance, np.float64),
            "mean_sq_error_mean": d * np.asarray(acc.mean_variance, np.float64),
            # the replace chain's law beside it (figures)
            "replace_log_det_mean": tm.log_det_mean(n, m, d, estimator),
        }
    else:
        return {}
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def trace_cv2(n: int, d: int, m: int) -> float:
    """The exact squared coefficient of variation of tr Sigma_n under replace (Sigma_0 = I).

    With k = M - 1 and Sigma_{t+1} = Sigma_t^{1/2} W Sigma_t^{1/2} / c, W ~ Wishart_d(k, I):
    E[(tr S')^2 | S] = (k^2 (tr S)^2 + 2k tr S^2) / c^2 and E[tr S'^2 | S] = (k (tr S)^2 +
    k(k+1) tr S^2) / c^2 (E[W A W] = k(k+1) A + k tr(A) I). Divided by (E tr S')^2 =
    (k/c)^2 (E tr S)^2, the pair (A, B) = (E (tr S)^2, E tr S^2) / (E tr S)^2 moves by
    A' = A + 2B/k, B' = A/k + (k+1)B/k from (1, 1/d); CV^2 = A_n - 1, the same for both
    estimators. At d = 1 it is ((M+1)/(M-1))^n - 1 (THEORY.md G2).
    """
    k = m - 1.0
    a, b = 1.0, 1.0 / d
    for _ in range(int(n)):
        a, b = a + 2.0 * b / k, a / k + (k + 1.0) * b / k
        if not math.isfinite(a) or a > 1e300:
            return math.inf
    return a - 1.0


def trace_is_testable(n: int, d: int, m: int, c: int) -> bool:
    return common.mean_is_measurable(trace_cv2(n, d, m), c, MAX_SKEW)


def mse_is_testable(n: int, d: int, m: int, c: int) -> bool:
    """||mu_n - mu_0||^2 given the path is a weighted chi^2_d (skewness up to sqrt(8/d)), its
    weights the fitted covariances of generations < n: the mean's skewness sqrt(8 / (d C))
    and the trace's rule at generation n - 1."""
    return math.sqrt(8.0 / (d * c)) <= MAX_SKEW and trace_is_testable(max(n - 1, 0), d, m, c)


def empirically_testable(moments, n: int, c: int) -> bool:
    """The chains' own skewness over sqrt(C), and the log-normal proxy with their CV^2."""
    mean, m2, m3 = moments.mean[n], moments.m2[n], moments.m3[n]
    if not (m2 > 0 and mean > 0):
        return True
    skew = abs(m3) / m2**1.5
    return skew / math.sqrt(c) <= MAX_SKEW and common.mean_is_measurable(m2 / mean**2, c, MAX_SKEW)


def resolution(x64: bool, value: float, d: int = 1) -> float:
    """Rounding of a recorded value in the run's float type (64 d ulps)."""
    eps = float(np.finfo(np.float64 if x64 else np.float32).eps)
    return 64 * d * eps * max(1.0, abs(value))


def compare(run: ConfigRun, x64: bool = False) -> list:
    """The comparison rows of one run at the report generations."""
    res, th, c = run.result, run.theory, run.num_chains
    d, m = run.dim, run.sample_size
    mo = res.moments
    g = len(res.generations) - 1
    rows = []

    def row(statistic, n, empirical, se, theory, testable, note=""):
        rows.append(
            common.Comparison(
                config=run.label,
                statistic=statistic,
                generation=n,
                empirical=float(empirical),
                se=float(se),
                theory=float(theory),
                testable=bool(testable),
                note=note,
                resolution=0.0 if not math.isfinite(theory) else resolution(x64, theory, d),
            )
        )

    skewed = "skewed across chains: a z-test needs more chains"
    ld, tr, mse = mo["log_det"], mo["trace"], mo["mean_sq_error"]
    if run.regime == "replace":
        for n in report_generations(g):
            row("E[log det Sigma]", n, ld.mean[n], ld.sem[n], th["log_det_mean"][n], True)
            row("Var[log det Sigma]", n, ld.var[n], ld.var_se[n], th["log_det_var"][n], True)
            ok = trace_is_testable(n, d, m, c)
            row("E[tr Sigma]", n, tr.mean[n], tr.sem[n], th["trace_mean"][n], ok,
                "" if ok else skewed)  # fmt: skip
            ok = mse_is_testable(n, d, m, c)
            row("E||mu-mu0||^2", n, mse.mean[n], mse.sem[n], th["mean_sq_error_mean"][n], ok,
                "" if ok else skewed)  # fmt: skip
    elif run.regime == "accumulate":
        for n in report_generations(g):
            for statistic, mom, name in (
                ("E[tr Sigma]", tr, "trace_mean"),
                ("E||mu-mu0||^2", mse, "mean_sq_error_mean"),
            ):
                ok = empirically_testable(mom, n, c)
                row(statistic, n, mom.mean[n], mom.sem[n], th[name][n], ok, "" if ok else skewed)
        row("E[log det Sigma]", g, ld.mean[g], ld.sem[g], math.nan, False,
            "no closed form (accumulate)")  # fmt: skip
    else:
        note = "no closed form (subsample)"
        for statistic, mom in (
            ("E[log det Sigma]", ld),
            ("E[tr Sigma]", tr),
            ("E||mu-mu0||^2", mse),
        ):
            row(statistic, g, mom.mean[g], mom.sem[g], math.nan, False, note)
    return rows


def run_study(config, progress: bool = True) -> Study:
    """Simulates every run of ``config`` and compares with theory."""
    with common.float64():
        return _run_study(config, progress)


def _run_study(config, progress: bool) -> Study:
    import jax.numpy as jnp

    from sim.chain import root_key
    from sim.regimes import Regime
    from sim.run import run as run_family

    dtype = jnp.float64 if config.x64 else jnp.float32
    root = root_key(config.seed, config.prng_impl)
    runner = functools.partial(run_family, "multivariate")
    runs, rows = [], []
    for d, m, est, regime in plan(config):
        sub = regime == "subsample"
        c = config.subsample_chains if sub else config.num_chains
        g = config.subsample_generations if sub else config.generations
        method = "sample" if sub else config.method
        label = label_of(d, m, est, regime)
        regime_arg = {
            "replace": None,
            "accumulate": Regime.accumulate(),
            "subsample": Regime.subsample(budget(config, m)) if sub else None,
        }[regime]
        detail = f", {est}, {method} draws" + (f", budget {budget(config, m)}" if sub else "")
        res = common.timed_run(
            runner,
            label,
            progress,
            detail,
            key=config_key(root, d, m, est, regime),
            num_chains=c,
            num_generations=g,
            regime=regime_arg,
            dim=d,
            sample_size=m,
            estimator=est,
            method=method,
            dtype=dtype,
            chunk_chains=config.chunk_chains,
            snapshot_generations=snapshot_generations(g),
            snapshot_fields=("log_det", "eigenvalues"),
            progress=None if progress else False,
        )
        n = np.arange(g + 1)
        with common.timing(res.timings, "theory_s"):
            th = theory_curves(n, d, m, est, regime)
        run = ConfigRun(label, d, m, est, regime, method, c, res, th)
        runs.append(run)
        rows += compare(run, config.x64)
    return common.judged(config, runs, rows)


# ----------------------------------------------------------------------------- outputs


def summary_rows(study: Study):
    """Tidy per-generation rows: empirical moments beside the theory columns."""
    for run in study.runs:
        res, th = run.result, run.theory
        eig = res.moments["eigenvalues"].mean
        for n in res.generations:
            row = dict(
                config=run.label,
                dim=run.dim,
                sample_size=run.sample_size,
                estimator=run.estimator,
                regime=run.regime,
                method=run.method,
                generation=int(n),
            )
            common.moment_columns(row, res.moments, FIELDS, n)
            row["log_det_var_se"] = res.moments["log_det"].var_se[n]
            if "train_size" in res.moments:
                row["train_size_mean"] = res.moments["train_size"].mean[n]
            for i in range(run.dim):
                row[f"eigenvalue{i}_mean"] = eig[n, i]  # ascending
            common.theory_columns(row, th, n, len(res.generations))
            yield row


def final_records(run) -> dict:
    """Per-chain records of the final fits (the family's own record, chain by chain)."""
    import jax

    from sim.families.multivariate import multivariate_record

    final = run.result.final
    params = getattr(final, "params", final)  # a regime's state holds the params
    rec = jax.vmap(multivariate_record)(params)
    return {f: np.asarray(getattr(rec, f)) for f in (*FIELDS, "eigenvalues")}


def write_outputs(
    study: Study, output_dir: str, flags_dict: dict | None = None, wall_s: float | None = None
) -> list[str]:
    """Writes CSVs, figures (PNG + PDF), per-chain final records (.npz) and a manifest."""
    from experiments import multivariate_figures

    def arrays(run):
        out = final_records(run)
        out["log_det_snapshots"] = np.asarray(run.result.snapshots["log_det"])
        out["snapshot_generations"] = np.asarray(run.result.snapshot_generations)
        return out

    return common.write_study(
        study,
        output_dir,
        experiment="multivariate_chain",
        summary_rows=summary_rows(study),
        run_arrays=arrays,
        plot_all=multivariate_figures.plot_all,
        flags_dict=flags_dict,
        wall_s=wall_s,
    )
