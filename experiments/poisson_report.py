"""The Poisson-chain study: run, compare with theory.poisson, write figures and files.

Importable from notebooks: ``run_study(validate(StudyConfig(...)))`` returns
a :class:`~experiments.common.Study`; ``write_outputs(study, dir)`` writes
everything. The command line is :mod:`experiments.poisson_chain`, whose flags
are made from :class:`StudyConfig`.

What is compared, for each (M, lam0) and at the report generations: the
cross-chain mean of the fitted rate with :math:`\\lambda_0` (a martingale), its
variance across chains with :math:`n\\lambda_0/M`, and the fraction of chains
absorbed at 0 with :math:`e^{-M\\lambda_0 g_n}` (``theory.poisson``), by
z-scores with Monte-Carlo standard errors, Bonferroni at
``--false_failure_rate``. A row is tested only where its estimate is close
enough to normal for a z-test (see :func:`estimate_skewness`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import zlib

import numpy as np

from experiments import common
from experiments.common import MAX_SIZE, setting

METHODS = ("sample", "exact")
FIELDS = ("rate", "extinct", "error_sq")
# A z-test is trusted while the estimate's own skewness is at most this (the
# rule of common.mean_is_measurable).
MAX_SKEW = 0.1


@dataclasses.dataclass(frozen=True)
class StudyConfig(common.CommonSettings):
    """Everything that determines a Poisson-chain study's numbers (and its flags).

    The default is one configuration (M = 5, lam0 = 1): each (M, lam0) compiles its
    own program, 10-25 CPU seconds for the exact Poisson sampler on 2 cores, so the
    default stays a short run; ``--sample_sizes=5,20 --rates=0.5,2.0`` runs four.
    """

    num_chains: int = setting(20_000, "Independent chains per configuration (C).", high=MAX_SIZE)
    generations: int = setting(60, "Number of fits per chain (G).", high=MAX_SIZE)
    sample_sizes: tuple[int, ...] = setting(
        (5,), "Samples per generation (M), a list.", high=MAX_SIZE
    )
    rates: tuple[float, ...] = setting(
        (1.0,), "Real rates lam0, a list (every M runs with every rate)."
    )
    method: str = setting(
        "sample",
        "sample: draw M counts and refit; exact: draw their total (the same Markov chain, "
        "O(1) in M).",
    )


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
        if m < 1:
            bad("sample_sizes", m, "a fit needs M >= 1 draws")
    if not config.rates:
        bad("rates", "", "give at least one rate")
    for lam0 in config.rates:
        if not lam0 >= 0:
            bad("rates", f"{lam0:g}", "a Poisson rate must be >= 0")
    if config.method not in METHODS:
        bad("method", config.method, "choose sample or exact")
    # The family keeps counts exact while M lam0 stays 100 times below the float's
    # exact-integer range (survivors grow like n / (2M) times the rate).
    limit, kind = (2**53, "float64") if config.x64 else (2**24, "float32 (use --x64)")
    for m in config.sample_sizes:
        for lam0 in config.rates:
            if m * lam0 * 100 > limit:
                bad(
                    "rates",
                    f"{lam0:g}",
                    f"M lam0 = {m * lam0:g} at M={m}: counts would leave the exact integers "
                    f"of {kind}",
                )
    common.check_memory(memory_runs(config), config.x64, config.chunk_chains)
    return config


def memory_runs(config: StudyConfig):
    """The study's runs as the memory model sees them (:mod:`experiments.common.memory`)."""
    sample = config.method == "sample"
    for m in config.sample_sizes:
        for _ in config.rates:
            yield common.RunSize(
                chains=("num_chains", config.num_chains),
                generations=("generations", config.generations),
                fields=len(FIELDS),
                elements=m if sample else 0,
                elements_flag=("sample_sizes", m),
                advice="use --method=exact (the same chain, O(1) in M) or fewer chains "
                "(--num_chains, --chunk_chains)",
                state_floats=1,
                columns=20,
            )


@dataclasses.dataclass
class ConfigRun:
    """One (sample size, rate) configuration: simulation and theory."""

    label: str
    sample_size: int
    lam0: float
    result: object  # sim.parallel.SimulationResult
    theory: dict  # name -> (G+1,) float64 arrays over generations 0..G


Study = common.Study


def report_generations(g: int) -> list[int]:
    """Generations shown in the table: 1, 2, 5, 10, 20, 50, ... below G, and G."""
    marks = [k * 10**e for e in range(7) for k in (1, 2, 5)]
    return common.report_generations(g, marks)


def label_of(m: int, lam0: float) -> str:
    return f"M={m} lam0={lam0:g}"


def config_key(root, sample_size: int, lam0: float):
    """Each configuration's key depends on its own settings only."""
    import jax

    salt = zlib.crc32(f"{float(lam0)!r}".encode()) & 0x7FFFFFFF
    return jax.random.fold_in(jax.random.fold_in(root, sample_size), salt)


