"""The KDE-chain study: run, compare with theory.kde, write figures and files.

Importable from notebooks: ``run_study(validate(StudyConfig(...)))`` returns a
:class:`~experiments.common.Study`; ``write_outputs(study, dir)`` writes
everything. The command line is :mod:`experiments.kde_chain`, whose flags are
made from :class:`StudyConfig`.

What is compared, for each sample size M and each run (a fixed bandwidth h,
Scott's and Silverman's rules under replace, and a fixed h under accumulate):
the cross-chain mean of the fitted distribution's variance with
``theory.kde`` (fixed h: ``expected_variance``; rules: ``rule_expected_variance``;
accumulate: ``accumulate_moments``), the cross-chain mean of the fitted mean with
the real mean (a martingale) and its variance across chains with the closed form,
by z-scores with Monte-Carlo standard errors, Bonferroni at
``--false_failure_rate``. A row is tested where the variance's cross-chain
distribution lets a mean be measured (:func:`testable`): under a rule of thumb the
variance grows geometrically and its spread across chains grows faster, so late
generations are reported but not tested.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import zlib

import numpy as np

from experiments import common
from experiments.common import MAX_SIZE, setting

RULES = ("fixed", "scott", "silverman")
FIELDS = ("variance", "points_var", "mean", "fit_bandwidth", "heldout_loglik", "tail_mass")
MAX_SKEW = 0.1  # the rule of common.mean_is_measurable


@dataclasses.dataclass(frozen=True)
class StudyConfig(common.CommonSettings):
    """Everything that determines a KDE-chain study's numbers (and its flags)."""

    num_chains: int = setting(10_000, "Independent chains per replace run (C).", high=MAX_SIZE)
    generations: int = setting(40, "Number of fits per replace chain (G).", high=MAX_SIZE)
    sample_sizes: tuple[int, ...] = setting(
        (20,), "Samples per generation (M), a list.", high=MAX_SIZE
    )
    bandwidth: float = setting(0.3, "The fixed bandwidth h (fixed point of E variance: M h^2).")
    rules: tuple[str, ...] = setting(
        RULES, "Bandwidths of the replace runs: fixed, scott, silverman (a list)."
    )
    accumulate: bool = setting(True, "Also run the fixed bandwidth under accumulate.")
    accumulate_chains: int = setting(
        2_000, "Chains of the accumulate run (it stores M G points per chain).", high=MAX_SIZE
    )
    accumulate_generations: int = setting(
        30, "Fits per accumulate chain (memory and time grow like G^2).", high=MAX_SIZE
    )
    heldout_size: int = setting(
        32, "Size of the shared held-out real sample scored by every fit.", high=MAX_SIZE
    )
    tail_k: float = setting(3.0, "Tail mass is measured beyond k sigma0 from the real mean.")


def validate(config: StudyConfig) -> StudyConfig:
    """Raises ValueError('--flag=value: reason') for the first bad setting."""
    bad = common.bad
    common.check_settings(config)
    for name in ("num_chains", "generations", "accumulate_chains", "accumulate_generations"):
        if getattr(config, name) < 1:
            bad(name, getattr(config, name), "must be at least 1")
    if not config.sample_sizes:
        bad("sample_sizes", "", "give at least one sample size")
    for m in config.sample_sizes:
        if m < 2:
            bad("sample_sizes", m, "a KDE chain needs M >= 2 points (a rule needs their sd)")
    if not config.bandwidth > 0:
        bad("bandwidth", f"{config.bandwidth:g}", "the bandwidth must be > 0")
    if not config.rules and not config.accumulate:
        bad("rules", "", "give at least one rule (or keep --accumulate)")
    for rule in config.rules:
        if rule not in RULES:
            bad("rules", rule, f"choose from {', '.join(RULES)}")
    if config.heldout_size < 1:
        bad("heldout_size", config.heldout_size, "must be at least 1")
    if not config.tail_k >= 0:
        bad("tail_k", f"{config.tail_k:g}", "must be >= 0")
    common.check_memory(memory_runs(config), config.x64, config.chunk_chains)
    return config


