"""The remedies experiment end to end, its flags and its verdicts.

The command line runs in a subprocess (experiments.remedies defines absl flags
whose names other experiments also define, so it is never imported here).
"""

import csv
import dataclasses
import json
import os

import numpy as np
import pytest

from experiments import remedies_report
from experiments.remedies_report import StudyConfig, side_by_side, validate
from tests.devices import run_module
from tests.stats import assert_agree, assert_rejects

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIGURES = ("regimes_gaussian", "regimes_categorical", "phase_diagram", "schedule_w2", "verifier")
# Every part, one regime side by side, one filter: 7 Gaussian and 3 categorical
# programs to compile (about 60 s on 2 loaded cores with a cold compilation
# cache, about 20 s with a warm one).
TINY = [
    "--regimes=replace",
    "--num_chains=400",
    "--generations=12",
    "--known_variance=false",  # covered in process by test_check_fails_when_theory_is_wrong
    "--num_categories=30",
    "--cat_sample_size=30",
    "--cat_chains=64",
    "--cat_generations=10",
    "--verifier_good_ranks=10",
    "--phase_alphas=0,0.5",
    "--phase_sample_sizes=20",
    "--phase_chains=400",
    "--phase_generations=20",
    "--schedule_powers=2",
    "--schedule_chains=400",
    "--schedule_generations=20",
    "--verifier_accepts=1:0",
    "--verifier_chains=400",
    "--verifier_generations=12",
    "--progress=false",
]

pytestmark = pytest.mark.e2e


def _cli(args, cwd):
    return run_module("experiments.remedies", args, cwd)


