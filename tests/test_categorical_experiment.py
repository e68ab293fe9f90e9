"""The categorical experiment end to end, its flags and its verdicts.

The command line runs in subprocesses: ``experiments.categorical_chain`` and
``experiments.gaussian_chain`` each define absl flags of the same names, so
they are never imported into one process.
"""

import csv
import dataclasses
import json
import os

import numpy as np
import pytest

from experiments import categorical_report
from experiments.categorical_report import StudyConfig, validate
from tests.devices import run_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIGURES = ("survival", "diversity", "absorption", "bias")
TINY = dict(
    num_categories=40,
    sample_size=20,
    num_chains=400,
    generations=15,
    absorption_categories=3,
    absorption_sample_size=8,
    absorption_chains=600,
    absorption_generations=300,
    temperatures=(0.8,),
    top_ks=(5,),
    top_ps=(0.9,),
    smoothing=0.5,
    bias_chains=128,
    bias_generations=10,
)

pytestmark = pytest.mark.e2e


def _flags(config: dict) -> list[str]:
    out = []
    for k, v in config.items():
        v = ",".join(str(x) for x in v) if isinstance(v, tuple) else v
        out.append(f"--{k}={v}")
    return out


def _cli(args, cwd):
    return run_module("experiments.categorical_chain", args, cwd)


def test_end_to_end_tiny(tmp_path):
    out = tmp_path / "out"
    p = _cli([*_flags(TINY), "--progress=false", f"--output_dir={out}", "--check"], tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "E[H] (D1)" in p.stdout and "E[absorption time] (D4 exact)" in p.stdout
    for name in FIGURES:
        for ext in ("png", "pdf"):
            assert (out / f"{name}.{ext}").stat().st_size > 1000
    rows = list(csv.DictReader(open(out / "summary.csv")))
    main = [r for r in rows if r["config"] == "main"]
    assert [int(r["generation"]) for r in main] == list(range(16))
    assert {"heterozygosity_mean", "theory_heterozygosity", "theory_survival_b0"} <= set(main[0])
    np.testing.assert_allclose(float(main[0]["support_mean"]), 40)
    comps = list(csv.DictReader(open(out / "comparisons.csv")))
    assert comps and all(c["verdict"] in ("ok", "n/a") for c in comps)
    npz = np.load(out / "final_states.npz")
    assert npz["main/final_probs"].shape == (400, 40)
    assert npz["absorb_K3_M8/absorption_time"].shape == (600,)
    m = json.load(open(out / "manifest.json"))
    assert m["experiment"] == "categorical_chain" and m["config"]["num_chains"] == 400
    assert m["comparisons"]["failed"] == 0 and m["comparisons"]["tested"] > 0
    assert {"main", "plain", "tau=0.8", "top_k=5", "top_p=0.9", "alpha=0.5"} <= set(m["timings"])


@pytest.mark.parametrize(
    "change, shown",
    [
        (dict(num_categories=1), "--num_categories=1"),
        (dict(sample_size=0), "--sample_size=0"),
        (dict(top_ks=(0,)), "--top_ks=0"),
        (dict(top_ps=(1.5,)), "--top_ps=1.5"),
        (dict(temperatures=(0.0,)), "--temperatures=0.0"),
        (dict(smoothing=-1.0), "--smoothing=-1.0"),
        (dict(tail_rank=1000), "--tail_rank=1000"),
        (dict(absorption_categories=6, absorption_sample_size=40), "--absorption_sample_size=40"),
        (dict(probs_file="/nonexistent.npy"), "--probs_file=/nonexistent.npy"),
    ],
)
def test_bad_settings_are_named(change, shown):
    with pytest.raises(ValueError, match=shown.replace("+", r"\+")):
        validate(dataclasses.replace(StudyConfig(), **change))


def test_bad_flag_from_the_command_line(tmp_path):
    p = _cli(["--top_ps=0"], tmp_path)
    assert p.returncode == 2
    assert p.stderr.strip() == "error: --top_ps=0.0: every top-p must be in (0, 1]"


def test_probs_file_is_validated_and_used(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("0.5 0.6\n")
    with pytest.raises(ValueError, match="sums to 1.1"):
        validate(StudyConfig(probs_file=str(bad)))
    good = tmp_path / "p.npy"
    np.save(good, np.array([0.7, 0.2, 0.1]))
    cfg = validate(StudyConfig(probs_file=str(good), num_categories=3, top_ks=(2,)))
    v = categorical_report.vocabulary(cfg)
    np.testing.assert_allclose(v.probs, [0.7, 0.2, 0.1])


def test_check_fails_when_theory_is_wrong(monkeypatch):
    """A broken closed form (D1 off by one generation) is caught by the table."""
    real = categorical_report.main_theory

    def broken(vocab, m, g, edges, tail_rank):
        th = real(vocab, m, g, edges, tail_rank)
        th["heterozygosity"] = th["heterozygosity"] * (1 - 1 / m)
        return th

    monkeypatch.setattr(categorical_report, "main_theory", broken)
    cfg = dict(TINY, num_chains=4000, absorption_chains=0, bias_chains=0)
    study = categorical_report.run_study(validate(StudyConfig(**cfg)), progress=False)
    failed = [r for r in study.comparisons if r.verdict == "FAIL"]
    assert failed and all(r.statistic == "E[H] (D1)" for r in failed)
