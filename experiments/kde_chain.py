r"""The KDE chain: a Gaussian kernel density estimate refitted to its own samples (K1).

Runs C independent chains of recursive KDE fitting (store the M points drawn from
the previous fit, with a fixed bandwidth or Scott's / Silverman's rule) for G
generations, for each sample size M, and a fixed bandwidth under accumulate;
prints a theory-versus-simulation table (E variance, E mean, Var mean against
``theory.kde``) and writes figures, a summary CSV, per-chain final values and a
manifest to ``--output_dir``. The variance grows: the opposite of collapse.

    python -m experiments.kde_chain                       # defaults
    python -m experiments.kde_chain --sample_sizes=10,50 --bandwidth=0.2
    python -m experiments.kde_chain --check               # exit 1 if theory and simulation disagree

This file is kept short on purpose: the flags are made from
:class:`experiments.kde_report.StudyConfig`, the study is
:func:`experiments.kde_report.run_study` (importable from a notebook), the engine
is ``sim`` (family ``kde``) and the closed forms are ``theory.kde``.
"""

from __future__ import annotations

from experiments import common, kde_report
from experiments.kde_report import StudyConfig, validate

FLAGS = common.define_flags(StudyConfig, output_dir="out/kde_chain", module_name=__name__)


def config_from_flags() -> StudyConfig:
    return common.config_from_flags(FLAGS, StudyConfig)


def main(argv):
    common.run_cli(argv, FLAGS, lambda: validate(config_from_flags()), kde_report)


if __name__ == "__main__":
    common.run_main(main, FLAGS)
