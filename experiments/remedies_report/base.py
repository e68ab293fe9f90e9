"""What the parts of the remedies study share: runs, the study, the run context, helpers."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from experiments import common
from experiments.remedies_report.config import KINDS, StudyConfig  # noqa: F401

PARTS = ("regimes", "known", "categorical", "phase", "schedule", "verifier")


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

    def variance_curve(self):
        """(generations, mean, sem) of sigma_n^2 over the run's snapshots."""
        return variance_curve(self)


@dataclasses.dataclass
class Study(common.Study):
    """The remedies study: :class:`experiments.common.Study` plus the phase grid."""

    phase: dict | None = None  # the grid's arrays and the F1 contour points


def report_generations(g: int) -> list[int]:
    """Generations shown in the table: 1, 10, 100, ... below G, and G."""
    return common.report_generations(g)


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


def nan_curve(g: int) -> np.ndarray:
    return np.full(g + 1, np.nan)


def comparison(run, statistic, n, empirical, se, theory, testable=True, note="", resolution=0.0):
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


def measurable(run, n: int, s2: np.ndarray, c: int):
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


def train_size_row(run: Run, g: int):
    """Every chain's last training set has the regime's size: mean + sd equals it.

    The cross-chain moments of a constant are exact up to a few ulps of the
    record's float type (the block means are float32 divisions), hence the
    resolution of 16 ulps.
    """
    ts = run.result.moments["train_size"]
    m = run.settings["sample_size"]
    expected = expected_train_size(run.settings["kind"], m, g)
    return comparison(
        run,
        "train size at G (mean + sd)",
        g,
        ts.mean[g] + math.sqrt(max(ts.m2[g], 0.0)),
        0.0,
        expected,
        note="deterministic",
        resolution=16 * record_eps(run) * max(1.0, expected),
    )


def record_eps(run: Run) -> float:
    """The machine epsilon of the run's float type (float32 unless --x64)."""
    params = run.result.final.params
    leaf = params.probs if run.family == "categorical" else params.log_var
    return float(np.finfo(leaf.dtype).eps)


def categorical_resolution(run: Run) -> float:
    """Rounding of recorded values in the run's float type (16 ulps of 1)."""
    return 16 * record_eps(run)


def snapshot_at(res, field: str, n: int) -> np.ndarray:
    j = int(np.flatnonzero(res.snapshot_generations == n)[0])
    return res.snapshots[field][j]


def vocabulary(config):
    from sim.families.categorical import Vocabulary

    return Vocabulary.zipf(config.num_categories, config.zipf_beta)


@dataclasses.dataclass
class Context:
    """What every part of a study shares: settings, root key, the runs so far."""

    config: object
    root: object  # the root PRNG key
    progress: bool
    common_kw: dict  # dtype, chunk_chains, progress of every run
    runs: list
    sections: dict  # part -> comparison rows

    def simulate(self, runner, label, key, c, g, **kw):
        """One call of ``runner`` (run_gaussian / run_categorical), timed."""
        import jax

        # The theory needs float64 (x64 is on for the study), but a float32 study
        # simulates with x64 off: sim draws some internal numbers in the default float
        # type, and float64 there made subsample 15-25x slower (lax.top_k on float64
        # keys on CPU).
        with jax.enable_x64(bool(self.config.x64)):
            return common.timed_run(
                runner,
                label,
                self.progress,
                key=key,
                num_chains=c,
                num_generations=g,
                **kw,
                **self.common_kw,
            )

    def add(self, run: Run, rows: list) -> None:
        run.result.timings.setdefault("theory_s", 0.0)
        self.runs.append(run)
        self.sections[run.part] += rows

    def categorical_kw(self, vocab) -> dict:
        """run_categorical's settings shared by the side-by-side and verifier runs (the
        same snapshot shapes, so that equal steps reuse one compiled program)."""
        from sim.families.categorical import default_bucket_edges

        k = vocab.num_categories
        return dict(
            vocabulary=vocab,
            sample_size=self.config.cat_sample_size,
            tail_rank=max(1, k // 10),
            bucket_edges=default_bucket_edges(k),
            snapshot_generations=tuple(report_generations(self.config.cat_generations)),
        )
