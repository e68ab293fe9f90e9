"""The Gaussian-mixture experiment end to end, its refusals and the power of its table.

The command line runs in a subprocess with tiny flags and ``--check``; the
refusals run its CLI body in process on FlagValues of their own, with a study
module that must not be reached. The table's power is shown on the run's own
comparisons: the same rows judged against the chain without shrinkage (r = 1,
the unbiased estimator's law) fail.
"""

import csv
import json

import numpy as np
import pytest
from absl import flags

from experiments import common, gmm_report
from tests.devices import run_module
from theory import gaussian as tg
from theory import multivariate as tm

pytestmark = pytest.mark.e2e

FIGURES = ("l2_distance", "weights", "variance")
CHAINS, GENERATIONS, M, D = 1000, 10, 30, 1
TINY = [
    f"--num_chains={CHAINS}",
    f"--generations={GENERATIONS}",
    f"--sample_size={M}",
    f"--dim={D}",
    "--em_steps=4",
    "--progress=false",
]
LABELS = (gmm_report.label_of(2, D, M), gmm_report.label_of(1, D, M))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gmm")
    out = tmp / "out"
    p = run_module("experiments.gmm_chain", [*TINY, f"--output_dir={out}", "--check"], tmp)
    return p, out


def test_end_to_end_tiny(run_dir):
    p, out = run_dir
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "E[tr Sigma]" in p.stdout and "E[log det]" in p.stdout
    assert "comparisons tested" in p.stdout
    for name in FIGURES:
        for ext in ("png", "pdf"):
            assert (out / f"{name}.{ext}").stat().st_size > 1000
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert {r["config"] for r in rows} == set(LABELS)
    mix = [r for r in rows if r["config"] == LABELS[0]]
    one = [r for r in rows if r["config"] == LABELS[1]]
    assert [int(r["generation"]) for r in mix] == list(range(GENERATIONS + 1))
    assert {"l2_distance_mean", "lost_mean", "weight0_mean", "weight1_mean", "mean1_mean",
            "variance0_mean", "em_iterations_mean", "weight_floored_mean", "cov_floored_mean",
            "theory_trace_cov_mean", "theory_gaussian_log_det_mean"} <= set(mix[0])  # fmt: skip
    assert float(mix[0]["l2_distance_mean"]) < 1e-6 and float(mix[0]["weight0_mean"]) == 0.5
    assert float(mix[0]["mean0_mean"]) == -2.0 and float(mix[0]["em_iterations_mean"]) == 0
    assert 1 <= float(mix[-1]["em_iterations_mean"]) <= 4
    n = np.arange(GENERATIONS + 1)
    np.testing.assert_allclose(
        [float(r["theory_gaussian_log_det_mean"]) for r in one], tm.log_det_mean(n, M, D, "mle")
    )
    np.testing.assert_allclose(
        [float(r["theory_trace_cov_mean"]) for r in mix], 5.0 * tg.expected_variance(n, M, "mle")
    )
    npz = np.load(out / "final_states.npz")
    key = LABELS[0].replace("=", "").replace(" ", "_")
    w, mu, cov = npz[f"{key}/weights"], npz[f"{key}/means"], npz[f"{key}/covs"]
    assert w.shape == (CHAINS, 2) and mu.shape == (CHAINS, 2, D) and cov.shape == (CHAINS, 2, D, D)
    assert w.dtype == np.float32  # the default precision (--x64 off)
    np.testing.assert_allclose(w.sum(1), 1.0, rtol=1e-5)
    lost = npz[f"{key}/lost_generation"]
    assert lost.shape == (CHAINS,) and np.all(lost <= GENERATIONS)
    m = json.load(open(out / "manifest.json"))
    assert m["experiment"] == "gmm_chain" and m["config"]["num_chains"] == CHAINS
    assert set(m["timings"]) == set(LABELS)
    assert m["comparisons"]["failed"] == 0 and m["comparisons"]["tested"] > 0


def test_table_rejects_wrong_formulas(run_dir):
    """The run's own rows, judged against r = 1 (the unbiased chain's law of the trace
    and of log det) at the run's threshold, fail."""
    p, out = run_dir
    assert p.returncode == 0, p.stderr[-3000:]
    comps = list(csv.DictReader(open(out / "comparisons.csv")))
    assert comps and all(c["verdict"] in ("ok", "n/a") for c in comps)
    z_crit = json.load(open(out / "manifest.json"))["z_threshold"]
    tr0 = {LABELS[0]: 1.0 + 4.0, LABELS[1]: 1.0}
    wrong = {
        "E[tr Sigma]": lambda c, n: tr0[c] * tg.expected_variance(n, M, "unbiased"),
        "E[log det]": lambda c, n: tm.log_det_mean(n, M, D, "unbiased"),
    }
    for statistic, formula in wrong.items():
        for label in LABELS if statistic == "E[tr Sigma]" else LABELS[1:]:
            rows = [
                c
                for c in comps
                if c["statistic"] == statistic and c["verdict"] == "ok" and c["config"] == label
            ]
            assert rows, (statistic, label)
            z = [
                (float(c["empirical"]) - float(formula(label, int(c["generation"]))))
                / float(c["se"])
                for c in rows
            ]
            assert max(abs(x) for x in z) > z_crit, (statistic, label, z)


# ----------------------------------------------------------------------------- refusals

FV = common.define_flags(
    gmm_report.StudyConfig,
    output_dir="out/unused",
    module_name="test_gmm_experiment",
    flag_values=flags.FlagValues(),
)


class _NeverRun:
    def run_study(self, *a, **k):
        raise AssertionError("run_study reached with bad input")

    def write_outputs(self, *a, **k):
        raise AssertionError("write_outputs reached with bad input")


@pytest.mark.parametrize(
    "args,shown",
    [
        (["--components=0"], "--components=0: need at least 1 component"),
        (["--dim=0"], "--dim=0"),
        (["--sample_size=5"], "--sample_size=5: must be >= components * (dim + 1) = 6"),
        (["--em_steps=0"], "--em_steps=0"),
        (["--tol=-1"], "--tol=-1: must be >= 0"),
        (["--cov_floor=0"], "--cov_floor=0: must be > 0"),
        (["--weight_floor=0.5"], "--weight_floor=0.5: must be in (0, 1/components = 0.5)"),
        (["--lost_weight=0.7"], "--lost_weight=0.7"),
        (["--separation=nan"], "--separation=nan"),
        (["--num_chains=0"], "--num_chains=0"),
        (["--generations=0"], "--generations=0"),
    ],
)
def test_bad_flags_one_line_error_before_compiling(args, shown, capsys):
    FV.unparse_flags()
    with pytest.raises(SystemExit) as e:
        FV(["prog", *args])
        common.run_cli(
            ["prog"],
            FV,
            lambda: gmm_report.validate(common.config_from_flags(FV, gmm_report.StudyConfig)),
            _NeverRun(),
        )
    assert e.value.code == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1 and shown in lines[0], err
