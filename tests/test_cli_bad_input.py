"""Bad input to every experiment CLI is refused before anything runs (issue 17).

Each row asserts the exit status (2) or the exception, that the one-line
message names the flag and its value, and that nothing was computed or written
first. Most rows run in process: the flags of each study are defined on a
FlagValues of their own (so the four CLIs' flags, which share names, never
meet), parsed, and handed to :func:`experiments.common.run_cli` with a study
module whose ``run_study`` fails the test if reached. A few rows per CLI run
the real command line in a subprocess (about 4 s of imports each) and assert
it printed nothing but the error line, wrote nothing, and ended well before
anything could have compiled.
"""

import dataclasses
import os
import stat
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from absl import flags

from experiments import (
    bayes_report,
    categorical_report,
    common,
    gaussian_report,
    gmm_report,
    kde_report,
    multivariate_report,
    neural_report,
    regression_report,
    remedies_report,
)
from tests.devices import ROOT, run_module

STUDIES = {
    "gaussian": gaussian_report,
    "categorical": categorical_report,
    "regression": regression_report,
    "remedies": remedies_report,
    "kde": kde_report,
    "gmm": gmm_report,
    "bayes": bayes_report,
    "neural": neural_report,
    "multivariate": multivariate_report,
}
MODULES = {
    "gaussian": "experiments.gaussian_chain",
    "categorical": "experiments.categorical_chain",
    "regression": "experiments.regression_chain",
    "remedies": "experiments.remedies",
    "kde": "experiments.kde_chain",
    "gmm": "experiments.gmm_chain",
    "bayes": "experiments.bayes_chain",
    "neural": "experiments.neural_chain",
    "multivariate": "experiments.multivariate_chain",
}
FLAG_VALUES = {
    name: common.define_flags(
        report.StudyConfig,
        output_dir="out/unused",
        module_name=f"test_{name}",
        flag_values=flags.FlagValues(),
    )
    for name, report in STUDIES.items()
}
BIG = "99999999999999999999"


class _NeverRun:
    """A study module whose run_study must not be reached."""

    def __init__(self, report):
        self.report = report

    def run_study(self, *a, **k):
        raise AssertionError("run_study reached with bad input")

    def write_outputs(self, *a, **k):
        raise AssertionError("write_outputs reached with bad input")


def _refusal(study: str, args: list, capsys) -> str:
    """Runs the study's CLI body in process on ``args``; returns its one error line."""
    fv = FLAG_VALUES[study]
    fv.unparse_flags()
    report = STUDIES[study]
    with pytest.raises(SystemExit) as e:
        try:
            fv(["prog", *args])
        except flags.Error as err:  # what common.run_main turns into the same line
            common.cli.refuse(common.cli.parse_error(err))
        common.run_cli(
            ["prog"],
            fv,
            lambda: report.validate(common.config_from_flags(fv, report.StudyConfig)),
            _NeverRun(report),
        )
    assert e.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --"), err
    return lines[0]


@pytest.fixture
def files(tmp_path):
    """Bad --probs_file inputs, and a file where a directory is expected."""
    d = tmp_path / "inputs"
    d.mkdir()
    np.save(d / "two_d.npy", np.full((2, 3), 1 / 6))
    np.save(d / "complex.npy", np.array([0.5, 0.5], dtype=complex))
    np.save(d / "bool.npy", np.array([True, False]))
    np.save(d / "one.npy", np.array([1.0]))
    (d / "a_file").write_text("x")
    return d


