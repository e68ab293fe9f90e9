r"""The 1-D Gaussian chain: simulation against closed-form theory.

Runs C independent chains of recursive Gaussian fitting for G generations,
for each sample size M and variance estimator, prints a theory-versus-
simulation table and writes figures, CSVs, per-chain final states and a
manifest to ``--output_dir``.

    python -m experiments.gaussian_chain                  # defaults, ~1 min on 2 CPU cores
    python -m experiments.gaussian_chain --method=exact --num_chains=1000000
    python -m experiments.gaussian_chain --check          # exit 1 if theory and simulation disagree

This file is kept short on purpose: the flags are made from
:class:`experiments.gaussian_report.StudyConfig`, the study is
:func:`experiments.gaussian_report.run_study` (importable from a notebook),
the engine is ``sim`` and the closed forms are ``theory``.
"""

from __future__ import annotations

from experiments import common, gaussian_report
from experiments.gaussian_report import StudyConfig, validate

FLAGS = common.define_flags(StudyConfig, output_dir="out/gaussian_chain", module_name=__name__)


def config_from_flags() -> StudyConfig:
    return common.config_from_flags(FLAGS, StudyConfig)


def main(argv):
    common.run_cli(argv, FLAGS, lambda: validate(config_from_flags()), gaussian_report)


if __name__ == "__main__":
    common.run_main(main, FLAGS)