def test_end_to_end_tiny(tmp_path):
    out = tmp_path / "out"
    p = _cli([*TINY, f"--output_dir={out}", "--check"], tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    for title in ("side by side: Gaussian", "phase diagram", "schedules", "verification filter"):
        assert title in p.stdout
    for name in FIGURES:
        for ext in ("png", "pdf"):
            assert (out / f"{name}.{ext}").stat().st_size > 1000
    comps = list(csv.DictReader(open(out / "comparisons.csv")))
    assert comps and all(c["verdict"] in ("ok", "n/a") for c in comps)
    tested = {(c["config"], c["statistic"]) for c in comps if c["verdict"] == "ok"}
    for row in (
        ("G replace", "E[log s2] (G3)"),
        ("C replace", "E[support] (D3)"),
        ("ph M=20 a=0.5", "Var[mu] (F1)"),
        ("sched p=2", "E[W2^2] (G6)"),
        ("vG 1-1", "chains off plain replace (no-op)"),
        ("vG 1-0", "E[train size] fit 2 (exact integral)"),
        ("vG 1-0", "max |mu| over chains, n>=2 <= k"),
        ("vC 1-1", "chains off plain replace (no-op)"),
        ("vC 1-0", "max mass on bad tokens at G"),
    ):
        assert row in tested, row
    measured = [c for c in comps if c["statistic"] == "E[log s2] at G"]
    assert measured and all(c["verdict"] == "n/a" for c in measured)
    rows = list(csv.DictReader(open(out / "summary.csv")))
    g_rep = [r for r in rows if r["config"] == "G replace"]
    assert [int(r["generation"]) for r in g_rep] == list(range(13))
    assert {"log_var_mean", "train_size_mean", "var_mean", "theory_log_var_mean"} <= set(g_rep[0])
    npz = np.load(out / "final_states.npz")
    assert npz["G_replace/log_var"].shape == (400,)
    assert npz["C_replace/final_probs"].shape == (64, 30)
    assert npz["sched_p2/schedule"].shape == (20,)
    m = json.load(open(out / "manifest.json"))
    assert m["experiment"] == "remedies" and m["config"]["num_chains"] == 400
    assert m["comparisons"]["failed"] == 0 and m["comparisons"]["tested"] > 20
    assert {"G replace", "C replace", "vG 1-0", "vC 1-0"} <= set(m["timings"])


@pytest.mark.parametrize(
    "change, shown",
    [
        (dict(regimes=("replace", "mix")), "--regimes=mix"),
        (dict(estimator="biased"), "--estimator=biased"),
        (dict(method="fast"), "--method=fast"),
        (dict(sample_size=1), "--sample_size=1"),
        (dict(num_chains=-1), "--num_chains=-1"),
        (dict(fresh_alpha=0.01), "--fresh_alpha=0.01"),  # round(0.01 * 20) = 0 real points
        (dict(anchor_lam=1.0), "--anchor_lam=1.0"),
        (dict(phase_alphas=(0.1, 1.0)), "--phase_alphas=1.0"),
        (dict(phase_sample_sizes=(1,)), "--phase_sample_sizes=1"),
        (dict(schedule_powers=(5.0,)), "--schedule_powers=5.0"),
        (dict(verifier_accepts=("1:2",)), "--verifier_accepts=1:2"),
        (dict(verifier_accepts=("0.9",)), "--verifier_accepts=0.9"),
        (dict(verifier_good_ranks=1000), "--verifier_good_ranks=1000"),
    ],
)
def test_bad_settings_are_named(change, shown):
    with pytest.raises(ValueError, match=shown.replace("+", r"\+")):
        validate(dataclasses.replace(StudyConfig(), **change))


def test_bad_flag_from_the_command_line(tmp_path):
    p = _cli(["--verifier_accepts=1:2"], tmp_path)
    assert p.returncode == 2
    assert p.stderr.strip().endswith("--verifier_accepts=1:2: both must be probabilities in [0, 1]")


def test_first_filter_acceptance_is_the_normal_integral():
    """The quadrature against a direct average over fit 1 (large M: sigma_1 -> sigma0)."""
    from math import erf, sqrt

    p = remedies_report.first_filter_acceptance(10_000, "unbiased", 2.0)
    assert p == pytest.approx(erf(2.0 / sqrt(2.0 * (1.0 + 1e-4))), abs=1e-4)
    rng = np.random.default_rng(0)
    m, k, n = 5, 1.5, 200_000
    s2 = rng.chisquare(m - 1, n) / m  # the MLE of fit 1
    vals = np.frompyfunc(erf, 1, 1)(k / np.sqrt(2.0 * (s2 + 1.0 / m))).astype(float)
    se = vals.std() / np.sqrt(n)
    what = "first_filter_acceptance vs Monte Carlo"
    assert_agree(vals.mean(), se, remedies_report.first_filter_acceptance(m, "mle", k), what)
    # the same z-test rejects the other estimator's acceptance (sigma_1 wider by M/(M-1))
    wrong = remedies_report.first_filter_acceptance(m, "unbiased", k)
    assert_rejects(vals.mean(), se, wrong, what)


def test_check_fails_when_theory_is_wrong(monkeypatch):
    """THEORY.md L3 read with its sum to n + 1 (synthetic generations) instead of n
    (fits) is caught: only the known-variance accumulate rows fail."""
    from theory import mixing

    real = remedies_report.known_variance_theory

    def shifted(kind, g, m, lam_eff=None):
        if kind != "accumulate":
            return real(kind, g, m, lam_eff=lam_eff)
        return dict(mean_var=np.asarray(mixing.accumulate_mean_variance(np.arange(1, g + 2), m)))

    monkeypatch.setattr(side_by_side, "known_variance_theory", shifted)
    cfg = StudyConfig(
        regimes=("accumulate",),
        num_chains=4000,
        generations=10,
        cat_chains=0,
        phase_chains=0,
        schedule_chains=0,
        verifier_chains=0,
    )
    study = remedies_report.run_study(validate(cfg), progress=False)
    failed = [r for r in study.comparisons if r.verdict == "FAIL"]
    assert failed and all(r.config == "Gk accumulate" for r in failed)