# (study, flags, what the message must contain): refused at the flags.
IN_PROCESS = [
    # huge integers, all four
    *[(s, [f"--num_chains={BIG}"], f"--num_chains={BIG}") for s in STUDIES],
    # seeds: sim.chain.check_seed's rule, all four
    *[(s, ["--seed=18446744073709551615"], "--seed=18446744073709551615") for s in STUDIES],
    *[(s, ["--seed=-1"], "--seed=-1") for s in STUDIES],
    ("regression", ["--design_seed=4294967296"], "--design_seed=4294967296"),
    # what cannot fit in memory, with an estimate and the alternative
    ("gaussian", ["--generations=1e10"], "--generations=10000000000: the study would need"),
    ("gaussian", ["--sample_sizes=100000000"], "--sample_sizes=100000000: the study would need"),
    ("regression", ["--generations=1e12"], "--generations=1000000000000: the study would need"),
    ("remedies", ["--phase_generations=1e11"], "--phase_generations=100000000000: the study"),
    # NaN, inf and overflowing shares
    ("remedies", ["--fresh_alpha=nan"], "--fresh_alpha=nan"),
    ("remedies", ["--fresh_alpha=inf"], "--fresh_alpha=inf"),
    ("remedies", ["--fresh_alpha=1e308"], "--fresh_alpha=1e+308"),
    ("remedies", ["--anchor_lam=nan"], "--anchor_lam=nan"),
    ("remedies", ["--anchor_lam=-inf"], "--anchor_lam=-inf"),
    ("remedies", ["--anchor_lam=1e308"], "--anchor_lam=1e+308"),
    ("remedies", ["--phase_alphas=0,nan"], "--phase_alphas=nan"),
    ("gaussian", ["--tail_k=inf"], "--tail_k=inf"),
    ("categorical", ["--temperatures=nan"], "--temperatures=nan"),
    ("regression", ["--noise=nan"], "--noise=nan"),
    # repeated list entries, refused as sim.sweep refuses repeated grid values
    ("gaussian", ["--sample_sizes=10,10"], "--sample_sizes=10: listed twice"),
    ("gaussian", ["--estimators=mle,MLE"], "--estimators=mle: listed twice"),
    ("categorical", ["--top_ks=5,5"], "--top_ks=5: listed twice"),
    ("regression", ["--sizes=10:50,10:50"], "--sizes=10:50: listed twice"),
    ("remedies", ["--regimes=replace,Replace"], "--regimes=replace: listed twice"),
    ("remedies", ["--phase_alphas=0.1,0.10"], "--phase_alphas=0.1: listed twice"),
    # one rule for parts that are switched off: their settings are checked too
    ("categorical", ["--bias_chains=0", "--top_ks=0"], "--top_ks=0"),
    ("categorical", ["--absorption_chains=0", "--absorption_categories=1"], "categories=1"),
    ("regression", ["--regimes=replace", "--sizes=8:20", "--budget=5"], "--budget=5"),
    ("remedies", ["--num_chains=0", "--fresh_alpha=0.01"], "--fresh_alpha=0.01"),
    # a --check with every part off would test nothing
    (
        "remedies",
        [
            "--num_chains=0",
            "--cat_chains=0",
            "--phase_chains=0",
            "--schedule_chains=0",
            "--verifier_chains=0",
            "--check",
        ],
        "--num_chains=0: every part is switched off",
    ),
    # flags absl cannot parse, in the same one-line form
    ("gaussian", ["--generations=2.5"], "--generations=2.5: not an integer"),
    ("regression", ["--x64=maybe"], "--x64=maybe"),
    # the KDE study (its own rows)
    ("kde", ["--bandwidth=nan"], "--bandwidth=nan"),
    ("kde", ["--bandwidth=0"], "--bandwidth=0: the bandwidth must be > 0"),
    ("kde", ["--rules=scott,Scott"], "--rules=scott: listed twice"),
    ("kde", ["--rules=epanechnikov"], "--rules=epanechnikov: choose from"),
    ("kde", ["--accumulate_generations=1e6"], "--accumulate_generations=1000000: the study"),
    ("kde", ["--noaccumulate", "--accumulate_generations=0"], "--accumulate_generations=0"),
    # the output directory
    ("gaussian", ["--output_dir="], "--output_dir=: empty"),
    ("categorical", ["--output_dir=/proc/no_such_dir"], "--output_dir=/proc/no_such_dir"),
    ("remedies", ["--output_dir=/proc/self/x/y"], "--output_dir=/proc/self/x/y"),
]


@pytest.mark.unit
@pytest.mark.parametrize("study, args, shown", IN_PROCESS)
def test_refused_in_process(study, args, shown, capsys):
    line = _refusal(study, args, capsys)
    assert shown in line, line


@pytest.mark.unit
@pytest.mark.parametrize(
    "name, why",
    [
        ("two_d.npy", "a 2-D array of shape (2, 3)"),
        ("complex.npy", "complex entries"),
        ("bool.npy", "boolean entries"),
        ("one.npy", "K must be >= 2"),
        ("", "a directory"),
        ("missing.npy", "no such file"),
    ],
)
def test_probs_file_refused(name, why, files, capsys):
    path = str(files / name) if name else str(files)
    line = _refusal("categorical", [f"--probs_file={path}"], capsys)
    assert f"--probs_file={path}: " in line and why in line, line


@pytest.mark.unit
def test_output_dir_that_is_a_file(files, capsys):
    path = str(files / "a_file")
    line = _refusal("regression", [f"--output_dir={path}"], capsys)
    assert line == f"error: --output_dir={path}: exists and is not a directory"


@pytest.mark.unit
def test_bad_output_dir_is_left_alone(tmp_path, capsys):
    """A bad flag beside a new output directory: the directory is not created."""
    out = tmp_path / "new"
    _refusal("gaussian", [f"--output_dir={out}", "--seed=-1"], capsys)
    assert not out.exists()


@pytest.mark.unit
def test_big_sample_size_fits_on_the_exact_path():
    cfg = gaussian_report.StudyConfig(sample_sizes=(100_000_000,), method="exact")
    assert gaussian_report.validate(cfg) is cfg
    with pytest.raises(ValueError, match="use --method=exact"):
        gaussian_report.validate(dataclasses.replace(cfg, method="sample"))


@pytest.mark.unit
def test_defaults_are_accepted():
    for report in STUDIES.values():
        cfg = report.StudyConfig()
        assert report.validate(cfg) is cfg