def memory_runs(config: StudyConfig):
    """The study's runs as the memory model sees them (:mod:`experiments.common.memory`)."""
    h = config.heldout_size
    for m in config.sample_sizes:
        for _ in config.rules:
            yield common.RunSize(
                chains=("num_chains", config.num_chains),
                generations=("generations", config.generations),
                fields=len(FIELDS),
                elements=m * (h + 4),
                elements_flag=("sample_sizes", m),
                advice="use fewer chains (--num_chains, --chunk_chains) or --heldout_size",
                state_floats=m + 2,
            )
        if config.accumulate:
            cap = m * config.accumulate_generations
            yield common.RunSize(
                chains=("accumulate_chains", config.accumulate_chains),
                generations=("accumulate_generations", config.accumulate_generations),
                fields=len(FIELDS) + 1,
                elements=cap * (h + 4),
                elements_flag=("accumulate_generations", config.accumulate_generations),
                advice="accumulate stores M G points per chain: fewer --accumulate_generations "
                "or --accumulate_chains",
                state_floats=2 * cap + 3,
            )


@dataclasses.dataclass
class ConfigRun:
    """One run: a sample size, a bandwidth rule and a regime; simulation and theory."""

    label: str
    sample_size: int
    rule: str
    regime: str
    num_chains: int
    result: object  # sim.parallel.SimulationResult
    theory: dict  # name -> (G+1,) float64 arrays over generations 0..G
    state_bytes: int  # one chain's carried state (the stored points), bytes


Study = common.Study


def report_generations(g: int) -> list[int]:
    """Generations shown in the table: 1, 2, 5, 10, 20, 50, ... below G, and G."""
    marks = [k * 10**e for e in range(7) for k in (1, 2, 5)]
    return common.report_generations(g, marks)


def label_of(m: int, rule: str, regime: str) -> str:
    return f"M={m} " + ("acc-" if regime == "accumulate" else "") + rule


def config_key(root, m: int, rule: str, regime: str):
    """Each run's key depends on its own settings only."""
    import jax

    salt = zlib.crc32(f"{rule}/{regime}".encode()) & 0x7FFFFFFF
    return jax.random.fold_in(jax.random.fold_in(root, m), salt)


def theory_curves(n: np.ndarray, m: int, h: float, rule: str, regime: str) -> dict:
    """The study's closed forms on generations ``n`` (float64); sigma0 = 1."""
    from theory import kde as tk

    if regime == "accumulate":
        acc = tk.accumulate_moments(n, m, h)
        var, mean_var = acc.expected_variance, acc.mean_variance
        extra = {"replace_variance": tk.expected_variance(n, m, h)}
    elif rule == "fixed":
        var, mean_var = tk.expected_variance(n, m, h), tk.mean_variance(n, m, h)
        extra = {"fixed_point": np.full(n.shape, float(tk.variance_fixed_point(m, h)))}
    else:
        var = tk.rule_expected_variance(n, m, 1.0, rule)
        mean_var = tk.rule_mean_variance(n, m, 1.0, rule)
        extra = {}
    r = (m - 1) / m
    out = {
        "variance_mean": var,
        "mean_var": mean_var,
        "collapse_variance": r ** np.asarray(n, np.float64),  # the Gaussian MLE chain (G2)
        **extra,
    }
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def testable(moments, n: int, num_chains: int) -> bool:
    """Whether the mean of the variance at generation n can be z-tested.

    The estimate's skewness is taken as the larger of the chains' sample skewness
    over sqrt(C) and the skewness of a mean of C log-normal draws with the sample's
    CV^2 (:func:`experiments.common.mean_is_measurable`), and must be at most 0.1.
    """
    mean, m2, m3 = moments.mean[n], moments.m2[n], moments.m3[n]
    if not (m2 > 0 and mean > 0):
        return True  # a constant (generation 0): an exact comparison
    skew = abs(m3) / m2**1.5
    return skew / math.sqrt(num_chains) <= MAX_SKEW and common.mean_is_measurable(
        m2 / mean**2, num_chains, MAX_SKEW
    )


