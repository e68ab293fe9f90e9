r"""The Bayesian chain: a conjugate NIG posterior refitted to draws of its predictive.

Runs C chains for G generations for each sample size M, update (refit from the
prior: regime (a); sequential updating: regime (b)) and predictive (joint or
Student-t), beside the plug-in MLE Gaussian chain, prints a theory-versus-simulation
table (``theory.bayes``) and writes figures, a summary CSV, per-chain finals and a
manifest to ``--output_dir``.

    python -m experiments.bayes_chain                     # defaults
    python -m experiments.bayes_chain --alpha0=3 --beta0=4 --sample_sizes=10,50
    python -m experiments.bayes_chain --check             # exit 1 if theory and simulation disagree

This file is kept short on purpose: the flags are made from
:class:`experiments.bayes_report.StudyConfig`, the study is
:func:`experiments.bayes_report.run_study`, the engine is ``sim`` (family
``bayes``) and the closed forms are ``theory.bayes``.
"""

from __future__ import annotations

from experiments import bayes_report, common
from experiments.bayes_report import StudyConfig, validate

FLAGS = common.define_flags(StudyConfig, output_dir="out/bayes_chain", module_name=__name__)


def config_from_flags() -> StudyConfig:
    return common.config_from_flags(FLAGS, StudyConfig)


def main(argv):
    common.run_cli(argv, FLAGS, lambda: validate(config_from_flags()), bayes_report)


if __name__ == "__main__":
    common.run_main(main, FLAGS)
