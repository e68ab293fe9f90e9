r"""The Gaussian-mixture chain: EM refits of a K-component mixture (Shumailov et al. 2024).

Runs C independent chains of recursive mixture fitting (EM from the previous
fit on M samples of it) for G generations, beside the one-component
(Gaussian) reference chain, prints a table of the moments that are exact for
any K (the mixture's total covariance and mean) and, for K = 1, the Gaussian
law of log det, and writes figures (the L2 distance to the real density, the
component weights and the fraction of chains that lost one, the variance
beside the single-Gaussian theory), a summary CSV, per-chain final fits and a
manifest to ``--output_dir``. No closed form is known for the components
themselves.

    python -m experiments.gmm_chain                      # defaults: K=2, d=2, M=1000, G=2000
    python -m experiments.gmm_chain --dim=1 --num_chains=400
    python -m experiments.gmm_chain --check              # exit 1 if theory and simulation disagree

This file is kept short on purpose: the flags are made from
:class:`experiments.gmm_report.StudyConfig`, the study is
:func:`experiments.gmm_report.run_study` (importable from a notebook), the
engine is ``sim`` (family ``gmm``) and the closed forms are ``theory.gaussian``
and ``theory.multivariate``.
"""

from __future__ import annotations

from experiments import common, gmm_report
from experiments.gmm_report import StudyConfig, validate

FLAGS = common.define_flags(StudyConfig, output_dir="out/gmm_chain", module_name=__name__)


def config_from_flags() -> StudyConfig:
    return common.config_from_flags(FLAGS, StudyConfig)


def main(argv):
    common.run_cli(argv, FLAGS, lambda: validate(config_from_flags()), gmm_report)


if __name__ == "__main__":
    common.run_main(main, FLAGS)
