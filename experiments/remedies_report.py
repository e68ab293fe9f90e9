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
command line is :mod:`experiments.remedies`.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from experiments import common

KINDS = ("replace", "accumulate", "subsample", "fresh", "anchored")
KNOWN_KINDS = ("replace", "accumulate", "anchored")  # closed forms with sigma known
PARTS = ("regimes", "known", "categorical", "phase", "schedule", "verifier")
PART_TITLES = {
    "regimes": "side by side: Gaussian, mean and variance refitted",
    "known": "side by side: Gaussian, variance known (only the mean refitted)",
    "categorical": "side by side: categorical (Zipf)",
    "phase": "phase diagram: fresh data, long-run moments (F1)",
    "schedule": "sample-size schedules M_t = ceil(M0 t^p) (G6)",
    "verifier": "verification filter",
}
GAUSSIAN_FIELDS = ("mean", "log_var", "w2_squared", "tail_real", "collapsed", "train_size")
CATEGORICAL_FIELDS = ("support", "heterozygosity", "entropy", "tail_mass", "tv", "train_size")
# A no-op verifier computes the training statistics from the points
# x = mu + sigma z instead of the standardised z (sim.regimes, ops.points): the
# same chain up to float rounding, which grows as sigma/|mu| shrinks (measured
# at most 2.6e-4 in log sigma^2 at n=100, M=20, float32). A wrong engine
# (filtering, keys) moves chains by O(1).
IDENTITY_TOL = 1e-2


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """Everything that determines a remedies study's numbers (0 chains skips a part)."""

    # side by side, Gaussian
    regimes: tuple[str, ...] = KINDS
    estimator: str = "unbiased"
    method: str = "sample"
    sample_size: int = 20
    num_chains: int = 4000
    generations: int = 100
    subsample_chains: int = 1000
    fresh_alpha: float = 0.1
    anchor_lam: float = 0.5
    known_variance: bool = True
    tail_k: float = 2.0
    # side by side, categorical
    num_categories: int = 200
    zipf_beta: float = 1.1
    cat_sample_size: int = 200
    cat_chains: int = 256
    cat_generations: int = 100
    cat_subsample_chains: int = 128
    # phase diagram
    phase_alphas: tuple[float, ...] = (0.0, 0.02, 0.05, 0.1, 0.2, 0.5)
    phase_sample_sizes: tuple[int, ...] = (5, 20, 100)  # every distinct (M, R) compiles once
    phase_estimator: str = "mle"
    phase_chains: int = 2000
    phase_generations: int = 200
    # schedules
    schedule_powers: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0)
    schedule_m0: int = 20
    schedule_chains: int = 4000
    schedule_generations: int = 200
    # verifier
    verifier_k: float = 2.0
    verifier_accepts: tuple[str, ...] = ("1:0", "0.9:0.1")
    verifier_chains: int = 4000
    verifier_generations: int = 100
    verifier_good_ranks: int = 100
    # common
    seed: int = 0
    x64: bool = False
    false_failure_rate: float = 1e-3
    prng_impl: str = "philox4x32"
    chunk_chains: int | None = None


def parse_accept(text: str) -> tuple[float, float]:
    """``"good:bad"`` -> (accept_good, accept_bad), both probabilities."""
    parts = str(text).split(":")
    if len(parts) != 2:
        raise ValueError("write each as accept_good:accept_bad, e.g. 0.9:0.1")
    try:
        good, bad = (float(p) for p in parts)
    except ValueError:
        raise ValueError("not two numbers") from None
    if not (0 <= good <= 1 and 0 <= bad <= 1):
        raise ValueError("both must be probabilities in [0, 1]")
    return good, bad


