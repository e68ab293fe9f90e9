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
:class:`~experiments.common.Study`; ``write_outputs(study, dir)`` writes
everything. The command line is :mod:`experiments.regression_chain`, whose
flags are made from :class:`StudyConfig`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from experiments import common
from experiments.common import MAX_SIZE, setting

DESIGNS = ("fresh", "fixed")
REGIMES = ("replace", "accumulate", "subsample")
FIELDS = ("test_error", "weight_norm_sq", "train_size")


def parse_size(text: str) -> tuple[int, int]:
    """One ``d:T`` entry of ``--sizes`` as (d, T) (``ValueError(reason)`` if it is not one)."""
    parts = str(text).split(":")
    try:
        d, t = (common.settings.parse_int(p) for p in parts)
    except ValueError:
        raise ValueError("not a pair d:T of integers") from None
    return d, t


@dataclasses.dataclass(frozen=True)
class StudyConfig(common.CommonSettings):
    """Everything that determines a regression-chain study's numbers (and its flags)."""

    sizes: tuple[tuple[int, int], ...] = setting(
        ((10, 50),),
        "Pairs d:T (weights, rows per generation), a list.",
        item=parse_size,
        show=lambda x: f"{x[0]}:{x[1]}",
    )
    noise: float = setting(1.0, "Label-noise standard deviation sigma.")
    ridge: float = setting(10.0, "Ridge penalty lambda of the ridge runs (0: OLS runs only).")
    designs: tuple[str, ...] = setting(("fresh", "fixed"), "Designs of the OLS runs: fresh, fixed.")
    ridge_designs: tuple[str, ...] = setting(
        ("fixed",),
        "Designs of the ridge runs (fresh has no closed form; fixed is tested given X).",
    )
    regimes: tuple[str, ...] = setting(REGIMES, "Data regimes.")
    budget: int = setting(0, "Rows per fit of the subsample regime (0: T).", high=MAX_SIZE)
    num_chains: int = setting(4000, "Independent chains per configuration (C).", high=MAX_SIZE)
    subsample_chains: int = setting(
        1000, "Chains per subsample run (each stores every row: O(T G)).", high=MAX_SIZE
    )
    generations: int = setting(20, "Number of fits per chain (G).", high=MAX_SIZE)
    design_seed: int = setting(0, "Seed of the fixed design matrix X.", seed=True)


def parse_sizes(flags_obj, name: str) -> tuple[tuple[int, int], ...]:
    """``--sizes=10:50,20:40`` as ((10, 50), (20, 40)) (``ValueError('--sizes=item: ...')``)."""
    out = []
    for item in flags_obj[name].value:
        try:
            out.append(parse_size(item))
        except ValueError as e:
            common.bad(name, item, str(e))
    return tuple(out)


def validate(config: StudyConfig) -> StudyConfig:
    """Raises ValueError('--flag=value: reason') for the first bad setting.

    Every setting is checked, also those of a part that is switched off
    (``--budget`` without the subsample regime), and the study must fit in
    memory.
    """
    bad = common.bad
    common.check_settings(config)
    if not config.sizes:
        bad("sizes", "", "give at least one pair d:T")
    for d, t in config.sizes:
        if d < 1:
            bad("sizes", f"{d}:{t}", "the dimension d must be >= 1")
        if t <= d + 1:
            bad("sizes", f"{d}:{t}", f"need T > d + 1 = {d + 1} (the OLS test error is infinite)")
        if max(d, t) > common.MAX_INT:
            bad("sizes", f"{d}:{t}", f"out of range (at most {common.MAX_INT:,})")
    if not config.noise >= 0:
        bad("noise", config.noise, "must be a finite number >= 0")
    if not config.ridge >= 0:
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
    for d, t in config.sizes:
        if budget(config, t) <= d:
            bad("budget", config.budget, f"OLS on a subsample needs budget > d = {d}")
    for name in ("num_chains", "subsample_chains"):
        if getattr(config, name) < 2:
            bad(name, getattr(config, name), "need at least 2 chains (for standard errors)")
    if config.generations < 1:
        bad("generations", config.generations, "need at least 1 generation")
    common.check_memory(memory_runs(config), config.x64, config.chunk_chains)
    return config


def memory_runs(config: StudyConfig):
    """The study's runs as the memory model sees them (:mod:`experiments.common.memory`):
    a chain draws T rows of d + 1 numbers; a subsample chain keeps every row."""
    g = config.generations
    for d, t, _design, _ri, _ridge, kind in grid(config):
        sub = kind == "subsample"
        rows = t * (g + 1) if sub else t
        yield common.RunSize(
            ("subsample_chains", config.subsample_chains)
            if sub
            else ("num_chains", config.num_chains),
            ("generations", g),
            fields=len(FIELDS),
            elements=rows * (d + 1),
            elements_flag=("generations", g) if sub else ("sizes", f"{d}:{t}"),
            advice="use fewer generations or --subsample_chains (the subsample pool keeps "
            "every row)"
            if sub
            else "use smaller sizes or fewer chains (--chunk_chains)",
            state_floats=d + d * d,
            columns=40,
        )


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


Study = common.Study


def report_generations(g: int) -> list[int]:
    """Generations shown in the table: 1, 10, 100, ... below G, and G."""
    return common.report_generations(g, (1, 10, 100, 1000))


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
    with common.float64():
        return _run_study(config, progress)


def _run_study(config, progress: bool) -> Study:
    import jax.numpy as jnp

    from sim.chain import root_key
    from sim.families.regression import family_design
    from sim.regimes import Regime
    from sim.runners import default_w_star, run_regression

    g = config.generations
    dtype = jnp.float64 if config.x64 else jnp.float32
    root = root_key(config.seed, config.prng_impl)
    runs, rows = [], []
    for d, t, design, ri, ridge, kind in grid(config):
        regime = {
            "replace": Regime.replace,
            "accumulate": Regime.accumulate,
            "subsample": lambda t=t: Regime.subsample(budget(config, t)),
        }[kind]()
        label = run_label(d, t, design, ridge, regime.label)
        c = config.subsample_chains if kind == "subsample" else config.num_chains
        w_star = np.asarray(default_w_star(d))
        res = common.timed_run(
            run_regression,
            label,
            progress,
            key=run_key(root, d, t, design, ri, kind),
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
        )
        x = family_design(d, t, config.design_seed, dtype) if design == "fixed" else None
        run = Run(label, d, t, design, ridge, kind, regime.label, res, {}, w_star, x)
        with common.timing(res.timings, "theory_s"):
            run.theory = theory_curves(run, config.noise, g)
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
                dim=run.dim,
                num_samples=run.num_samples,
                design=run.design,
                ridge=run.ridge,
                regime=run.regime_label,
                generation=int(n),
            )
            common.moment_columns(row, res.moments, FIELDS, n)
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