def theory_curves(n: np.ndarray, m: int, lam0: float) -> dict:
    """Every closed form of the study on generations ``n`` (float64)."""
    from theory import poisson as tp

    out = {
        "rate_mean": tp.expected_rate(n, m, lam0),
        "rate_var": tp.rate_variance(n, m, lam0),
        "zero_probability": tp.zero_probability(n, m, lam0),
        "survival": tp.survival_probability(n, m, lam0),
        "survival_asymptote": tp.survival_asymptote(n, m, lam0),
    }
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def _skew(r1: float, r2: float, r3: float) -> float:
    """Skewness from the first three raw moments."""
    var = r2 - r1 * r1
    if not var > 0:
        return math.inf
    return abs(r3 - 3 * r1 * r2 + 2 * r1**3) / var**1.5


def estimate_skewness(
    statistic: str, n: int, sample_size: int, lam0: float, num_chains: int
) -> float:
    """The skewness of one row's estimate over ``num_chains`` chains (a proxy).

    ``P(extinct)``: a binomial fraction, skewness :math:`|1 - 2p| / \\sqrt{C p (1 - p)}`
    at the predicted :math:`p`. The rate's mean and variance: the rate is
    modelled as 0 with the exact probability :math:`1 - s` and, given that it
    survived, as a gamma law matched to the exact mean :math:`\\lambda_0 / s` and
    second moment :math:`(n\\lambda_0/M + \\lambda_0^2)/s`: the Poisson law's
    own shape :math:`\\approx M\\lambda_0` at fit 1, tending to an exponential
    (Yaglom's limit for a critical branching process given survival) as
    :math:`s \\to 0`. The mean over C chains of the rate (for ``E[rate]``) or of
    its square (for ``Var[rate]``) then has skewness :math:`\\gamma / \\sqrt C`.
    """
    from theory import poisson as tp

    c = num_chains
    p = float(tp.zero_probability(n, sample_size, lam0))
    if statistic == "P(extinct)":
        q = p * (1.0 - p)
        return 0.0 if q == 0 else abs(1.0 - 2.0 * p) / math.sqrt(c * q)
    s = 1.0 - p
    if not s > 0 or n == 0:
        return 0.0  # a constant (every chain at lam0, or at 0): an exact comparison
    # given survival, Gamma(k, .) with 1/k = E[X^2] / E[X]^2 - 1 = s (n / (M lam0) + 1) - 1
    k = 1.0 / max(s * (n / (sample_size * lam0) + 1.0) - 1.0, 1e-12)
    power = 1 if statistic == "E[rate]" else 2

    def raw(j):  # E[X^(power j)] / scale^(power j) = s Gamma(k + power j) / Gamma(k)
        return s * math.exp(math.lgamma(k + power * j) - math.lgamma(k))

    return _skew(raw(1), raw(2), raw(3)) / math.sqrt(c)


def compare(run: ConfigRun, num_chains: int) -> list:
    """The comparison rows of one configuration at the report generations."""
    res, th, c = run.result, run.theory, num_chains
    rate, extinct = res.moments["rate"], res.moments["extinct"]
    rows = []
    for n in report_generations(len(res.generations) - 1):
        p = float(th["zero_probability"][n])
        cells = (
            ("E[rate]", rate.mean[n], rate.sem[n], th["rate_mean"][n]),
            ("Var[rate]", rate.var[n], rate.var_se[n], th["rate_var"][n]),
            ("P(extinct)", extinct.mean[n], common.binomial_se(p, c), p),
        )
        for statistic, empirical, se, theory in cells:
            ok = estimate_skewness(statistic, n, run.sample_size, run.lam0, c) <= MAX_SKEW
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
    runner = functools.partial(run_family, "poisson")
    runs, rows = [], []
    for m in config.sample_sizes:
        for lam0 in config.rates:
            label = label_of(m, lam0)
            res = common.timed_run(
                runner,
                label,
                progress,
                f", method={config.method}",
                key=config_key(root, m, lam0),
                sample_size=m,
                lam0=lam0,
                method=config.method,
                num_chains=c,
                num_generations=g,
                dtype=dtype,
                chunk_chains=config.chunk_chains,
                progress=None if progress else False,
            )
            with common.timing(res.timings, "theory_s"):
                th = theory_curves(n, m, lam0)
            run = ConfigRun(label, m, lam0, res, th)
            runs.append(run)
            rows += compare(run, c)
    return common.judged(config, runs, rows)


# ----------------------------------------------------------------------------- outputs


def summary_rows(study: Study):
    """Tidy per-generation rows: empirical moments beside the theory columns."""
    for run in study.runs:
        res, th = run.result, run.theory
        for n in res.generations:
            row = dict(
                config=run.label,
                sample_size=run.sample_size,
                lam0=run.lam0,
                method=study.config.method,
                generation=int(n),
            )
            common.moment_columns(row, res.moments, FIELDS, n)
            row["rate_var_se"] = res.moments["rate"].var_se[n]
            common.theory_columns(row, th, n, len(res.generations))
            yield row


def write_outputs(
    study: Study, output_dir: str, flags_dict: dict | None = None, wall_s: float | None = None
) -> list[str]:
    """Writes CSVs, figures (PNG + PDF), per-chain final rates (.npz) and a manifest."""
    from experiments import poisson_figures

    return common.write_study(
        study,
        output_dir,
        experiment="poisson_chain",
        summary_rows=summary_rows(study),
        run_arrays=lambda run: dict(
            rate=run.result.final.rate,
            extinct_generation=run.result.first_passage["extinct"],
        ),
        plot_all=poisson_figures.plot_all,
        flags_dict=flags_dict,
        wall_s=wall_s,
    )
