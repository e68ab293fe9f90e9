r"""Remedies for collapse: real data in the loop, growing samples, verification.

The 1-D Gaussian and the categorical chain under each data regime of
:mod:`sim.regimes` (replace, accumulate, subsample, fresh, anchored) side by
side; a phase diagram of the fresh-data chain over (alpha, M) with the F1
fixed point; sample-size schedules M_t = ceil(M0 t^p), where W2 stops
diverging; and a verifier that filters synthetic points. One
theory-versus-simulation table (a section per part), figures, CSVs,
per-chain final states and a manifest go to ``--output_dir``.

    python -m experiments.remedies              # defaults: every part
    python -m experiments.remedies --check      # exit 1 if theory and simulation disagree
    python -m experiments.remedies --cat_chains=0 --phase_chains=0   # skip parts

The flags are made from :class:`experiments.remedies_report.StudyConfig`; the
study is :func:`experiments.remedies_report.run_study` (importable from a
notebook); the engine is ``sim`` and the closed forms are ``theory``.
"""

from __future__ import annotations

from experiments import common, remedies_report
from experiments.remedies_report import StudyConfig, validate

FLAGS = common.define_flags(StudyConfig, output_dir="out/remedies", module_name=__name__)


def config_from_flags() -> StudyConfig:
    return common.config_from_flags(FLAGS, StudyConfig)


def main(argv):
    common.run_cli(argv, FLAGS, lambda: validate(config_from_flags()), remedies_report)


if __name__ == "__main__":
    common.run_main(main, FLAGS)
