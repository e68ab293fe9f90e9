"""The multivariate-chain experiment end to end, its refusals and the power of its table.

The command line runs in a subprocess with tiny flags and ``--check`` (the
experiments define absl flags of the same names, so they never share a process);
the refusals run its CLI body in process on FlagValues of their own, with a study
module that must not be reached. The table's power is shown on the run's own
comparisons: the same rows judged against the other estimator's law (E log det,
E tr Sigma) and the accumulate chain's trace against the replace chain's law fail
at the run's own threshold. ``trace_cv2`` (the testability rule for E tr Sigma)
is checked exactly at d = 1 (THEORY.md G2) and against a Monte-Carlo run at d = 3.
"""

import csv
import json

import numpy as np
import pytest
from absl import flags

from experiments import common, multivariate_report
from tests.devices import run_module
from theory import multivariate as tm

pytestmark = pytest.mark.e2e

FIGURES = ("log_det", "spectrum", "moments")
D, M, CHAINS, GENERATIONS = 2, 8, 2000, 10
SUB_CHAINS, SUB_GENERATIONS = 400, 6
TINY = [
    f"--sizes={D}:{M}",
    f"--num_chains={CHAINS}",
    f"--generations={GENERATIONS}",
    "--regimes=replace,accumulate,subsample",
    f"--subsample_chains={SUB_CHAINS}",
    f"--subsample_generations={SUB_GENERATIONS}",
    "--progress=false",
]
LABELS = {
    (est, regime): multivariate_report.label_of(D, M, est, regime)
    for est in ("mle", "unbiased")
    for regime in ("replace", "accumulate", "subsample")
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multivariate")
    out = tmp / "out"
    p = run_module("experiments.multivariate_chain", [*TINY, f"--output_dir={out}", "--check"], tmp)
    return p, out


def test_end_to_end_tiny(run_dir):
    p, out = run_dir
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "E[log det Sigma]" in p.stdout and "comparisons tested" in p.stdout
    for name in FIGURES:
        for ext in ("png", "pdf"):
            assert (out / f"{name}.{ext}").stat().st_size > 1000
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert {r["config"] for r in rows} == set(LABELS.values())
    for est in ("mle", "unbiased"):
        mine = [r for r in rows if r["config"] == LABELS[est, "replace"]]
        n = np.array([int(r["generation"]) for r in mine])
        assert list(n) == list(range(GENERATIONS + 1))
        for column, formula in (
            ("theory_log_det_mean", tm.log_det_mean),
            ("theory_trace_mean", tm.expected_trace),
            ("theory_mean_sq_error_mean", tm.mean_sq_error),
        ):
            got = [float(r[column]) for r in mine]
            np.testing.assert_allclose(got, formula(n, M, D, est), rtol=1e-12, atol=1e-12)
        # the spectrum's columns multiply to the determinant, chain by chain at the end
        npz = np.load(out / "final_states.npz")
        key = LABELS[est, "replace"].replace(" ", "_")
        eig, log_det = npz[f"{key}/eigenvalues"], npz[f"{key}/log_det"]
        assert eig.shape == (CHAINS, D) and np.all(np.diff(eig, axis=-1) >= 0)
        np.testing.assert_allclose(np.log(eig).sum(-1), log_det, rtol=1e-4, atol=1e-4)
    sub = np.load(out / "final_states.npz")[f"{LABELS['mle', 'subsample'].replace(' ', '_')}/trace"]
    assert sub.shape == (SUB_CHAINS,) and np.all(np.isfinite(sub))
    m = json.load(open(out / "manifest.json"))
    assert m["experiment"] == "multivariate_chain" and m["config"]["num_chains"] == CHAINS
    assert set(m["timings"]) == set(LABELS.values())
    assert m["comparisons"]["failed"] == 0 and m["comparisons"]["tested"] > 0


def test_table_rejects_wrong_formulas(run_dir):
    """The run's own rows, judged at the run's threshold against the other estimator's
    E log det and E tr Sigma, and the accumulate chain's E tr Sigma against the replace
    chain's law, fail: the table tells the estimators and regimes apart at these sizes."""
    p, out = run_dir
    assert p.returncode == 0, p.stderr[-3000:]
    comps = list(csv.DictReader(open(out / "comparisons.csv")))
    assert comps and all(c["verdict"] in ("ok", "n/a") for c in comps)
    z_crit = json.load(open(out / "manifest.json"))["z_threshold"]
    other = {"mle": "unbiased", "unbiased": "mle"}
    wrong = (
        [
            (
                LABELS[est, "replace"],
                "E[log det Sigma]",
                lambda n, e=other[est]: tm.log_det_mean(n, M, D, e),
            )
            for est in other
        ]
        + [
            (
                LABELS[est, "replace"],
                "E[tr Sigma]",
                lambda n, e=other[est]: tm.expected_trace(n, M, D, e),
            )
            for est in other
        ]
        + [
            (
                LABELS["mle", "accumulate"],
                "E[tr Sigma]",
                lambda n: tm.expected_trace(n, M, D, "mle"),
            ),
        ]
    )
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


@pytest.mark.unit
def test_trace_cv2_exact_at_d1_and_by_monte_carlo():
    """At d = 1, CV^2 of tr Sigma_n = ((M+1)/(M-1))^n - 1 (THEORY.md G2); at d = 3 the
    recursion against 20,000 Wishart chains (CV^2 of the trace, se by the delta method,
    at the shared false-failure rate), and a wrong recursion (d = 1's) rejected."""
    from tests.stats import assert_agree, assert_rejects

    for m in (3, 10, 100):
        for n in (0, 1, 5, 20):
            want = ((m + 1) / (m - 1)) ** n - 1
            np.testing.assert_allclose(multivariate_report.trace_cv2(n, 1, m), want, rtol=1e-12)
    d, m, n, c = 3, 10, 4, 20000
    rng = np.random.default_rng(4)
    sigma = np.broadcast_to(np.eye(d), (c, d, d)).copy()
    for _ in range(n):  # Sigma' = L W L^T / (M - 1), W ~ Wishart_d(M - 1, I)
        chol = np.linalg.cholesky(sigma)
        z = rng.standard_normal((c, m - 1, d))
        w = np.einsum("cki,ckj->cij", z, z)
        sigma = chol @ w @ np.swapaxes(chol, -1, -2) / (m - 1)
    tr = np.trace(sigma, axis1=-2, axis2=-1)
    mu, var = tr.mean(), tr.var(ddof=1)
    cv2 = var / mu**2
    # delta method for var/mu^2 from the sample's central moments
    x = tr - mu
    m3, m4 = np.mean(x**3), np.mean(x**4)
    grad = np.array([-2 * var / mu**3, 1 / mu**2])
    cov = np.array([[var, m3], [m3, m4 - var**2]]) / c
    se = float(np.sqrt(grad @ cov @ grad))
    assert_agree(cv2, se, multivariate_report.trace_cv2(n, d, m), "CV^2 tr, d = 3")
    assert_rejects(cv2, se, multivariate_report.trace_cv2(n, 1, m), "d = 1 recursion at d = 3")


# ----------------------------------------------------------------------------- refusals

FV = common.define_flags(
    multivariate_report.StudyConfig,
    output_dir="out/unused",
    module_name="test_multivariate_experiment",
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
        (["--sizes=5:5"], "--sizes=5:5: need M > d"),
        (["--sizes=0:5"], "--sizes=0:5: the dimension d must be >= 1"),
        (["--estimators=ridge"], "--estimators=ridge: choose from"),
        (["--regimes=fresh"], "--regimes=fresh: choose from"),
        (["--method=fast"], "--method=fast: choose from"),
        (["--regimes=subsample", "--sizes=3:10", "--budget=3"], "--budget=3: a subsample"),
        (["--regimes=subsample", "--sizes=3:10", "--budget=11"], "--budget=11: at most M = 10"),
        (["--subsample_generations=0"], "--subsample_generations=0"),
    ],
)
def test_bad_flags_one_line_error_before_compiling(args, shown, capsys):
    FV.unparse_flags()
    with pytest.raises(SystemExit) as e:
        FV(["prog", *args])
        common.run_cli(
            ["prog"],
            FV,
            lambda: multivariate_report.validate(
                common.config_from_flags(FV, multivariate_report.StudyConfig)
            ),
            _NeverRun(),
        )
    assert e.value.code == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1 and shown in lines[0], err
