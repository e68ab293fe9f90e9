r"""The Poisson chain: the refitted rate against its closed forms (a critical Galton-Watson).

Runs C independent chains of recursive Poisson fitting (the rate refitted by
the sample mean of M draws of the previous fit) for G generations, for each
sample size M and real rate lam0, prints a theory-versus-simulation table
(E rate, Var rate, P(extinct)) and writes figures, a summary CSV, per-chain
final rates and a manifest to ``--output_dir``.

    python -m experiments.poisson_chain                   # defaults
    python -m experiments.poisson_chain --sample_sizes=5,20 --rates=0.5,2.0
    python -m experiments.poisson_chain --check           # exit 1 if theory and simulation disagree

This file is kept short on purpose: the flags are made from
:class:`experiments.poisson_report.StudyConfig`, the study is
:func:`experiments.poisson_report.run_study` (importable from a notebook),
the engine is ``sim`` and the closed forms are ``theory.poisson``.
"""

from __future__ import annotations

from experiments import common, poisson_report
from experiments.poisson_report import StudyConfig, validate

FLAGS = common.define_flags(StudyConfig, output_dir="out/poisson_chain", module_name=__name__)


def config_from_flags() -> StudyConfig:
    return common.config_from_flags(FLAGS, StudyConfig)


def main(argv):
    common.run_cli(argv, FLAGS, lambda: validate(config_from_flags()), poisson_report)


if __name__ == "__main__":
    common.run_main(main, FLAGS)