def validate(config: StudyConfig) -> StudyConfig:
    """Raises ValueError('--flag=value: reason') for the first bad setting."""

    def bad(flag, value, why):
        raise ValueError(f"--{flag}={value}: {why}")

    for r in config.regimes:
        if r not in KINDS:
            bad("regimes", r, f"unknown regime (choose from {', '.join(KINDS)})")
    for name in ("estimator", "phase_estimator"):
        if getattr(config, name) not in ("mle", "unbiased"):
            bad(name, getattr(config, name), "choose mle or unbiased")
    if config.method not in ("sample", "exact"):
        bad("method", config.method, "choose sample or exact")
    if config.sample_size < 2:
        bad("sample_size", config.sample_size, "a variance needs M >= 2 samples")
    for name in (
        "num_chains",
        "subsample_chains",
        "cat_chains",
        "cat_subsample_chains",
        "phase_chains",
        "schedule_chains",
        "verifier_chains",
    ):
        if getattr(config, name) < 0:
            bad(name, getattr(config, name), "must be >= 0 (0 skips the part)")
    for name in (
        "generations",
        "cat_generations",
        "phase_generations",
        "schedule_generations",
        "verifier_generations",
    ):
        if getattr(config, name) < 1:
            bad(name, getattr(config, name), "need at least 1 generation")
    m = config.sample_size
    # The points path cannot draw 0 points (sim.regimes): keep both shares inside (0, 1).
    r = round_half_up(config.fresh_alpha * m)
    if not 0 < config.fresh_alpha < 1 or not 0 < r < m:
        bad("fresh_alpha", config.fresh_alpha, f"need 0 < round(alpha M) < M with M={m}")
    s = round_half_up(config.anchor_lam * m)
    if not 0 < config.anchor_lam < 1 or not 0 < s < m:
        bad("anchor_lam", config.anchor_lam, f"need 0 < round(lambda M) < M with M={m}")
    if not (config.tail_k >= 0 and math.isfinite(config.tail_k)):
        bad("tail_k", config.tail_k, "must be a finite number >= 0")
    if config.num_categories < 2:
        bad("num_categories", config.num_categories, "need at least 2 categories")
    if not (config.zipf_beta >= 0 and math.isfinite(config.zipf_beta)):
        bad("zipf_beta", config.zipf_beta, "must be a finite number >= 0")
    if config.cat_sample_size < 1:
        bad("cat_sample_size", config.cat_sample_size, "must be >= 1")
    if not config.phase_alphas:
        bad("phase_alphas", "", "give at least one alpha")
    for a in config.phase_alphas:
        if not (0 <= a < 1):
            bad("phase_alphas", a, "every alpha must be in [0, 1)")
    if not config.phase_sample_sizes:
        bad("phase_sample_sizes", "", "give at least one sample size")
    for mm in config.phase_sample_sizes:
        if mm < 2:
            bad("phase_sample_sizes", mm, "a variance needs M >= 2 samples")
    for a in config.phase_alphas:
        for mm in config.phase_sample_sizes:
            if round_half_up(a * mm) >= mm:
                bad("phase_alphas", a, f"round(alpha M) = M at M={mm}: no synthetic data left")
    if not config.schedule_powers:
        bad("schedule_powers", "", "give at least one power")
    for p in config.schedule_powers:
        if not (0 <= p <= 4):
            bad("schedule_powers", p, "every power must be in [0, 4]")
    if config.schedule_m0 < 2:
        bad("schedule_m0", config.schedule_m0, "M0 must be >= 2")
    for p in config.schedule_powers:
        top = math.ceil(config.schedule_m0 * config.schedule_generations**p)
        if top > 2**24:
            bad("schedule_powers", p, f"M_G = {top:.3g} exceeds 2^24 (exact float32 counts)")
    if not (config.verifier_k > 0 and math.isfinite(config.verifier_k)):
        bad("verifier_k", config.verifier_k, "must be a finite number > 0")
    for a in config.verifier_accepts:
        try:
            parse_accept(a)
        except ValueError as e:
            bad("verifier_accepts", a, str(e))
    if not 1 <= config.verifier_good_ranks <= config.num_categories:
        bad(
            "verifier_good_ranks",
            config.verifier_good_ranks,
            f"must be in [1, K={config.num_categories}]",
        )
    if not 0 < config.false_failure_rate < 1:
        bad("false_failure_rate", config.false_failure_rate, "must be in (0, 1)")
    if config.prng_impl not in ("philox4x32", "threefry2x32"):
        bad("prng_impl", config.prng_impl, "choose philox4x32 or threefry2x32")
    if config.chunk_chains is not None and config.chunk_chains < 1:
        bad("chunk_chains", config.chunk_chains, "must be >= 1")
    return config


@dataclasses.dataclass
class Run:
    """One simulated configuration and its theory curves (generations 0..G)."""

    label: str
    part: str  # one of PARTS
    family: str  # "gaussian" or "categorical"
    regime: object  # sim.regimes.Regime
    settings: dict  # sample_size, estimator, method, alpha_eff, ...
    result: object  # sim.parallel.SimulationResult
    theory: dict  # name -> float64 array over generations 0..G (NaN: no closed form)


@dataclasses.dataclass
class Study:
    config: object
    runs: list
    comparisons: list
    z_crit: float
    table: str
    env: dict
    phase: dict | None = None  # the grid's arrays and the F1 contour points

    @property
    def num_failed(self) -> int:
        return sum(r.verdict == common.FAIL for r in self.comparisons)

    def run(self, label: str) -> Run:
        return next(r for r in self.runs if r.label == label)

    def part(self, part: str) -> list:
        return [r for r in self.runs if r.part == part]


def round_half_up(x: float) -> int:
    """The simulator's rounding of alpha M and lambda M (``sim.regimes._round``)."""
    return int(math.floor(x + 0.5))


def report_generations(g: int) -> list[int]:
    """Generations shown in the table: 1, 10, 100, ... below G, and G."""
    return [n for n in (1, 10, 100, 1000, 10_000) if n < g] + [g]


def run_key(root, part: str, index: int):
    """A run's key depends on its part and its own settings (``index``) only."""
    import jax

    return jax.random.fold_in(jax.random.fold_in(root, PARTS.index(part)), index)


def make_regime(kind: str, config, sample_size: int):
    from sim.regimes import Regime

    return {
        "replace": lambda: Regime.replace(),
        "accumulate": lambda: Regime.accumulate(),
        "subsample": lambda: Regime.subsample(sample_size),
        "fresh": lambda: Regime.fresh(config.fresh_alpha),
        "anchored": lambda: Regime.anchored(config.anchor_lam),
    }[kind]()


def expected_train_size(kind: str, m: int, g: int) -> float:
    """Points in the training set of fit G (every chain): the regime's definition."""
    return float(g * m if kind == "accumulate" else m)


# ----------------------------------------------------------------------------- theory


def _nan(g: int) -> np.ndarray:
    return np.full(g + 1, np.nan)