@pytest.mark.unit
def test_a_check_that_tested_nothing_fails(tmp_path, capsys):
    """Even when every row is 'not testable', --check exits 1 with a message."""
    row = common.Comparison("c", "s", 1, 1.0, 0.1, 1.0, testable=False)
    study = common.Study(None, [], [row], 3.0, "table", {})
    with pytest.raises(SystemExit) as e:
        common.finish(study, [], str(tmp_path), time.perf_counter(), check=True)
    assert e.value.code == 1
    assert "no comparison was tested" in capsys.readouterr().err
    common.finish(study, [], str(tmp_path), time.perf_counter(), check=False)  # no --check: 0


@pytest.mark.unit
@pytest.mark.parametrize("study", list(STUDIES))
def test_help_lists_every_flag(study):
    """--help (the main module's flags) shows the common and --distributed flags."""
    text = FLAG_VALUES[study].module_help(f"test_{study}")
    for name in (
        "--[no]distributed",
        "--coordinator_address",
        "--seed",
        "--output_dir",
        "--[no]check",
    ):
        assert name in text, name


# ----------------------------------------------------------------------------- outputs


@pytest.mark.unit
def test_files_honour_the_umask(tmp_path):
    from sim.io import atomic_write

    old = os.umask(0o022)
    try:
        atomic_write(str(tmp_path / "a.txt"), "x")
        os.umask(0o077)
        atomic_write(str(tmp_path / "b.txt"), b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(tmp_path / "b.txt").st_mode) == 0o600


@pytest.mark.unit
def test_figures_are_written_atomically(tmp_path, monkeypatch):
    from experiments.common import outputs

    used = []
    real = outputs.atomic_path

    def spy(path):
        used.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(outputs, "atomic_path", spy)
    old = os.umask(0o022)
    try:
        fig, axes = common.subplots(1, 1)
        axes[0, 0].plot([0, 1], [0, 1])
        paths = common.save_figure(fig, str(tmp_path), "f")
    finally:
        os.umask(old)
    assert used == ["f.png", "f.pdf"]
    assert sorted(os.listdir(tmp_path)) == ["f.pdf", "f.png"]  # no temporary left
    for p in paths:
        assert os.path.getsize(p) > 500 and stat.S_IMODE(os.stat(p).st_mode) == 0o644


@pytest.mark.multiprocess
def test_second_writer_of_one_output_dir_is_refused(tmp_path, capsys):
    """A study holds its output directory's lock; another is refused at once, the
    lock's owner keeps writing, and the same process may take the lock again."""
    out = tmp_path / "out"
    holder = textwrap.dedent(
        f"""
        import sys, time
        from experiments.common.outputs import output_lock
        with output_lock({str(out)!r}):
            print("held", flush=True)
            time.sleep(60)
        """
    )
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    p = subprocess.Popen(
        [sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )
    try:
        assert p.stdout.readline().strip() == "held"
        with pytest.raises(ValueError, match="another study is using this directory"):
            with common.output_lock(str(out)):
                pass
        fv = FLAG_VALUES["gaussian"]
        fv.unparse_flags()
        fv(["prog", f"--output_dir={out}", "--num_chains=10", "--generations=2"])
        report = gaussian_report
        with pytest.raises(SystemExit) as e:
            common.run_cli(
                ["prog"],
                fv,
                lambda: report.validate(common.config_from_flags(fv, report.StudyConfig)),
                _NeverRun(report),
            )
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert f"--output_dir={out}: another study is using this directory (pid {p.pid})" in err
    finally:
        p.kill()
        p.wait()
    with common.output_lock(str(out)), common.output_lock(str(out)):  # free, and nestable
        pass


# ----------------------------------------------------------------------------- subprocesses

# (study, flags, what stderr must contain): the real command line, a few per CLI.
SUBPROCESS = [
    *[(s, [f"--num_chains={BIG}"], f"--num_chains={BIG}") for s in STUDIES],
    ("gaussian", ["--generations=1e10"], "--generations=10000000000: the study would need"),
    ("gaussian", ["--sample_sizes=100000000"], "--method=exact"),
    ("categorical", ["--probs_file=/"], "--probs_file=/: a directory"),
    ("regression", ["--seed=18446744073709551615"], "--seed=18446744073709551615"),
    ("remedies", ["--fresh_alpha=nan"], "--fresh_alpha=nan"),
]


@pytest.mark.e2e
@pytest.mark.parametrize("study, args, shown", SUBPROCESS)
def test_refused_by_the_command_line(study, args, shown, tmp_path):
    out = tmp_path / "out"
    t = time.perf_counter()
    p = run_module(MODULES[study], [*args, f"--output_dir={out}"], tmp_path, timeout=300)
    wall = time.perf_counter() - t
    assert p.returncode == 2, p.stderr[-2000:]
    assert p.stdout == ""  # no progress line: nothing started
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --") and shown in lines[0], p.stderr
    assert not out.exists() and os.listdir(tmp_path) == []
    assert wall < 60  # imports only; a study's first compilation alone takes longer
