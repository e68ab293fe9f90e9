"""The Bayesian-chain experiment end to end, its refusals and the power of its table.

The command line runs in a subprocess with tiny flags and ``--check`` (the
experiments define absl flags of the same names, so they never share a process);
the refusals run its CLI body in process on FlagValues of their own, with a study
module that must not be reached. The table's power is shown on the run's own
comparisons: the same rows judged against the other update's law (refit against
sequential and back) and the plug-in chain against the unbiased estimator's law
fail at the run's own threshold.
"""

import csv
import json

import numpy as np
import pytest
from absl import flags

from experiments import bayes_report, common
from tests.devices import run_module
from theory import bayes as tb
from theory import gaussian as tg

pytestmark = pytest.mark.e2e

FIGURES = ("variance_drift", "mean_variance")
CHAINS, GENERATIONS, M = 2000, 10, 10
PRIOR = dict(mu0=0.0, kappa0=1.0, alpha0=5.0, beta0=2.0)  # the study's defaults
TINY = [
    f"--num_chains={CHAINS}",
    f"--generations={GENERATIONS}",
    f"--sample_sizes={M}",
    "--updates=refit,sequential",
    "--predictives=joint",
    "--progress=false",
]
LABELS = tuple(bayes_report.label_of(M, u, "joint") for u in ("refit", "sequential")) + (
    bayes_report.label_of(M, "mle", ""),
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bayes")
    out = tmp / "out"
    p = run_module("experiments.bayes_chain", [*TINY, f"--output_dir={out}", "--check"], tmp)
    return p, out


def _theory(update, name, n):
    args = (n, M, *PRIOR.values(), 0.0, 1.0)
    fn = {"var": tb.expected_var_mean, "mean_var": tb.mean_variance}[name]
    return np.asarray(fn(*args, update=update, predictive="joint"))


def test_end_to_end_tiny(run_dir):
    p, out = run_dir
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "E[var_mean]" in p.stdout and "E[log s2]" in p.stdout
    assert "comparisons tested" in p.stdout
    for name in FIGURES:
        for ext in ("png", "pdf"):
            assert (out / f"{name}.{ext}").stat().st_size > 1000
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert {r["config"] for r in rows} == set(LABELS)
    n = np.arange(GENERATIONS + 1)
    for update, label in zip(("refit", "sequential"), LABELS[:2], strict=True):
        mine = [r for r in rows if r["config"] == label]
        assert [int(r["generation"]) for r in mine] == list(n)
        assert {"var_mean_mean", "mean_mean", "theory_var_mean", "theory_mean_var"} <= set(mine[0])
        np.testing.assert_allclose(
            [float(r["theory_var_mean"]) for r in mine], _theory(update, "var", n), rtol=1e-12
        )
    mle = [r for r in rows if r["config"] == LABELS[2]]
    np.testing.assert_allclose(
        [float(r["theory_log_var_mean"]) for r in mle],
        tg.log_variance_mean(n, M, "mle"),
        rtol=1e-12,
    )
    npz = np.load(out / "final_states.npz")
    key = LABELS[0].replace("=", "").replace(" ", "_")
    var_mean, kappa = npz[f"{key}/var_mean"], npz[f"{key}/kappa"]
    assert var_mean.shape == (CHAINS,) and np.all(var_mean > 0) and np.all(np.isfinite(var_mean))
    np.testing.assert_allclose(kappa, PRIOR["kappa0"] + M)  # refit: one update from the prior
    seq = npz[f"{LABELS[1].replace('=', '').replace(' ', '_')}/kappa"]
    np.testing.assert_allclose(seq, PRIOR["kappa0"] + M * GENERATIONS, rtol=1e-6)
    m = json.load(open(out / "manifest.json"))
    assert m["experiment"] == "bayes_chain" and m["config"]["num_chains"] == CHAINS
    assert set(m["timings"]) == set(LABELS)
    assert m["comparisons"]["failed"] == 0 and m["comparisons"]["tested"] > 0


def test_table_rejects_wrong_formulas(run_dir):
    """The run's own rows, judged at the run's threshold against the other update's law
    (E[var_mean], Var[mu]) and the plug-in chain against the unbiased estimator's E log s2,
    fail: the table can tell the regimes apart at these sizes."""
    p, out = run_dir
    assert p.returncode == 0, p.stderr[-3000:]
    comps = list(csv.DictReader(open(out / "comparisons.csv")))
    assert comps and all(c["verdict"] in ("ok", "n/a") for c in comps)
    z_crit = json.load(open(out / "manifest.json"))["z_threshold"]
    other = {LABELS[0]: "sequential", LABELS[1]: "refit"}
    wrong = [
        (label, "E[var_mean]", lambda n, u=u: _theory(u, "var", n)) for label, u in other.items()
    ] + [
        (LABELS[0], "Var[mu]", lambda n: _theory("sequential", "mean_var", n)),
        (LABELS[2], "E[log s2]", lambda n: tg.log_variance_mean(n, M, "unbiased")),
    ]
    for label, statistic, formula in wrong:
        rows = [
            c
            for c in comps
            if c["statistic"] == statistic and c["verdict"] == "ok" and c["config"] == label
        ]
        assert rows, (statistic, label)
        z = [
            (float(c["empirical"]) - float(formula(int(c["generation"])))) / float(c["se"])
            for c in rows
        ]
        assert max(abs(x) for x in z) > z_crit, (statistic, label, z)


# ----------------------------------------------------------------------------- refusals

FV = common.define_flags(
    bayes_report.StudyConfig,
    output_dir="out/unused",
    module_name="test_bayes_experiment",
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
        (["--num_chains=1"], "--num_chains=1: need at least 2 chains"),
        (["--generations=0"], "--generations=0"),
        (["--sample_sizes=1"], "--sample_sizes=1: a fit needs M >= 2 points"),
        (["--updates=online"], "--updates=online: choose from refit, sequential"),
        (["--predictives=plugin"], "--predictives=plugin: choose from joint, student_t"),
        (["--alpha0=0"], "--alpha0=0: must be finite and > 0"),
        (["--kappa0=nan"], "--kappa0=nan: must be a finite number"),
        (["--beta0=-1"], "--beta0=-1: must be finite and > 0"),
        (["--real_sd=inf"], "--real_sd=inf"),
        (["--mu0=inf"], "--mu0=inf"),
    ],
)
def test_bad_flags_one_line_error_before_compiling(args, shown, capsys):
    FV.unparse_flags()
    with pytest.raises(SystemExit) as e:
        FV(["prog", *args])
        common.run_cli(
            ["prog"],
            FV,
            lambda: bayes_report.validate(common.config_from_flags(FV, bayes_report.StudyConfig)),
            _NeverRun(),
        )
    assert e.value.code == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1 and shown in lines[0], err
