"""The regression experiment end to end, its flags and its verdicts.

The command line runs in subprocesses: ``experiments.regression_chain`` and the
other experiments define absl flags of the same names, so they are never
imported into one process.
"""

import csv
import dataclasses
import json
import os

import numpy as np
import pytest

from experiments import regression_report
from experiments.regression_report import StudyConfig, validate
from tests.devices import run_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIGURES = ("test_error", "weight_norm", "z_scores")
TINY = [
    "--sizes=3:12",
    "--designs=fresh",
    "--ridge_designs=fixed",
    "--ridge=2",
    "--num_chains=400",
    "--subsample_chains=64",
    "--generations=6",
    "--progress=false",
]

pytestmark = pytest.mark.e2e


def _cli(args, cwd):
    return run_module("experiments.regression_chain", args, cwd)


def test_end_to_end_tiny(tmp_path):
    out = tmp_path / "out"
    p = _cli([*TINY, f"--output_dir={out}", "--check"], tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "E||w_n - w*||^2" in p.stdout and "no closed form (subsample)" in p.stdout
    for name in FIGURES:
        for ext in ("png", "pdf"):
            assert (out / f"{name}.{ext}").stat().st_size > 1000
    rows = list(csv.DictReader(open(out / "summary.csv")))
    labels = [
        f"d3T12 {design} {est} {regime}"
        for design, est in (("fresh", "ols"), ("fixed", "ridge2"))
        for regime in ("replace", "accumulate", "subsample(B=12)")
    ]
    assert sorted({r["config"] for r in rows}) == sorted(labels)
    first = [r for r in rows if r["config"] == labels[0]]
    assert [int(r["generation"]) for r in first] == list(range(7))
    assert float(first[0]["test_error_mean"]) == 0.0 and float(first[0]["theory_test_error"]) == 0
    assert {"test_error_sem", "weight_norm_sq_mean", "train_size_mean", "theory_bias"} <= set(
        rows[0]
    )
    sub = [r for r in rows if "subsample" in r["config"]]
    assert all(r["theory_test_error"] == "" for r in sub)
    acc = [r for r in rows if r["config"] == labels[1]]
    assert [float(r["train_size_mean"]) for r in acc[1:]] == [12.0 * n for n in range(1, 7)]
    comps = list(csv.DictReader(open(out / "comparisons.csv")))
    assert comps and all(c["verdict"] in ("ok", "n/a") for c in comps)
    assert {c["verdict"] for c in comps if "subsample" in c["config"]} == {"n/a"}
    npz = np.load(out / "final_states.npz")
    assert npz["d3T12_fresh_ols_replace/final_w"].shape == (400, 3)
    assert npz["d3T12_fixed_ridge2_subsample(B12)/final_w"].shape == (64, 3)
    assert npz["d3T12_fixed_ridge2_accumulate/design"].shape == (12, 3)
    m = json.load(open(out / "manifest.json"))
    assert m["experiment"] == "regression_chain" and m["config"]["num_chains"] == 400
    assert (
        m["comparisons"]["failed"] == 0 and m["comparisons"]["tested"] == 4 * 2 * 2
    )  # runs x generations (1, G) x statistics
    assert set(m["timings"]) == set(labels)


@pytest.mark.parametrize(
    "change, shown",
    [
        (dict(sizes=((5, 6),)), "--sizes=5:6"),
        (dict(sizes=((0, 6),)), "--sizes=0:6"),
        (dict(sizes=()), "--sizes="),
        (dict(noise=-1.0), "--noise=-1.0"),
        (dict(ridge=float("inf")), "--ridge=inf"),
        (dict(designs=("random",)), "--designs=random"),
        (dict(ridge_designs=("both",)), "--ridge_designs=both"),
        (dict(regimes=("fresh",)), "--regimes=fresh"),
        (dict(budget=5, sizes=((8, 20),)), "--budget=5"),
        (dict(budget=-1), "--budget=-1"),
        (dict(num_chains=1), "--num_chains=1"),
        (dict(subsample_chains=0), "--subsample_chains=0"),
        (dict(generations=0), "--generations=0"),
        (dict(prng_impl="rbg"), "--prng_impl=rbg"),
    ],
)
def test_bad_settings_are_named(change, shown):
    with pytest.raises(ValueError, match=shown):
        validate(dataclasses.replace(StudyConfig(), **change))


def test_bad_flag_from_the_command_line(tmp_path):
    p = _cli(["--sizes=10:11"], tmp_path)
    assert p.returncode == 2
    assert p.stderr.strip() == (
        "error: --sizes=10:11: need T > d + 1 = 11 (the OLS test error is infinite)"
    )
    p = _cli(["--sizes=10x50"], tmp_path)
    assert p.returncode == 2 and "--sizes=10x50: not a pair d:T of integers" in p.stderr


def test_check_fails_when_theory_is_wrong(monkeypatch):
    """A broken closed form (the replace curve used for accumulate) is caught by the table."""
    real = regression_report.theory_curves

    def broken(run, noise, g):
        if run.regime != "accumulate":
            return real(run, noise, g)
        swapped = dataclasses.replace(run, regime="replace")
        return real(swapped, noise, g)

    monkeypatch.setattr(regression_report, "theory_curves", broken)
    cfg = StudyConfig(
        sizes=((3, 12),),
        designs=("fresh",),
        ridge=0.0,
        regimes=("replace", "accumulate"),
        num_chains=2000,
        generations=6,
    )
    study = regression_report.run_study(validate(cfg), progress=False)
    failed = [r for r in study.comparisons if r.verdict == "FAIL"]
    assert failed and all("accumulate" in r.config for r in failed)
    assert all(r.verdict == "ok" for r in study.comparisons if "replace" in r.config)
