"""The Gaussian-chain study: run, compare with theory, write figures and files.

Importable from notebooks: ``run_study(StudyConfig(...))`` returns a
:class:`Study`; ``write_outputs(study, dir)`` writes everything.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from experiments import common

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


@dataclasses.dataclass
class Study:
    config: object
    runs: list
    comparisons: list
    z_crit: float
    table: str
    env: dict

    @property
    def num_failed(self) -> int:
        return sum(r.verdict == common.FAIL for r in self.comparisons)


def report_generations(g: int) -> list[int]:
    """Generations shown in the table: 1, 10, 100, ... below G, and G."""
    return [n for n in (1, 10, 100, 1000, 10_000, 100_000) if n < g] + [g]


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
    import jax

    jax.config.update("jax_enable_x64", True)  # theory in float64; sim dtype is explicit
    common.enable_compilation_cache()
    import jax.numpy as jnp

    from sim.runners import run_gaussian

    g, c = config.generations, config.num_chains
    dtype = jnp.float64 if config.x64 else jnp.float32
    root = jax.random.key(config.seed, impl=config.prng_impl)
    snaps = snapshot_generations(g)
    n = np.arange(g + 1)
    runs, rows = [], []
    for m in config.sample_sizes:
        for est in config.estimators:
            label = f"M={m} {est}"
            if progress:
                print(
                    f"[{label}] {c:,} chains x {g:,} generations, method={config.method}",
                    flush=True,
                )
            t = time.perf_counter()
            res = run_gaussian(
                config_key(root, m, est),
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
                progress_desc=label,
            )
            sim_s = time.perf_counter() - t
            t = time.perf_counter()
            th = theory_curves(n, m, est, config.tail_k, config.collapse_eps)
            theory_s = time.perf_counter() - t
            lv = res.snapshots["log_var"].astype(np.float64)
            emp_q = {q: np.quantile(lv, q, axis=1) for q in QUANTILES}
            run = ConfigRun(label, m, est, res, th, emp_q)
            run.result.timings["simulate_s"] = sim_s
            run.result.timings["theory_s"] = theory_s
            if progress:
                print(
                    f"[{label}] simulated in {sim_s:.1f} s (first call incl. compile "
                    f"{res.timings['first_call_s']:.1f} s), theory in {theory_s:.1f} s",
                    flush=True,
                )
            runs.append(run)
            rows += compare(run, c, config.tail_k)
    z_crit = common.judge_all(rows, config.false_failure_rate)
    return Study(
        config, runs, rows, z_crit, common.format_table(rows, z_crit), common.environment()
    )


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
            for f in FIELDS:
                mo = res.moments[f]
                row[f"{f}_mean"] = mo.mean[n]
                row[f"{f}_sem"] = mo.sem[n]
                row[f"{f}_var"] = mo.var[n]
            for q in QUANTILES:
                j = snaps.get(int(n))
                row[f"log_var_q{q:g}"] = run.emp_quantiles[q][j] if j is not None else ""
            for k, v in th.items():
                row[f"theory_{k}"] = v[n]
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
