r"""The categorical chain: tail tokens going extinct, diversity loss, sampling bias.

A categorical distribution over a vocabulary of K tokens is refitted each
generation to the empirical frequencies of M tokens drawn from the previous
fit: the neutral Wright-Fisher model. The study prints a theory-versus-
simulation table and writes figures, CSVs, per-chain final states and a
manifest to ``--output_dir``.

    python -m experiments.categorical_chain                # defaults, ~1 min on 2 CPU cores
    python -m experiments.categorical_chain --num_categories=100000 --sample_size=10000 \
        --num_chains=256 --generations=50 --bias_chains=0 --absorption_chains=0   # 50 s, 1.3 GB
    python -m experiments.categorical_chain --check        # exit 1 on a disagreement

The flags are made from :class:`experiments.categorical_report.StudyConfig`;
the study is :func:`experiments.categorical_report.run_study` (importable from
a notebook); the engine is ``sim`` and the closed forms are
``theory.categorical``.
"""

from __future__ import annotations

from experiments import categorical_report, common
from experiments.categorical_report import StudyConfig, validate

FLAGS = common.define_flags(StudyConfig, output_dir="out/categorical_chain", module_name=__name__)


def config_from_flags() -> StudyConfig:
    return common.config_from_flags(FLAGS, StudyConfig)


def main(argv):
    common.run_cli(argv, FLAGS, lambda: validate(config_from_flags()), categorical_report)


if __name__ == "__main__":
    common.run_main(main, FLAGS)