def gaussian_theory(kind: str, g: int, m: int, est: str, *, alpha_eff=None):
    """Closed forms for the Gaussian chain under ``kind`` (sigma0 = 1), generations 0..G.

    Fit 1 sees M real points in every regime, so the replace chain's values at
    n <= 1 hold for all of them; past that, subsample and anchored (both
    refitted) have no closed form (NaN).
    """
    import jax.numpy as jnp

    from theory import gaussian as tg
    from theory import mixing as tm

    n = np.arange(g + 1)
    nj = jnp.asarray(n, jnp.float64)
    rep = dict(
        log_var_mean=tg.log_variance_mean(nj, m, est),
        log_var_var=tg.log_variance_var(nj, m),
        var_mean=tg.expected_variance(nj, m, est),
        mean_var=tg.mean_variance(nj, m, est),
        w2_mean=tg.expected_w2_squared(nj, m, est),
        variance_cv2=tg.variance_cv2(nj, m),
    )
    rep = {k: np.asarray(v, np.float64) for k, v in rep.items()}
    if kind == "replace":
        return rep
    out = {k: np.where(n <= 1, rep[k], np.nan) for k in ("var_mean", "mean_var")}
    if kind == "accumulate":
        res = tm.accumulate_moments(n, m, est)
        out = dict(var_mean=res.expected_variance, mean_var=res.mean_variance)
    elif kind == "fresh":
        res = tm.fresh_fraction_variance(nj, m, alpha_eff, est, mixing="fixed")
        fp = tm.fresh_fraction_fixed_point(m, alpha_eff, est, mixing="fixed")
        out = dict(
            var_mean=res.expected_variance,
            mean_var=res.mean_variance,
            var_fixed_point=np.full(g + 1, float(fp.expected_variance)),
            mean_var_fixed_point=np.full(g + 1, float(fp.mean_variance)),
        )
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def known_variance_theory(kind: str, g: int, m: int, *, lam_eff=None) -> dict:
    """Var(mu_n) with sigma = sigma0 = 1 known: G5 (replace), L3, F3."""
    import jax.numpy as jnp

    from theory import gaussian as tg
    from theory import mixing as tm

    n = np.arange(g + 1)
    if kind == "replace":  # mu_{t+1} = mu_t + Z/sqrt(M): G5 with r = 1
        v = tg.mean_variance(jnp.asarray(n, jnp.float64), m, "unbiased")
    elif kind == "accumulate":
        v = tm.accumulate_mean_variance(n, m)
    else:
        v = tm.anchored_mean(n, m, lam_eff).variance
    return dict(mean_var=np.asarray(v, np.float64))


def schedule_theory(g: int, sizes: np.ndarray, est: str) -> dict:
    """G6 with the schedule, and the squared CV of sigma_n^2 (measurability)."""
    from theory import mixing as tm

    n = np.arange(g + 1)
    w2 = tm.schedule_w2(n, sizes, est)
    # sigma_n^2 = prod_t G_t, E[G_t^2]/E[G_t]^2 = (M_t + 1)/(M_t - 1) for either divisor.
    log_ratio = np.log1p(2.0 / (sizes.astype(np.float64) - 1.0))
    cv2 = np.expm1(np.concatenate([[0.0], np.cumsum(log_ratio)]))
    return dict(
        w2_mean=np.asarray(w2.total, np.float64),
        w2_mean_part=np.asarray(w2.mean_part, np.float64),
        w2_std_part=np.asarray(w2.std_part, np.float64),
        variance_cv2=cv2[: g + 1],
        inv_size_sum=np.concatenate([[0.0], np.cumsum(1.0 / sizes)])[: g + 1],
    )


def first_filter_acceptance(m: int, est: str, k: float) -> float:
    r"""P(a draw of fit 1 lands within k sigma0 of mu0), averaged over fit 1.

    Fit 1 is fitted to M real points: :math:`\mu_1 \sim N(0, 1/M)` and
    :math:`\sigma_1^2 = \chi^2_{M-1}/c` independent (sigma0 = 1). Given
    :math:`\sigma_1`, a draw :math:`\mu_1 + \sigma_1 Z` is
    :math:`N(0, \sigma_1^2 + 1/M)`, so the probability is
    :math:`\mathbb{E}[\operatorname{erf}(k/\sqrt{2(\sigma_1^2 + 1/M)})]`, a
    one-dimensional integral over :math:`y = \chi^2_{M-1}/2 \sim
    \mathrm{Gamma}(a = (M-1)/2)`, computed by the trapezoid rule in
    :math:`u = \log y` (smooth, doubly exponentially decaying integrand:
    error far below the Monte-Carlo error).
    """
    c = m if est == "mle" else m - 1
    a = 0.5 * (m - 1)
    lo = math.log(a) - 40.0 / a - 2.0
    hi = math.log(a + 60.0 + 12.0 * math.sqrt(a))
    u = np.linspace(lo, hi, 40_001)
    y = np.exp(u)
    w = np.exp(a * u - y - math.lgamma(a))
    s2 = 2.0 * y / c
    g = np.frompyfunc(math.erf, 1, 1)(k / np.sqrt(2.0 * (s2 + 1.0 / m))).astype(np.float64)
    h = u[1] - u[0]
    total = h * (w.sum() - 0.5 * (w[0] + w[-1]))
    num = h * ((w * g).sum() - 0.5 * (w[0] * g[0] + w[-1] * g[-1]))
    if abs(total - 1.0) > 1e-9:
        raise RuntimeError(f"quadrature of the chi-square density gave {total!r}, not 1")
    return float(num / total)


# ----------------------------------------------------------------------------- comparisons


def _row(run, statistic, n, empirical, se, theory, testable=True, note="", resolution=0.0):
    theory = float(theory)
    if not math.isfinite(theory):
        testable = False
        note = note or "no closed form: measured only"
    return common.Comparison(
        config=run.label,
        statistic=statistic,
        generation=int(n),
        empirical=float(empirical),
        se=float(se),
        theory=theory,
        testable=testable,
        note=note,
        resolution=resolution,
    )


def chain_variances(run, n: int) -> np.ndarray:
    """Per-chain sigma_n^2 (float64) from the snapshots."""
    res = run.result
    j = int(np.flatnonzero(res.snapshot_generations == n)[0])
    return np.exp(res.snapshots["log_var"][j].astype(np.float64))


def variance_curve(run):
    """(generations, mean, sem) of sigma_n^2 over the run's snapshots."""
    res = run.result
    s2 = np.exp(res.snapshots["log_var"].astype(np.float64))
    return res.snapshot_generations, s2.mean(1), s2.std(1, ddof=1) / math.sqrt(s2.shape[1])


