"""The KDE experiment end to end, its refusals and the power of its table.

The command line runs in a subprocess (the experiments define absl flags of the
same names, so they never share a process); the refusals run its CLI body in
process on FlagValues of their own, with a study module that must not be reached.
The table's power is shown on the end-to-end run's own comparisons: the same rows
judged against deliberately wrong formulas (the Gaussian collapse r^n without the
h^2 term; the replace formula for the accumulate run) fail.
"""

import csv
import json

import numpy as np
import pytest
from absl import flags

from experiments import common, kde_report
from tests.devices import run_module
from theory import kde as tk

pytestmark = pytest.mark.e2e

FIGURES = ("variance", "mean_variance", "fit_quality")
CHAINS, GENERATIONS, M, H = 2000, 8, 10, 0.5
ACC_CHAINS, ACC_GENERATIONS = 500, 6
TINY = [
    f"--num_chains={CHAINS}",
    f"--generations={GENERATIONS}",
    f"--sample_sizes={M}",
    f"--bandwidth={H:g}",
    "--rules=fixed,scott",
    f"--accumulate_chains={ACC_CHAINS}",
    f"--accumulate_generations={ACC_GENERATIONS}",
    "--heldout_size=4",
    "--progress=false",
]
LABELS = {
    kde_report.label_of(M, r, g)
    for r, g in (("fixed", "replace"), ("scott", "replace"), ("fixed", "accumulate"))
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kde")
    out = tmp / "out"
    p = run_module("experiments.kde_chain", [*TINY, f"--output_dir={out}", "--check"], tmp)
    return p, out


def test_end_to_end_tiny(run_dir):
    p, out = run_dir
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "E[variance]" in p.stdout and "Var[mean]" in p.stdout
    assert "comparisons tested" in p.stdout
    for name in FIGURES:
        for ext in ("png", "pdf"):
            assert (out / f"{name}.{ext}").stat().st_size > 1000
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert {r["config"] for r in rows} == LABELS
    fixed = [r for r in rows if r["config"] == kde_report.label_of(M, "fixed", "replace")]
    assert [int(r["generation"]) for r in fixed] == list(range(GENERATIONS + 1))
    assert {
        "variance_mean",
        "variance_sem",
        "mean_var",
        "mean_var_se",
        "heldout_loglik_mean",
        "tail_mass_mean",
        "theory_variance_mean",
        "theory_mean_var",
        "state_bytes_per_chain",
    } <= set(rows[0])
    assert float(fixed[0]["variance_mean"]) == 1.0 and float(fixed[0]["variance_var"]) == 0.0
    n = np.arange(GENERATIONS + 1)
    np.testing.assert_allclose(
        [float(r["theory_variance_mean"]) for r in fixed], tk.expected_variance(n, M, H)
    )
    # accumulate stores M G points per chain (float32): the state grows with G
    acc = [r for r in rows if r["regime"] == "accumulate"]
    assert int(acc[0]["state_bytes_per_chain"]) >= 2 * 4 * M * ACC_GENERATIONS
    assert int(fixed[0]["state_bytes_per_chain"]) < 4 * 4 * M
    npz = np.load(out / "final_states.npz")
    key = kde_report.label_of(M, "fixed", "accumulate").replace("=", "").replace(" ", "_")
    assert npz[f"{key}/variance"].shape == (ACC_CHAINS,)
    np.testing.assert_array_equal(npz[f"{key}/count"], M * ACC_GENERATIONS)
    key = kde_report.label_of(M, "fixed", "replace").replace("=", "").replace(" ", "_")
    var = npz[f"{key}/variance"]
    assert var.shape == (CHAINS,) and var.dtype == np.float32
    assert np.isclose(np.mean(var), float(fixed[-1]["variance_mean"]), rtol=1e-5)
    m = json.load(open(out / "manifest.json"))
    assert m["experiment"] == "kde_chain" and m["config"]["num_chains"] == CHAINS
    assert set(m["timings"]) == LABELS
    assert m["comparisons"]["failed"] == 0 and m["comparisons"]["tested"] > 0


def test_table_rejects_wrong_formulas(run_dir):
    p, out = run_dir
    assert p.returncode == 0, p.stderr[-3000:]
    comps = list(csv.DictReader(open(out / "comparisons.csv")))
    z_crit = json.load(open(out / "manifest.json"))["z_threshold"]
    r = (M - 1) / M
    wrong = {
        kde_report.label_of(M, "fixed", "replace"): lambda n: r**n,
        kde_report.label_of(M, "scott", "replace"): lambda n: r**n,
        kde_report.label_of(M, "fixed", "accumulate"): lambda n: tk.expected_variance(n, M, H),
    }
    for label, formula in wrong.items():
        rows = [
            c
            for c in comps
            if c["config"] == label
            and c["statistic"] == "E[variance]"
            and c["verdict"] == "ok"
            and int(c["generation"]) > 1
        ]
        assert rows, label
        z = [
            (float(c["empirical"]) - float(formula(int(c["generation"])))) / float(c["se"])
            for c in rows
        ]
        assert max(abs(x) for x in z) > z_crit, (label, z)


# ----------------------------------------------------------------------------- refusals

FV = common.define_flags(
    kde_report.StudyConfig,
    output_dir="out/unused",
    module_name="test_kde_experiment",
    flag_values=flags.FlagValues(),
)


class _NeverRun:
    def run_study(self, *a, **k):
        raise AssertionError("run_study reached with bad input")

    def write_outputs(self, *a, **k):
        raise AssertionError("write_outputs reached with bad input")


BAD_FLAGS = [
    ("--bandwidth=0", "--bandwidth=0: the bandwidth must be > 0"),
    ("--bandwidth=-0.3", "--bandwidth=-0.3: the bandwidth must be > 0"),
    ("--rules=fixed,gaussian", "--rules=gaussian: choose from fixed, scott, silverman"),
    ("--sample_sizes=1", "--sample_sizes=1: a KDE chain needs M >= 2"),
    ("--heldout_size=0", "--heldout_size=0"),
    ("--accumulate_generations=0", "--accumulate_generations=0"),
    ("--num_chains=0", "--num_chains=0"),
    ("--tail_k=nan", "--tail_k=nan"),
]


@pytest.mark.parametrize("flag,shown", BAD_FLAGS)
def test_bad_flags_one_line_error_before_compiling(flag, shown, capsys):
    FV.unparse_flags()
    with pytest.raises(SystemExit) as e:
        FV(["prog", flag])
        common.run_cli(
            ["prog"],
            FV,
            lambda: kde_report.validate(common.config_from_flags(FV, kde_report.StudyConfig)),
            _NeverRun(),
        )
    assert e.value.code == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1 and shown in lines[0], err
