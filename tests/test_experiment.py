"""The Gaussian experiment end to end, its flags and its --check verdict."""

import csv
import json
import os

import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver

from experiments import gaussian_chain, gaussian_report
from tests.devices import run_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIGURES = ("log_variance", "w2", "tail_mass", "collapsed")
TINY = [
    "--num_chains=600",
    "--generations=12",
    "--sample_sizes=4,30",
    "--estimators=mle,unbiased",
    "--progress=false",
]

pytestmark = pytest.mark.e2e


def _cli(args, tmp_path):
    return run_module("experiments.gaussian_chain", args, tmp_path)


def test_end_to_end_tiny(tmp_path):
    out = tmp_path / "out"
    p = _cli([*TINY, f"--output_dir={out}", "--check"], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "E[log s2]" in p.stdout and "comparisons tested" in p.stdout
    for name in FIGURES:
        for ext in ("png", "pdf"):
            assert (out / f"{name}.{ext}").stat().st_size > 1000
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert len(rows) == 4 * 13
    assert {
        "log_var_mean",
        "log_var_sem",
        "theory_log_var_mean",
        "theory_tail_real_mean",
        "theory_collapsed_prob",
        "w2_squared_mean",
        "theory_w2_squared_mean",
    } <= set(rows[0])
    first = [r for r in rows if r["config"] == "M=4 mle"]
    assert [int(r["generation"]) for r in first] == list(range(13))
    np.testing.assert_allclose(float(first[0]["log_var_mean"]), 0.0)
    comps = list(csv.DictReader(open(out / "comparisons.csv")))
    assert comps and all(c["verdict"] in ("ok", "n/a") for c in comps)
    npz = np.load(out / "final_states.npz")
    assert npz["M4_mle/log_var"].shape == (600,) and npz["M30_unbiased/mean"].shape == (600,)
    m = json.load(open(out / "manifest.json"))
    assert m["seed"] == 0 and m["config"]["num_chains"] == 600
    assert m["environment"]["versions"]["jax"] and m["environment"]["devices"]
    assert set(m["timings"]) == {"M=4 mle", "M=4 unbiased", "M=30 mle", "M=30 unbiased"}
    assert m["comparisons"]["failed"] == 0 and m["comparisons"]["tested"] > 0
    assert set(m["outputs"]) >= {"summary.csv", "log_variance.png", "w2.pdf"}


def test_exact_method_and_x64(tmp_path):
    out = tmp_path / "o"
    p = _cli(
        [
            "--num_chains=500",
            "--generations=8",
            "--sample_sizes=10000",
            "--estimators=unbiased",
            "--method=exact",
            "--x64",
            "--progress=false",
            f"--output_dir={out}",
            "--check",
        ],
        tmp_path,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    npz = np.load(out / "final_states.npz")
    assert npz["M10000_unbiased/log_var"].dtype == np.float64


@pytest.mark.parametrize(
    "flag,shown",
    [
        ("--sample_sizes=10,1", "--sample_sizes=1"),
        ("--num_chains=0", "--num_chains=0"),
        ("--generations=0", "--generations=0"),
        ("--estimators=mle,biased", "--estimators=biased"),
        ("--tail_k=-1", "--tail_k=-1.0"),
        ("--method=fast", "--method=fast"),
        ("--collapse_eps=0", "--collapse_eps=0.0"),
        ("--sample_sizes=ten", "--sample_sizes=ten"),
        ("--prng_impl=rbg", "--prng_impl=rbg"),
    ],
)
def test_bad_flags_one_line_error_before_compiling(flag, shown, monkeypatch, capsys):
    def boom(*a, **k):
        raise AssertionError("run_study must not be reached with bad flags")

    monkeypatch.setattr(gaussian_report, "run_study", boom)
    with flagsaver.flagsaver():
        flags.FLAGS(["prog", flag])
        with pytest.raises(SystemExit) as e:
            gaussian_chain.main(["prog"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and shown in err, err


def test_bad_flag_from_the_command_line(tmp_path):
    p = _cli(["--sample_sizes=1"], tmp_path)
    assert p.returncode == 2
    assert p.stderr.strip() == "error: --sample_sizes=1: a variance needs M >= 2 samples"


def test_check_fails_when_theory_is_wrong(tmp_path, monkeypatch):
    """--check exits 1 if a closed form is broken (here: the MLE drift for everyone)."""
    real = gaussian_report.theory_curves

    def broken(n, m, estimator, tail_k, eps):
        return real(n, m, "mle", tail_k, eps)

    monkeypatch.setattr(gaussian_report, "theory_curves", broken)
    with flagsaver.flagsaver():
        flags.FLAGS(
            [
                "prog",
                *TINY,
                "--sample_sizes=10",
                "--estimators=unbiased",
                "--generations=60",
                "--num_chains=4000",
                f"--output_dir={tmp_path}",
                "--check",
            ]
        )
        with pytest.raises(SystemExit) as e:
            gaussian_chain.main(["prog"])
    assert e.value.code == 1
