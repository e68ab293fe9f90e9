r"""The regression-chain study: run, compare with theory, write figures and files.

For each size :math:`(d, T)`, design (fresh rows every generation, or one
fixed design :math:`X` shared by every chain), estimator (OLS and one ridge
penalty :math:`\lambda`) and data regime (replace, accumulate,
accumulate-subsample with a budget of ``budget`` rows), the study runs
:func:`sim.runners.run_regression` and sets the cross-chain mean of
the test error :math:`\lVert\hat w_n - w^*\rVert^2` and of
:math:`\lVert\hat w_n\rVert^2` beside their closed forms:

* fresh design, OLS: :func:`theory.regression.test_error` (``design="fresh"``,
  an expectation over the designs and the noise); the mean fit is
  :math:`w^*` (OLS is unbiased), so
  :math:`\mathbb{E}\lVert\hat w_n\rVert^2 = \lVert w^*\rVert^2 + \mathcal E_n`;
* fixed design, OLS or ridge: :func:`theory.regression.ridge_test_error`
  given the shared :math:`X` (its spectrum from
  :func:`theory.regression.ridge_spectrum`); the mean fit is
  :math:`V\operatorname{diag}(m)V^\top w^*` with :math:`m_i = a_i^n`
  (replace) or :math:`a_i` (accumulate, :math:`n \ge 1`),
  :math:`a_i = \kappa_i/(\kappa_i + \lambda)`, so
  :math:`\mathbb{E}\lVert\hat w_n\rVert^2 = \sum_i s_i m_i^2 + \text{variance}`;
* fresh design with ridge, and every subsample run: no closed form (ridge
  with a fresh Gaussian design has only random-matrix asymptotics; the
  subsampled pool mixes generations at random). They are simulated and drawn
  without theory, and their rows in the table are marked not testable. Ridge
  runs use the designs of ``ridge_designs`` (default: the fixed design only).

Importable from notebooks: ``run_study(validate(StudyConfig(...)))`` returns a
:class:`Study`; ``write_outputs(study, dir)`` writes everything. The command
line is :mod:`experiments.regression_chain`.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from experiments import common

DESIGNS = ("fresh", "fixed")
REGIMES = ("replace", "accumulate", "subsample")
PRNG_IMPLS = ("philox4x32", "threefry2x32")
FIELDS = ("test_error", "weight_norm_sq", "train_size")


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """Everything that determines a regression-chain study's numbers."""

    sizes: tuple[tuple[int, int], ...] = ((10, 50),)
    noise: float = 1.0
    ridge: float = 10.0
    designs: tuple[str, ...] = ("fresh", "fixed")
    ridge_designs: tuple[str, ...] = ("fixed",)
    regimes: tuple[str, ...] = REGIMES
    budget: int = 0
    num_chains: int = 4000
    subsample_chains: int = 1000
    generations: int = 20
    design_seed: int = 0
    seed: int = 0
    x64: bool = False
    false_failure_rate: float = 1e-3
    prng_impl: str = "philox4x32"
    chunk_chains: int | None = None


def parse_sizes(flags_obj, name: str) -> tuple[tuple[int, int], ...]:
    """``--sizes=10:50,20:40`` as ((10, 50), (20, 40)) (``ValueError('--sizes=item: ...')``)."""
    out = []
    for item in flags_obj[name].value:
        parts = item.split(":")
        try:
            d, t = (int(p) for p in parts)
        except ValueError:
            raise ValueError(f"--{name}={item}: not a pair d:T of integers") from None
        out.append((d, t))
    return tuple(out)


def validate(config: StudyConfig) -> StudyConfig:
    """Raises ValueError('--flag=value: reason') for the first bad setting."""

    def bad(flag, value, why):
        raise ValueError(f"--{flag}={value}: {why}")

    if not config.sizes:
        bad("sizes", "", "give at least one pair d:T")
    for d, t in config.sizes:
        if d < 1:
            bad("sizes", f"{d}:{t}", "the dimension d must be >= 1")
        if t <= d + 1:
            bad("sizes", f"{d}:{t}", f"need T > d + 1 = {d + 1} (the OLS test error is infinite)")
    if not (config.noise >= 0 and math.isfinite(config.noise)):
        bad("noise", config.noise, "must be a finite number >= 0")
    if not (config.ridge >= 0 and math.isfinite(config.ridge)):
        bad("ridge", config.ridge, "must be a finite number >= 0 (0 skips the ridge runs)")
    if not config.designs and not (config.ridge_designs and config.ridge > 0):
        bad("designs", "", "give at least one of fresh, fixed")
    for name in ("designs", "ridge_designs"):
        for x in getattr(config, name):
            if x not in DESIGNS:
                bad(name, x, f"choose from {', '.join(DESIGNS)}")
    if not config.regimes:
        bad("regimes", "", f"give at least one of {', '.join(REGIMES)}")
    for x in config.regimes:
        if x not in REGIMES:
            bad("regimes", x, f"choose from {', '.join(REGIMES)}")
    if config.budget < 0:
        bad("budget", config.budget, "must be >= 1 (0: T, the sample size)")
    if "subsample" in config.regimes:
        for d, t in config.sizes:
            if budget(config, t) <= d:
                bad("budget", config.budget, f"OLS on a subsample needs budget > d = {d}")
    for name in ("num_chains", "subsample_chains"):
        if getattr(config, name) < 2:
            bad(name, getattr(config, name), "need at least 2 chains (for standard errors)")
    if config.generations < 1:
        bad("generations", config.generations, "need at least 1 generation")
    if config.design_seed < 0:
        bad("design_seed", config.design_seed, "must be >= 0")
    if not 0 < config.false_failure_rate < 1:
        bad("false_failure_rate", config.false_failure_rate, "must be in (0, 1)")
    if config.prng_impl not in PRNG_IMPLS:
        bad("prng_impl", config.prng_impl, f"choose one of {', '.join(PRNG_IMPLS)}")
    if config.chunk_chains is not None and config.chunk_chains < 1:
        bad("chunk_chains", config.chunk_chains, "must be >= 1")
    return config