def _measurable(run, n: int, s2: np.ndarray, c: int):
    """Whether cross-chain means at n can be tested, and why not.

    With a closed-form CV (replace, schedules) as in the Gaussian experiment;
    otherwise from the empirical squared CV of sigma_n^2 (a guard only: a
    heavy tail hides from its own sample).
    """
    cv2 = run.theory.get("variance_cv2")
    if cv2 is not None:
        ok = common.mean_is_measurable(float(cv2[n]), c)
        return ok, "" if ok else "heavy tail: mean not measurable with this many chains"
    emp = float(s2.var() / s2.mean() ** 2) if s2.size > 1 and s2.mean() > 0 else math.inf
    ok = common.mean_is_measurable(emp, c)
    return ok, "" if ok else f"heavy tail (empirical CV^2 {emp:.3g}): not tested"


def compare_gaussian(run: Run) -> list:
    """Moments of the Gaussian chain under a regime at the report generations."""
    res, th = run.result, run.theory
    c, g = res.num_chains, len(res.generations) - 1
    mom = res.moments
    rows = []
    for n in report_generations(g):
        s2 = chain_variances(run, n)
        ok, why = _measurable(run, n, s2, c)
        if "log_var_mean" in th:
            lv = mom["log_var"]
            rows.append(
                _row(run, "E[log s2] (G3)", n, lv.mean[n], lv.sem[n], th["log_var_mean"][n])
            )
            rows.append(
                _row(run, "Var[log s2] (G3)", n, lv.var[n], lv.var_se[n], th["log_var_var"][n])
            )
        src = {"replace": "G2", "accumulate": "accumulate", "fresh": "F1"}.get(run.settings["kind"])
        tag = f" ({src})" if src else " (fit 1 real)" if n <= 1 else ""
        rows.append(
            _row(
                run,
                f"E[s2]{tag}",
                n,
                s2.mean(),
                s2.std(ddof=1) / math.sqrt(c),
                th["var_mean"][n],
                ok,
                why,
            )
        )
        mu = mom["mean"]
        rows.append(
            _row(run, f"Var[mu]{tag}", n, mu.var[n], mu.var_se[n], th["mean_var"][n], ok, why)
        )
        if "w2_mean" in th:
            w2 = mom["w2_squared"]
            rows.append(
                _row(run, "E[W2^2] (G6)", n, w2.mean[n], w2.sem[n], th["w2_mean"][n], ok, why)
            )
    rows.append(train_size_row(run, g))
    return rows


def train_size_row(run: Run, g: int):
    """Every chain's last training set has the regime's size: mean + sd equals it.

    The cross-chain moments of a constant are exact up to a few ulps of the
    record's float type (the block means are float32 divisions), hence the
    resolution of 16 ulps.
    """
    ts = run.result.moments["train_size"]
    m = run.settings["sample_size"]
    expected = expected_train_size(run.settings["kind"], m, g)
    return _row(
        run,
        "train size at G (mean + sd)",
        g,
        ts.mean[g] + math.sqrt(max(ts.m2[g], 0.0)),
        0.0,
        expected,
        note="deterministic",
        resolution=16 * record_eps(run) * max(1.0, expected),
    )


def compare_known(run: Run) -> list:
    res, th = run.result, run.theory
    g = len(res.generations) - 1
    src = {"replace": "G5", "accumulate": "L3", "anchored": "F3"}[run.settings["kind"]]
    mu = res.moments["mean"]
    rows = [
        _row(run, f"Var[mu] ({src}, sigma known)", n, mu.var[n], mu.var_se[n], th["mean_var"][n])
        for n in report_generations(g)
    ]
    rows.append(train_size_row(run, g))
    return rows


def record_eps(run: Run) -> float:
    """The machine epsilon of the run's float type (float32 unless --x64)."""
    params = run.result.final.params
    leaf = params.probs if run.family == "categorical" else params.log_var
    return float(np.finfo(leaf.dtype).eps)


def categorical_resolution(run: Run) -> float:
    """Rounding of recorded values in the run's float type (16 ulps of 1)."""
    return 16 * record_eps(run)


def compare_categorical(run: Run) -> list:
    """D1/D3 for replace; the tail-mass martingale for every regime."""
    res, th = run.result, run.theory
    c, g = res.num_chains, len(res.generations) - 1
    eps = categorical_resolution(run)
    rows = []
    for n in report_generations(g):
        tm_ = res.moments["tail_mass"]
        rows.append(
            _row(
                run,
                "E[tail mass] (martingale)",
                n,
                tm_.mean[n],
                tm_.sem[n],
                th["tail_mass"][n],
                resolution=eps,
            )
        )
        sup = res.moments["support"]
        se = sup.sem[n]
        if "support_var_indep" in th:  # a floor where no chain varies (categorical_report)
            se = max(se, math.sqrt(th["support_var_indep"][n] / c))
        rows.append(
            _row(
                run,
                "E[support] (D3)",
                n,
                sup.mean[n],
                se,
                th["support"][n],
                resolution=eps * max(1.0, th["support"][n])
                if math.isfinite(th["support"][n])
                else 0,
            )
        )
        h = res.moments["heterozygosity"]
        rows.append(
            _row(run, "E[H] (D1)", n, h.mean[n], h.sem[n], th["heterozygosity"][n], resolution=eps)
        )
    rows.append(train_size_row(run, g))
    return rows


def compare_phase(run: Run) -> list:
    """E[sigma_G^2] and Var(mu_G) of one (M, R) cell against F1."""
    res, th = run.result, run.theory
    c, g = res.num_chains, len(res.generations) - 1
    s2 = np.exp(res.final.params.log_var.astype(np.float64))
    ok, why = _measurable(run, g, s2, c)
    mu = res.moments["mean"]
    return [
        _row(
            run,
            "E[s2] (F1)",
            g,
            s2.mean(),
            s2.std(ddof=1) / math.sqrt(c),
            th["var_mean"][g],
            ok,
            why,
        ),
        _row(run, "Var[mu] (F1)", g, mu.var[g], mu.var_se[g], th["mean_var"][g], ok, why),
    ]


