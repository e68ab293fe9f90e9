"""The Poisson experiment end to end, its refusals and the power of its table.

The command line runs in a subprocess (the experiments define absl flags of
the same names, so they never share a process); the refusals run its CLI body
in process on FlagValues of their own, with a study module that must not be
reached. The table's power is shown on the end-to-end run's own comparisons:
the same rows judged against deliberately wrong formulas fail.
"""

import csv
import json

import numpy as np
import pytest
from absl import flags

from experiments import common, poisson_report
from tests.devices import run_module
from theory import poisson as tp

pytestmark = pytest.mark.e2e

FIGURES = ("extinction", "rate_moments")
CHAINS, GENERATIONS, M, LAM0 = 3000, 10, 3, 1.5
TINY = [
    f"--num_chains={CHAINS}",
    f"--generations={GENERATIONS}",
    f"--sample_sizes={M}",
    f"--rates={LAM0:g}",
    "--progress=false",
]
LABEL = poisson_report.label_of(M, LAM0)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("poisson")
    out = tmp / "out"
    p = run_module("experiments.poisson_chain", [*TINY, f"--output_dir={out}", "--check"], tmp)
    return p, out


def test_end_to_end_tiny(run_dir):
    p, out = run_dir
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "E[rate]" in p.stdout and "P(extinct)" in p.stdout and "comparisons tested" in p.stdout
    for name in FIGURES:
        for ext in ("png", "pdf"):
            assert (out / f"{name}.{ext}").stat().st_size > 1000
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert [int(r["generation"]) for r in rows] == list(range(GENERATIONS + 1))
    assert {r["config"] for r in rows} == {LABEL}
    assert {
        "rate_mean",
        "rate_sem",
        "rate_var",
        "rate_var_se",
        "extinct_mean",
        "error_sq_mean",
        "theory_rate_mean",
        "theory_rate_var",
        "theory_zero_probability",
        "theory_survival",
        "theory_survival_asymptote",
    } <= set(rows[0])
    assert float(rows[0]["rate_mean"]) == LAM0 and float(rows[0]["rate_var"]) == 0.0
    assert float(rows[0]["extinct_mean"]) == 0.0
    n = np.arange(GENERATIONS + 1)
    np.testing.assert_allclose(
        [float(r["theory_zero_probability"]) for r in rows], tp.zero_probability(n, M, LAM0)
    )
    npz = np.load(out / "final_states.npz")
    key = LABEL.replace("=", "").replace(" ", "_")
    rate, first = npz[f"{key}/rate"], npz[f"{key}/extinct_generation"]
    assert rate.shape == first.shape == (CHAINS,)
    assert rate.dtype == np.float32  # the default precision (--x64 off)
    assert np.all((rate == 0) == (first >= 0))  # absorbed at 0 for good
    assert np.isclose(np.mean(rate), float(rows[-1]["rate_mean"]), rtol=1e-6)
    m = json.load(open(out / "manifest.json"))
    assert m["experiment"] == "poisson_chain" and m["config"]["num_chains"] == CHAINS
    assert m["config"]["rates"] == [LAM0] and m["config"]["method"] == "sample"
    assert m["environment"]["versions"]["jax"]
    assert set(m["timings"]) == {LABEL}
    assert m["comparisons"]["failed"] == 0 and m["comparisons"]["tested"] > 0
    assert set(m["outputs"]) >= {"summary.csv", "final_states.npz", "extinction.png"}


def test_table_rejects_wrong_formulas(run_dir):
    """The run's own rows, judged against the survival law one fit late and the variance
    (n + 1) lam0 / M at the run's threshold, fail."""
    p, out = run_dir
    assert p.returncode == 0, p.stderr[-3000:]
    comps = list(csv.DictReader(open(out / "comparisons.csv")))
    assert comps and all(c["verdict"] in ("ok", "n/a") for c in comps)
    z_crit = json.load(open(out / "manifest.json"))["z_threshold"]
    wrong = {
        "P(extinct)": lambda n: tp.zero_probability(n + 1, M, LAM0),
        "Var[rate]": lambda n: tp.rate_variance(n + 1, M, LAM0),
    }
    for statistic, formula in wrong.items():
        rows = [c for c in comps if c["statistic"] == statistic and c["verdict"] == "ok"]
        assert rows, statistic
        z = [
            (float(c["empirical"]) - float(formula(int(c["generation"])))) / float(c["se"])
            for c in rows
        ]
        assert max(abs(x) for x in z) > z_crit, (statistic, z)


# ----------------------------------------------------------------------------- refusals

FV = common.define_flags(
    poisson_report.StudyConfig,
    output_dir="out/unused",
    module_name="test_poisson_experiment",
    flag_values=flags.FlagValues(),
)


class _NeverRun:
    def run_study(self, *a, **k):
        raise AssertionError("run_study reached with bad input")

    def write_outputs(self, *a, **k):
        raise AssertionError("write_outputs reached with bad input")


@pytest.mark.parametrize(
    "flag,shown",
    [
        ("--sample_sizes=5,0", "--sample_sizes=0: a fit needs M >= 1 draws"),
        ("--rates=1,-0.5", "--rates=-0.5: a Poisson rate must be >= 0"),
        ("--rates=1,1", "--rates=1: listed twice"),
        ("--rates=nan", "--rates=nan: must be a finite number"),
        ("--rates=1e5", "--rates=100000: M lam0 = 500000 at M=5"),
        ("--method=fast", "--method=fast: choose sample or exact"),
        ("--num_chains=0", "--num_chains=0"),
        ("--generations=0", "--generations=0"),
        ("--sample_sizes=five", "--sample_sizes=five"),
    ],
)
def test_bad_flags_one_line_error_before_compiling(flag, shown, capsys):
    FV.unparse_flags()
    with pytest.raises(SystemExit) as e:
        FV(["prog", flag])
        common.run_cli(
            ["prog"],
            FV,
            lambda: poisson_report.validate(
                common.config_from_flags(FV, poisson_report.StudyConfig)
            ),
            _NeverRun(),
        )
    assert e.value.code == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1 and shown in lines[0], err


def test_x64_widens_the_exact_range():
    cfg = poisson_report.StudyConfig(rates=(1e5,), x64=True)
    assert poisson_report.validate(cfg) is cfg