def budget(config, num_samples: int) -> int:
    """The subsample budget: ``config.budget`` rows, or T when it is 0."""
    return config.budget or num_samples


@dataclasses.dataclass
class Run:
    """One simulated configuration and its theory curves (generations 0..G)."""

    label: str
    dim: int
    num_samples: int
    design: str
    ridge: float
    regime: str  # replace, accumulate, subsample
    regime_label: str
    result: object  # sim.parallel.SimulationResult
    theory: dict  # name -> (G+1,) float64 arrays, or {} without a closed form
    w_star: np.ndarray
    design_matrix: np.ndarray | None  # the fixed X, or None

    @property
    def panel(self) -> str:
        """The figure panel of the run: everything but the regime."""
        est = "OLS" if self.ridge == 0 else f"ridge lambda={self.ridge:g}"
        return f"d={self.dim}, T={self.num_samples}, {self.design} design, {est}"

    @property
    def no_theory_reason(self) -> str:
        if self.regime == "subsample":
            return "no closed form (subsample)"
        if self.design == "fresh" and self.ridge > 0:
            return "no closed form (ridge, fresh design)"
        return ""


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
    return [n for n in (1, 10, 100, 1000) if n < g] + [g]


def run_label(d: int, t: int, design: str, ridge: float, regime_label: str) -> str:
    est = "ols" if ridge == 0 else f"ridge{ridge:g}"
    return f"d{d}T{t} {design} {est} {regime_label}"


def run_key(root, d: int, t: int, design: str, ridge_index: int, regime: str):
    """Each run's key depends on its own settings only."""
    import jax

    key = root
    for v in (d, t, DESIGNS.index(design), ridge_index, REGIMES.index(regime)):
        key = jax.random.fold_in(key, v)
    return key


def theory_curves(run: Run, noise: float, g: int) -> dict:
    """The closed forms of ``run`` on generations 0..G (empty without one)."""
    if run.no_theory_reason:
        return {}
    import jax.numpy as jnp

    from theory import regression as tr

    n = np.arange(g + 1)
    norm0 = float(np.sum(run.w_star**2))
    if run.design == "fresh":  # OLS; the mean fit stays w*
        te = np.asarray(
            tr.test_error(n, run.dim, run.num_samples, noise, run.regime, "fresh"), np.float64
        )
        return dict(test_error=te, weight_norm_sq=norm0 + te)
    spec = tr.ridge_spectrum(jnp.asarray(run.design_matrix, jnp.float64), run.w_star)
    kappa = np.asarray(spec.eigenvalues, np.float64)
    signal = np.asarray(spec.signal, np.float64)
    res = tr.ridge_test_error(n, kappa, signal, noise, run.ridge, run.regime)
    total, bias, var = (np.asarray(v, np.float64) for v in res)
    a = kappa / (kappa + run.ridge)
    if run.regime == "replace":
        shrink = a[None, :] ** n[:, None]
    else:
        shrink = np.where(n[:, None] > 0, a[None, :], 1.0)
    mean_norm = (signal[None, :] * shrink**2).sum(-1)
    return dict(test_error=total, bias=bias, variance=var, weight_norm_sq=mean_norm + var)


def resolution(run: Run, value: float) -> float:
    """Rounding of a recorded value in the run's float type (64 ulps)."""
    eps = float(np.finfo(run.result.final.params.dtype).eps)
    return 64 * eps * max(1.0, abs(value))