def compare(run: ConfigRun) -> list:
    """The comparison rows of one run at the report generations."""
    res, th, c = run.result, run.theory, run.num_chains
    var, mean = res.moments["variance"], res.moments["mean"]
    rows = []
    for n in report_generations(len(res.generations) - 1):
        ok = testable(var, n, c)
        cells = (
            ("E[variance]", var.mean[n], var.sem[n], th["variance_mean"][n]),
            ("E[mean]", mean.mean[n], mean.sem[n], 0.0),
            ("Var[mean]", mean.var[n], mean.var_se[n], th["mean_var"][n]),
        )
        for statistic, empirical, se, theory in cells:
            rows.append(
                common.Comparison(
                    config=run.label,
                    statistic=statistic,
                    generation=n,
                    empirical=float(empirical),
                    se=float(se),
                    theory=float(theory),
                    testable=ok,
                    note="" if ok else "skewed across chains: a z-test needs more chains",
                    # generation 0 is exact up to float32 rounding of the recorded values
                    resolution=1e-6 * max(abs(float(theory)), 1.0),
                )
            )
    return rows


def run_study(config, progress: bool = True) -> Study:
    """Simulates every run of ``config`` and compares with theory."""
    with common.float64():
        return _run_study(config, progress)


def _state_bytes(program) -> int:
    import jax

    return int(sum(np.asarray(x).nbytes for x in jax.tree.leaves(program.init)))


def _run_study(config, progress: bool) -> Study:
    import jax.numpy as jnp

    from sim import families
    from sim.chain import root_key
    from sim.run import run as run_family

    dtype = jnp.float64 if config.x64 else jnp.float32
    root = root_key(config.seed, config.prng_impl)
    runner = functools.partial(run_family, "kde")
    spec = families.get("kde")
    plan = [(m, rule, "replace") for m in config.sample_sizes for rule in config.rules]
    if config.accumulate:
        plan += [(m, "fixed", "accumulate") for m in config.sample_sizes]
    runs, rows = [], []
    for m, rule, regime in plan:
        acc = regime == "accumulate"
        c = config.accumulate_chains if acc else config.num_chains
        g = config.accumulate_generations if acc else config.generations
        label = label_of(m, rule, regime)
        settings = dict(
            sample_size=m,
            bandwidth=config.bandwidth,
            rule=rule,
            regime=regime,
            heldout_size=config.heldout_size,
            tail_k=config.tail_k,
            dtype=dtype,
        )
        res = common.timed_run(
            runner,
            label,
            progress,
            f", h={config.bandwidth:g}" if rule == "fixed" else "",
            key=config_key(root, m, rule, regime),
            num_chains=c,
            num_generations=g,
            chunk_chains=config.chunk_chains,
            progress=None if progress else False,
            **settings,
        )
        state = _state_bytes(spec.program(spec.settings(**settings), (), c, g))
        if progress and acc:
            print(f"[{label}] state per chain: {state:,} bytes ({m * g:,} stored points)")
        n = np.arange(g + 1)
        with common.timing(res.timings, "theory_s"):
            th = theory_curves(n, m, config.bandwidth, rule, regime)
        run = ConfigRun(label, m, rule, regime, c, res, th, state)
        runs.append(run)
        rows += compare(run)
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
                rule=run.rule,
                regime=run.regime,
                bandwidth=study.config.bandwidth if run.rule == "fixed" else float("nan"),
                state_bytes_per_chain=run.state_bytes,
                generation=int(n),
            )
            common.moment_columns(row, res.moments, FIELDS, n)
            row["mean_var_se"] = res.moments["mean"].var_se[n]
            common.theory_columns(row, th, n, len(res.generations))
            yield row


def write_outputs(
    study: Study, output_dir: str, flags_dict: dict | None = None, wall_s: float | None = None
) -> list[str]:
    """Writes CSVs, figures (PNG + PDF), per-chain final values (.npz) and a manifest."""
    from experiments import kde_figures

    def arrays(run):
        final = run.result.final
        params = getattr(final, "params", final)  # a regime's state holds the params
        import jax

        from sim.families.kde import point_mean_var

        mean, var = jax.vmap(point_mean_var)(params.points, params.count)
        h = np.asarray(params.bandwidth)
        return dict(
            variance=np.asarray(var) + h * h,
            mean=np.asarray(mean),
            bandwidth=h,
            count=np.asarray(params.count),
        )

    return common.write_study(
        study,
        output_dir,
        experiment="kde_chain",
        summary_rows=summary_rows(study),
        run_arrays=arrays,
        plot_all=kde_figures.plot_all,
        flags_dict=flags_dict,
        wall_s=wall_s,
    )