def compare_schedule(run: Run) -> list:
    """E[W2^2] and its two parts against G6 with the schedule."""
    res, th = run.result, run.theory
    c, g = res.num_chains, len(res.generations) - 1
    rows = []
    for n in report_generations(g):
        ok, why = _measurable(run, n, np.ones(1), c)
        w2 = res.moments["w2_squared"]
        note = why or f"sum 1/M_t = {th['inv_size_sum'][n]:.3g}"
        rows.append(_row(run, "E[W2^2] (G6)", n, w2.mean[n], w2.sem[n], th["w2_mean"][n], ok, note))
        mu = res.moments["mean"]
        rows.append(
            _row(
                run,
                "Var[mu] (G6 mean part)",
                n,
                mu.var[n],
                mu.var_se[n],
                th["w2_mean_part"][n],
                ok,
                why,
            )
        )
        part = (np.sqrt(chain_variances(run, n)) - 1.0) ** 2
        rows.append(
            _row(
                run,
                "E[(s-1)^2] (G6 std part)",
                n,
                part.mean(),
                part.std(ddof=1) / math.sqrt(c),
                th["w2_std_part"][n],
                ok,
                why,
            )
        )
    return rows


def _snapshot(res, field: str, n: int) -> np.ndarray:
    j = int(np.flatnonzero(res.snapshot_generations == n)[0])
    return res.snapshots[field][j]


def compare_verifier(run: Run, plain: Run) -> list:
    """Tested: fit 2's expected training-set size; a no-op filter changes nothing; a
    filter that keeps no bad point leaves no fit outside the good set. Reported
    (not tested): the effect on collapse, tails and support at G."""
    res, th = run.result, run.theory
    s = run.settings
    g = len(res.generations) - 1
    m = s["sample_size"]
    rows = []
    if s.get("accept") is None:  # the plain chain: the replace theory where it exists
        if run.family == "gaussian":
            lv = res.moments["log_var"]
            for n in report_generations(g):
                rows.append(
                    _row(run, "E[log s2] (G3)", n, lv.mean[n], lv.sem[n], th["log_var_mean"][n])
                )
        return rows
    good, bad = s["accept"]
    ts = res.moments["train_size"]
    if g >= 2:
        rows.append(
            _row(
                run,
                "E[train size] fit 2 (exact integral)",
                2,
                ts.mean[2],
                ts.sem[2],
                th["train_size"][2],
                note=f"P(good draw) = {s['p_good']:.5g}",
                resolution=16 * m * float(np.finfo(np.float32).eps),
            )
        )
    if (good, bad) == (1.0, 1.0):
        off = np.zeros(res.num_chains, bool)
        if run.family == "gaussian":
            for n in report_generations(g):
                for f in ("log_var", "mean"):
                    d = np.abs(_snapshot(res, f, n) - _snapshot(plain.result, f, n))
                    off |= ~(d <= IDENTITY_TOL)
        else:
            off = np.any(res.final.params.probs != plain.result.final.params.probs, axis=-1)
        rows.append(
            _row(
                run,
                "chains off plain replace (no-op)",
                g,
                off.mean(),
                0.0,
                0.0,
                note="same keys; tolerance "
                + (f"{IDENTITY_TOL:g}" if run.family == "gaussian" else "0 (bitwise)"),
            )
        )
    if bad == 0.0 and g >= 2:
        if run.family == "gaussian":
            k = s["k"]
            gens = [n for n in report_generations(g) if n >= 2]
            worst = max(float(np.max(np.abs(_snapshot(res, "mean", n)))) for n in gens)
            rows.append(
                _row(
                    run,
                    "max |mu| over chains, n>=2 <= k",
                    g,
                    worst,
                    0.0,
                    min(worst, k),
                    note=f"bound k={k:g} sigma0 (only good points are kept)",
                )
            )
        else:
            worst = float(np.max(res.final.params.probs[:, ~s["good_mask"]].sum(-1)))
            rows.append(_row(run, "max mass on bad tokens at G", g, worst, 0.0, 0.0))
    # Measured effects at G, beside the plain chain's.
    fields = (
        (("log_var", "E[log s2]"), ("tail_real", "E[tail_real]"))
        if run.family == "gaussian"
        else (("support", "E[support]"), ("tail_mass", "E[tail mass]"), ("heterozygosity", "E[H]"))
    )
    for f, name in fields:
        mo, ref = res.moments[f], plain.result.moments[f]
        rows.append(
            _row(
                run,
                f"{name} at G",
                g,
                mo.mean[g],
                mo.sem[g],
                math.nan,
                note=f"measured; plain replace {ref.mean[g]:.4g} +- {ref.sem[g]:.2g}",
            )
        )
    rows.append(
        _row(
            run,
            "E[train size]/M at G",
            g,
            ts.mean[g] / m,
            ts.sem[g] / m,
            math.nan,
            note="measured",
        )
    )
    return rows


# ----------------------------------------------------------------------------- the study


def format_sections(sections, z_crit: float) -> str:
    """One table, a section per part (each with its own header)."""
    lines = []
    every = []
    for title, rows in sections:
        if not rows:
            continue
        every += rows
        lines.append(f"== {title}")
        lines += common.format_table(rows, z_crit).splitlines()[:-1]
        lines.append("")
    lines.append(common.format_table(every, z_crit).splitlines()[-1])
    return "\n".join(lines)


def vocabulary(config):
    from sim.families.categorical import Vocabulary

    return Vocabulary.zipf(config.num_categories, config.zipf_beta)