def compare(run: Run) -> list:
    """E[test error] and E||w||^2 against theory at the report generations."""
    res, th = run.result, run.theory
    g = len(res.generations) - 1
    rows = []
    reason = run.no_theory_reason
    gens = report_generations(g) if not reason else [g]
    for n in gens:
        for field, stat in (("test_error", "E||w_n - w*||^2"), ("weight_norm_sq", "E||w_n||^2")):
            if reason and field != "test_error":
                continue
            mo = res.moments[field]
            theory = float(th[field][n]) if not reason else float("nan")
            rows.append(
                common.Comparison(
                    config=run.label,
                    statistic=stat,
                    generation=n,
                    empirical=float(mo.mean[n]),
                    se=float(mo.sem[n]),
                    theory=theory,
                    testable=not reason,
                    note=reason,
                    resolution=0.0 if reason else resolution(run, theory),
                )
            )
    return rows


def grid(config):
    """(d, T, design, ridge index, ridge, regime) for every run, in table order.

    OLS runs use every design of ``designs``; ridge runs (``ridge > 0``) every
    design of ``ridge_designs``.
    """
    designs = [x for x in DESIGNS if x in config.designs or x in config.ridge_designs]
    for d, t in config.sizes:
        for design in designs:
            ridges = [0.0] if design in config.designs else []
            if config.ridge > 0 and design in config.ridge_designs:
                ridges.append(config.ridge)
            for ridge in ridges:
                for regime in config.regimes:
                    yield d, t, design, int(ridge > 0), ridge, regime


def run_study(config, progress: bool = True) -> Study:
    """Simulates every configuration of ``config`` and compares with theory."""
    import jax

    jax.config.update("jax_enable_x64", True)  # theory in float64; sim dtype is explicit
    common.enable_compilation_cache()
    import jax.numpy as jnp

    from sim.families.regression import family_design
    from sim.regimes import Regime
    from sim.runners import default_w_star, run_regression

    g = config.generations
    dtype = jnp.float64 if config.x64 else jnp.float32
    root = jax.random.key(config.seed, impl=config.prng_impl)
    runs, rows = [], []
    for d, t, design, ri, ridge, kind in grid(config):
        regime = {
            "replace": Regime.replace,
            "accumulate": Regime.accumulate,
            "subsample": lambda t=t: Regime.subsample(budget(config, t)),
        }[kind]()
        label = run_label(d, t, design, ridge, regime.label)
        c = config.subsample_chains if kind == "subsample" else config.num_chains
        if progress:
            print(f"[{label}] {c:,} chains x {g:,} generations", flush=True)
        w_star = np.asarray(default_w_star(d))
        tick = time.perf_counter()
        res = run_regression(
            run_key(root, d, t, design, ri, kind),
            dim=d,
            num_samples=t,
            noise=config.noise,
            ridge=ridge,
            design=design,
            design_seed=config.design_seed,
            w_star=w_star,
            regime=regime,
            num_chains=c,
            num_generations=g,
            dtype=dtype,
            chunk_chains=config.chunk_chains,
            progress=None if progress else False,
            progress_desc=label,
        )
        res.timings["simulate_s"] = time.perf_counter() - tick
        x = family_design(d, t, config.design_seed, dtype) if design == "fixed" else None
        run = Run(label, d, t, design, ridge, kind, regime.label, res, {}, w_star, x)
        tick = time.perf_counter()
        run.theory = theory_curves(run, config.noise, g)
        res.timings["theory_s"] = time.perf_counter() - tick
        if progress:
            print(f"[{label}] simulated in {res.timings['simulate_s']:.1f} s", flush=True)
        runs.append(run)
        rows += compare(run)
    z_crit = common.judge_all(rows, config.false_failure_rate)
    return Study(
        config, runs, rows, z_crit, common.format_table(rows, z_crit), common.environment()
    )


# ----------------------------------------------------------------------------- outputs


def summary_rows(study: Study):
    """Tidy per-generation rows: empirical moments beside the theory columns."""
    for run in study.runs:
        res, th = run.result, run.theory
        for n in res.generations:
            row = dict(
                config=run.label,
                dim=run.dim,
                num_samples=run.num_samples,
                design=run.design,
                ridge=run.ridge,
                regime=run.regime_label,
                generation=int(n),
            )
            for f in FIELDS:
                mo = res.moments[f]
                row[f"{f}_mean"] = mo.mean[n]
                row[f"{f}_sem"] = mo.sem[n]
                row[f"{f}_var"] = mo.var[n]
            for name in ("test_error", "bias", "variance", "weight_norm_sq"):
                row[f"theory_{name}"] = th[name][n] if name in th else ""
            yield row


def run_arrays(run: Run) -> dict:
    out = dict(final_w=run.result.final.params, w_star=run.w_star)
    if run.design_matrix is not None:
        out["design"] = run.design_matrix
    return out


def write_outputs(
    study: Study, output_dir: str, flags_dict: dict | None = None, wall_s: float | None = None
) -> list[str]:
    """Writes CSVs, figures (PNG + PDF), per-chain final weights (.npz) and a manifest."""
    from experiments import regression_figures

    return common.write_study(
        study,
        output_dir,
        experiment="regression_chain",
        summary_rows=summary_rows(study),
        run_arrays=run_arrays,
        plot_all=regression_figures.plot_all,
        flags_dict=flags_dict,
        wall_s=wall_s,
    )
