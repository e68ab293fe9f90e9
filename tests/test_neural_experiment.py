"""The neural-chain experiment end to end with tiny flags, its refusals, its table's power.

The command line runs in a subprocess (experiments define absl flags of the same names);
the refusals run its CLI body in process on FlagValues of their own. The table's power:
the run's own fit-1 survival rows, judged against the iid formula 1 - (1 - p)^N on
the unigram marginal (what a categorical chain with N tokens would predict), fail.
"""

import csv
import json

import numpy as np
import pytest
from absl import flags

from experiments import common, neural_report
from tests.devices import run_module

pytestmark = pytest.mark.e2e

CHAINS, GENERATIONS = 24, 3
TINY = [
    f"--num_chains={CHAINS}",
    f"--generations={GENERATIONS}",
    "--regimes=replace,fresh",
    "--vocab_size=8",
    "--seq_len=12",
    "--sample_size=24",
    "--steps=10",
    "--hidden=16",
    "--embed=8",
    "--progress=false",
]
FIGURES = ("perplexity", "survival", "nll_histograms")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("neural")
    out = tmp / "out"
    p = run_module("experiments.neural_chain", [*TINY, f"--output_dir={out}", "--check"], tmp)
    return p, out


def test_end_to_end_tiny(run_dir):
    p, out = run_dir
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "held-out CE" in p.stdout and "comparisons tested" in p.stdout
    for name in FIGURES:
        for ext in ("png", "pdf"):
            assert (out / f"{name}.{ext}").stat().st_size > 1000
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert len(rows) == 2 * (GENERATIONS + 1)
    assert {r["config"] for r in rows} == {"replace", "fresh(alpha=0.1)"}
    first = rows[0]
    assert float(first["kl_mean"]) < 1e-5  # generation 0 is the source
    assert float(first["token_survival_b0_mean"]) == 1.0
    npz = np.load(out / "final_states.npz")
    assert npz["replace/perplexity"].shape == (GENERATIONS + 1, CHAINS)
    m = json.load(open(out / "manifest.json"))
    assert m["experiment"] == "neural_chain" and m["config"]["num_chains"] == CHAINS
    assert m["comparisons"]["failed"] == 0 and m["comparisons"]["tested"] > 0


def test_table_rejects_the_iid_survival_formula(run_dir):
    """Fit-1 token survival against 1 - (1 - p_i)^N with N = M x L iid tokens: wrong
    for a Markov corpus of M sequences (and for the BOS start); some row must fail."""
    from sim import families
    from sim.families.neural.record import record_constants
    from sim.families.neural.source import markov_source
    from sim.families.neural.spec import config as neural_config

    p, out = run_dir
    assert p.returncode == 0, p.stderr[-3000:]
    comps = list(csv.DictReader(open(out / "comparisons.csv")))
    z_crit = json.load(open(out / "manifest.json"))["z_threshold"]
    cfg_study = neural_report.StudyConfig(vocab_size=8, seq_len=12, sample_size=24)
    s = families.get("neural").settings(**neural_report.family_settings(cfg_study))
    cfg = neural_config(s)
    src = markov_source(cfg.vocab_size, cfg.order, cfg.zipf, cfg.support, cfg.source_seed)
    c = record_constants(cfg, s["sample_size"], s["holdout"])
    iid = 1 - (1 - src.unigram) ** (s["sample_size"] * s["seq_len"])
    z = []
    for row in comps:
        if row["statistic"].startswith("token_survival") and row["verdict"] == "ok":
            b = int(row["statistic"].split()[2])
            wrong = iid[c.token_bucket == b].mean()
            z.append((float(row["empirical"]) - wrong) / max(float(row["se"]), 1e-6))
    # the bigram rows, against independent tokens: P(bigram ab) = p_a p_b
    big = np.outer(src.unigram, src.unigram).reshape(-1)
    iid_big = 1 - (1 - big) ** (s["sample_size"] * (s["seq_len"] - 1))
    for row in comps:
        if row["statistic"].startswith("bigram_survival") and row["verdict"] == "ok":
            b = int(row["statistic"].split()[2])
            wrong = iid_big[c.bigram_bucket == b].mean()
            z.append((float(row["empirical"]) - wrong) / max(float(row["se"]), 1e-6))
    assert z and max(abs(x) for x in z) > z_crit, z


FV = common.define_flags(
    neural_report.StudyConfig,
    output_dir="out/unused",
    module_name="test_neural_experiment",
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
        ("--regimes=replace,anchor", "--regimes=anchor"),
        ("--alpha=1.5", "--alpha=1.5"),
        ("--order=3", "--order=3"),
        ("--context=1", "--context=1"),
        ("--model=rnn", "--model='rnn'"),
        ("--num_chains=0", "--num_chains=0"),
        ("--top_p=2", "--top_p=2"),
    ],
)
def test_bad_flags_one_line_error_before_compiling(flag, shown, capsys):
    FV.unparse_flags()
    with pytest.raises(SystemExit) as e:
        FV(["prog", flag])
        common.run_cli(
            ["prog"],
            FV,
            lambda: neural_report.validate(common.config_from_flags(FV, neural_report.StudyConfig)),
            _NeverRun(),
        )
    assert e.value.code == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1 and shown in lines[0], err
