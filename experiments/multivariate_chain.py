r"""The multivariate Gaussian chain: a full-covariance Gaussian refitted to its own samples.

Runs C independent chains of recursive fitting (the sample mean and the MLE or
unbiased covariance of M points drawn from the previous fit; generation 0:
N(0, I_d)) for G generations, for every pair d:M, estimator and data regime
(replace, accumulate, accumulate-subsample); prints a theory-versus-simulation
table (E and Var of log det, E tr Sigma, E||mu - mu0||^2 against
``theory.multivariate``; under accumulate against d times
``theory.mixing.accumulate_moments``) and writes figures (log det against
theory, the eigenvalue spectrum over generations, trace, mean error and W2),
a summary CSV, per-chain final records and a manifest to ``--output_dir``.

    python -m experiments.multivariate_chain            # defaults: d:M = 3:10, 10:32, replace
    python -m experiments.multivariate_chain --sizes=31:100,100:316 --generations=300
    python -m experiments.multivariate_chain --regimes=replace,accumulate,subsample
    python -m experiments.multivariate_chain --check             # exit 1 on a disagreement

This file is kept short on purpose: the flags are made from
:class:`experiments.multivariate_report.StudyConfig`, the study is
:func:`experiments.multivariate_report.run_study` (importable from a notebook),
the engine is ``sim`` (family ``multivariate``) and the closed forms are
``theory.multivariate`` and ``theory.mixing``.
"""

from __future__ import annotations

from experiments import common, multivariate_report
from experiments.multivariate_report import StudyConfig, validate

FLAGS = common.define_flags(StudyConfig, output_dir="out/multivariate_chain", module_name=__name__)


def config_from_flags() -> StudyConfig:
    return common.config_from_flags(FLAGS, StudyConfig)


def main(argv):
    common.run_cli(argv, FLAGS, lambda: validate(config_from_flags()), multivariate_report)


if __name__ == "__main__":
    common.run_main(main, FLAGS)