@dataclasses.dataclass
class _Context:
    """What every part of a study shares: settings, root key, the runs so far."""

    config: object
    root: object  # the root PRNG key
    progress: bool
    common_kw: dict  # dtype, chunk_chains, progress of every run
    runs: list
    sections: dict  # part -> comparison rows

    def simulate(self, runner, label, key, c, g, **kw):
        """One call of ``runner`` (run_gaussian / run_categorical), timed."""
        if self.progress:
            print(f"[{label}] {c:,} chains x {g:,} generations", flush=True)
        import jax

        t = time.perf_counter()
        # The theory needs float64 (x64 is on for the process), but a float32 study
        # simulates with x64 off: sim draws some internal numbers in the default float
        # type, and float64 there made subsample 15-25x slower (lax.top_k on float64
        # keys on CPU).
        with jax.enable_x64(bool(self.config.x64)):
            res = runner(
                key, num_chains=c, num_generations=g, progress_desc=label, **kw, **self.common_kw
            )
        res.timings["simulate_s"] = time.perf_counter() - t
        if self.progress:
            print(
                f"[{label}] simulated in {res.timings['simulate_s']:.1f} s (first call incl. "
                f"compile {res.timings['first_call_s']:.1f} s)",
                flush=True,
            )
        return res

    def add(self, run: Run, rows: list) -> None:
        run.result.timings.setdefault("theory_s", 0.0)
        self.runs.append(run)
        self.sections[run.part] += rows

    def categorical_kw(self, vocab) -> dict:
        """run_categorical's settings shared by the side-by-side and verifier runs (the
        same snapshot shapes, so that equal steps reuse one compiled program)."""
        from sim.metrics import default_bucket_edges

        k = vocab.num_categories
        return dict(
            vocabulary=vocab,
            sample_size=self.config.cat_sample_size,
            tail_rank=max(1, k // 10),
            bucket_edges=default_bucket_edges(k),
            snapshot_generations=tuple(report_generations(self.config.cat_generations)),
        )


def run_study(config, progress: bool = True) -> Study:
    """Simulates every part of ``config`` and compares with theory."""
    import jax

    jax.config.update("jax_enable_x64", True)  # theory in float64; sim dtype is explicit
    common.enable_compilation_cache()
    import jax.numpy as jnp

    dtype = jnp.float64 if config.x64 else jnp.float32
    ctx = _Context(
        config,
        jax.random.key(config.seed, impl=config.prng_impl),
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
    z_crit = common.judge_all(rows, config.false_failure_rate)
    titles = [(section_title(p, config), ctx.sections[p]) for p in PARTS]
    return Study(
        config,
        ctx.runs,
        rows,
        z_crit,
        format_sections(titles, z_crit),
        common.environment(),
        phase,
    )


def side_by_side_gaussian(ctx: _Context) -> None:
    """Every regime, mean and variance refitted; snapshots of log sigma^2 at every n."""
    from sim.runners import run_gaussian

    config = ctx.config
    m, est, g = config.sample_size, config.estimator, config.generations
    alpha_eff = round_half_up(config.fresh_alpha * m) / m
    for kind in config.regimes:
        sub = kind == "subsample"
        method = "sample" if sub else config.method  # a pool of points needs points
        c = config.subsample_chains if sub else config.num_chains
        if c == 0:
            continue
        regime = make_regime(kind, config, m)
        label = f"G {kind}"
        res = ctx.simulate(
            run_gaussian,
            label,
            run_key(ctx.root, "regimes", KINDS.index(kind)),
            c,
            g,
            sample_size=m,
            estimator=est,
            method=method,
            regime=regime,
            tail_k=config.tail_k,
            snapshot_generations=tuple(range(g + 1)),
            snapshot_fields=("log_var",),
        )
        t = time.perf_counter()
        th = gaussian_theory(kind, g, m, est, alpha_eff=alpha_eff)
        res.timings["theory_s"] = time.perf_counter() - t
        settings = dict(kind=kind, sample_size=m, estimator=est, method=method)
        if kind == "fresh":
            settings["alpha_eff"] = alpha_eff
        run = Run(label, "regimes", "gaussian", regime, settings, res, th)
        ctx.add(run, compare_gaussian(run))


def known_variance_runs(ctx: _Context) -> None:
    """Replace, accumulate and anchored with sigma = sigma0 known (G5, L3, F3)."""
    from sim.runners import run_gaussian

    config = ctx.config
    m, g = config.sample_size, config.generations
    lam_eff = round_half_up(config.anchor_lam * m) / m
    for kind in (k for k in config.regimes if k in KNOWN_KINDS):
        regime = make_regime(kind, config, m)
        label = f"Gk {kind}"
        res = ctx.simulate(
            run_gaussian,
            label,
            run_key(ctx.root, "known", KINDS.index(kind)),
            config.num_chains,
            g,
            sample_size=m,
            estimator=config.estimator,
            method=config.method,
            regime=regime,
            known_variance=1.0,
            tail_k=config.tail_k,
            snapshot_fields=(),
        )
        th = known_variance_theory(kind, g, m, lam_eff=lam_eff)
        settings = dict(kind=kind, sample_size=m, method=config.method, known_variance=1.0)
        run = Run(label, "known", "gaussian", regime, settings, res, th)
        ctx.add(run, compare_known(run))


def side_by_side_categorical(ctx: _Context) -> None:
    """Every regime on the Zipf vocabulary; D1/D3 for replace, the martingale for all."""
    from experiments.categorical_report import main_theory
    from sim.runners import run_categorical

    config = ctx.config
    vocab = vocabulary(config)
    kw = ctx.categorical_kw(vocab)
    k, m, g = vocab.num_categories, config.cat_sample_size, config.cat_generations
    tail_rank = kw["tail_rank"]
    p0_tail = float(np.sort(vocab.probs)[::-1][tail_rank:].sum())
    for kind in config.regimes:
        c = config.cat_subsample_chains if kind == "subsample" else config.cat_chains
        if c == 0:
            continue
        regime = make_regime(kind, config, m)
        label = f"C {kind}"
        res = ctx.simulate(
            run_categorical,
            label,
            run_key(ctx.root, "categorical", KINDS.index(kind)),
            c,
            g,
            regime=regime,
            **kw,
        )
        t = time.perf_counter()
        if kind == "replace":
            full = main_theory(vocab, m, g, kw["bucket_edges"], tail_rank)
            th = {n: full[n] for n in ("support", "support_var_indep", "heterozygosity")}
        else:
            th = dict(support=_nan(g), heterozygosity=_nan(g))
            th["support"][0] = k
        th["tail_mass"] = np.full(g + 1, p0_tail)
        res.timings["theory_s"] = time.perf_counter() - t
        settings = dict(kind=kind, sample_size=m, vocabulary=vocab.name)
        run = Run(label, "categorical", "categorical", regime, settings, res, th)
        ctx.add(run, compare_categorical(run))


def schedules(ctx: _Context) -> None:
    """The replace chain with M_t = ceil(M0 t^p), exact draws (sizes change with t)."""
    from sim.regimes import Regime
    from sim.runners import run_gaussian
    from theory import mixing as tm

    config = ctx.config
    est, g, m0 = config.estimator, config.schedule_generations, config.schedule_m0
    for p in config.schedule_powers:
        sizes = np.asarray(tm.power_schedule(g, m0, p)).astype(np.int64)
        regime = Regime.replace(schedule=tuple(int(x) for x in sizes))
        label = f"sched p={p:g}"
        res = ctx.simulate(
            run_gaussian,
            label,
            run_key(ctx.root, "schedule", round(p * 1000)),
            config.schedule_chains,
            g,
            sample_size=m0,
            estimator=est,
            method="exact",
            regime=regime,
            tail_k=config.tail_k,
            snapshot_generations=tuple(report_generations(g)),
            snapshot_fields=("log_var",),
        )
        t = time.perf_counter()
        th = schedule_theory(g, sizes.astype(np.float64), est)
        res.timings["theory_s"] = time.perf_counter() - t
        settings = dict(kind="replace", power=p, m0=m0, estimator=est, sizes=sizes)
        run = Run(label, "schedule", "gaussian", regime, settings, res, th)
        ctx.add(run, compare_schedule(run))


def verifier_settings(config) -> list[tuple[float, float]]:
    """(accept_good, accept_bad) pairs: the no-op (1, 1) first, no repeats."""
    pairs = [(1.0, 1.0)] + [parse_accept(a) for a in config.verifier_accepts]
    return list(dict.fromkeys(pairs))


def verifier_gaussian(ctx: _Context) -> None:
    """Replace with points, unfiltered and filtered, all on one key (common random
    numbers: a no-op filter must then give the very same chains)."""
    from sim.regimes import Regime, gaussian_verifier
    from sim.runners import run_gaussian

    config = ctx.config
    m, est, g, k = (
        config.sample_size,
        config.estimator,
        config.verifier_generations,
        config.verifier_k,
    )
    c = config.verifier_chains
    key = run_key(ctx.root, "verifier", 0)
    kw = dict(
        sample_size=m,
        estimator=est,
        method="sample",
        tail_k=config.tail_k,
        snapshot_generations=tuple(report_generations(g)),
        snapshot_fields=("log_var", "mean"),
    )
    res = ctx.simulate(run_gaussian, "vG plain", key, c, g, regime=Regime.replace(), **kw)
    settings = dict(kind="replace", sample_size=m, accept=None)
    th = gaussian_theory("replace", g, m, est)
    plain = Run("vG plain", "verifier", "gaussian", Regime.replace(), settings, res, th)
    ctx.add(plain, compare_verifier(plain, plain))
    p_good = first_filter_acceptance(m, est, k)
    for good, bad in verifier_settings(config):
        regime = Regime.replace(
            verifier=gaussian_verifier(0.0, 1.0, k, accept_good=good, accept_bad=bad)
        )
        label = f"vG {good:g}-{bad:g}"
        res = ctx.simulate(run_gaussian, label, key, c, g, regime=regime, **kw)
        ts = np.full(g + 1, m * (good * p_good + bad * (1 - p_good)))
        ts[:2] = (0.0, m)  # fit 1 sees real data, never filtered
        settings = dict(kind="replace", sample_size=m, accept=(good, bad), k=k, p_good=p_good)
        run = Run(label, "verifier", "gaussian", regime, settings, res, dict(train_size=ts))
        ctx.add(run, compare_verifier(run, plain))


def verifier_categorical(ctx: _Context) -> None:
    """Tokens of the top ``verifier_good_ranks`` ranks are good; one key for all runs."""
    from sim.regimes import Regime, categorical_verifier
    from sim.runners import run_categorical

    config = ctx.config
    vocab = vocabulary(config)
    kw = ctx.categorical_kw(vocab)
    m, g, c = config.cat_sample_size, config.cat_generations, config.cat_chains
    key = run_key(ctx.root, "verifier", 1)
    min_prob = float(np.sort(vocab.probs)[::-1][config.verifier_good_ranks - 1])
    good_mask = vocab.probs >= min_prob
    mass_good = float(vocab.probs[good_mask].sum())
    res = ctx.simulate(run_categorical, "vC plain", key, c, g, regime=Regime.replace(), **kw)
    settings = dict(kind="replace", sample_size=m, accept=None)
    plain = Run("vC plain", "verifier", "categorical", Regime.replace(), settings, res, {})
    ctx.add(plain, compare_verifier(plain, plain))
    for good, bad in verifier_settings(config):
        regime = Regime.replace(
            verifier=categorical_verifier(vocab, min_prob, accept_good=good, accept_bad=bad)
        )
        label = f"vC {good:g}-{bad:g}"
        res = ctx.simulate(run_categorical, label, key, c, g, regime=regime, **kw)
        # E[p_1] = p0 (fit 1 is the real sample's frequencies), so the expected
        # number kept at fit 2 is M sum_i p0_i accept(i), exactly.
        ts = np.full(g + 1, m * (good * mass_good + bad * (1 - mass_good)))
        ts[:2] = (0.0, m)
        settings = dict(
            kind="replace",
            sample_size=m,
            accept=(good, bad),
            p_good=mass_good,
            good_mask=good_mask,
            min_prob=min_prob,
        )
        run = Run(label, "verifier", "categorical", regime, settings, res, dict(train_size=ts))
        ctx.add(run, compare_verifier(run, plain))


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


def phase_cells(config):
    """Distinct (M, R) cells of the grid, and each nominal cell's (M, R)."""
    grid = {}
    for m in config.phase_sample_sizes:
        for a in config.phase_alphas:
            grid[(m, a)] = (m, round_half_up(a * m))
    return sorted(set(grid.values())), grid


def run_phase(ctx: _Context) -> dict:
    """The fresh-data grid: one run per distinct (M, R); arrays for the heatmaps."""
    import jax.numpy as jnp

    from sim.regimes import Regime
    from sim.runners import run_gaussian
    from theory import mixing as tm

    config = ctx.config
    est, g, c = config.phase_estimator, config.phase_generations, config.phase_chains
    cells, grid = phase_cells(config)
    n = np.arange(g + 1)
    stats = {}
    for m, r in cells:
        alpha_eff = r / m
        # alpha = 0 is the replace chain (the points path cannot draw 0 real points).
        regime = Regime.fresh(alpha_eff) if r else Regime.replace()
        label = f"ph M={m} a={alpha_eff:.3g}"
        res = ctx.simulate(
            run_gaussian,
            label,
            run_key(ctx.root, "phase", (m * 100_003 + r) % (2**31 - 1)),
            c,
            g,
            sample_size=m,
            estimator=est,
            method=config.method,
            regime=regime,
            snapshot_fields=(),
            tail_k=config.tail_k,
        )
        t = time.perf_counter()
        fr = tm.fresh_fraction_variance(jnp.asarray(n, jnp.float64), m, alpha_eff, est)
        fp = tm.fresh_fraction_fixed_point(m, alpha_eff, est)
        th = dict(
            var_mean=np.asarray(fr.expected_variance, np.float64),
            mean_var=np.asarray(fr.mean_variance, np.float64),
            var_fixed_point=np.full(g + 1, float(fp.expected_variance)),
            mean_var_fixed_point=np.full(g + 1, float(fp.mean_variance)),
        )
        if r == 0:
            from theory import gaussian as tg

            th["variance_cv2"] = np.asarray(tg.variance_cv2(jnp.asarray(n, jnp.float64), m))
        res.timings["theory_s"] = time.perf_counter() - t
        settings = dict(kind="fresh", sample_size=m, real=r, alpha_eff=alpha_eff, estimator=est)
        run = Run(label, "phase", "gaussian", regime, settings, res, th)
        ctx.add(run, compare_phase(run))
        s2 = np.exp(res.final.params.log_var.astype(np.float64))
        stats[(m, r)] = (
            s2.mean(),
            s2.std(ddof=1) / math.sqrt(c),
            res.moments["mean"].var[g],
            th["var_mean"][g],
            th["mean_var"][g],
        )
    alphas, ms = tuple(config.phase_alphas), tuple(config.phase_sample_sizes)
    shape = (len(ms), len(alphas))
    out = {
        k: np.zeros(shape)
        for k in ("var_mean", "var_sem", "mean_var", "theory_var", "theory_mean_var", "alpha_eff")
    }
    for i, m in enumerate(ms):
        for j, a in enumerate(alphas):
            mm, r = grid[(m, a)]
            v = stats[(mm, r)]
            for name, x in zip(
                ("var_mean", "var_sem", "mean_var", "theory_var", "theory_mean_var"), v, strict=True
            ):
                out[name][i, j] = x
            out["alpha_eff"][i, j] = r / m
    # F1 fixed point on every valid (R/M, M) with M between the grid's ends: contour points.
    mm, rr = [], []
    top = max(alphas) + 0.5 * (max(alphas) - min(alphas)) / max(len(alphas) - 1, 1)
    for m in range(min(ms), max(ms) + 1):
        for r in range(0, m):
            if r / m <= max(top, 1.0 / m):
                mm.append(m)
                rr.append(r)
    mm, rr = np.asarray(mm, np.float64), np.asarray(rr, np.float64)
    fp = tm.fresh_fraction_fixed_point(mm, rr / mm, est)
    out.update(
        alphas=np.asarray(alphas),
        sample_sizes=np.asarray(ms),
        estimator=est,
        generations=g,
        contour_m=mm,
        contour_alpha=rr / mm,
        contour_var=np.asarray(fp.expected_variance, np.float64),
        contour_mean_var=np.asarray(fp.mean_variance, np.float64),
    )
    return out


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
            for f in fields:
                mo = res.moments[f]
                row[f"{f}_mean"] = mo.mean[n]
                row[f"{f}_sem"] = mo.sem[n]
                row[f"{f}_var"] = mo.var[n]
            if curve is not None:
                row["var_mean"], row["var_sem"] = curve.get(int(n), ("", ""))
            for name, v in th.items():
                v = np.asarray(v)
                if v.ndim == 1 and v.shape[0] == len(res.generations):
                    row[f"theory_{name}"] = v[n]
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
