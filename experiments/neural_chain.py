r"""Neural chains: small flax language models trained with optax on their own text.

Runs C chains per regime of the ``neural`` family (a window MLP or a small causal
transformer over a synthetic Markov language with a known law), G generations each,
prints the table of what has theory (the source's entropy rate, token and bigram
survival at fit 1) and writes figures (perplexity on real text and exact KL to the
source against generation, with bands across chains; rare-token survival beside the
categorical chain's; per-sequence log-likelihood histograms), a summary CSV, per-chain
arrays and a manifest to ``--output_dir``.

    python -m experiments.neural_chain                      # defaults (replace, 10% fresh)
    python -m experiments.neural_chain --regimes=replace,fresh,accumulate --warm
    python -m experiments.neural_chain --model=transformer --check

This file is kept short on purpose: the flags are made from
:class:`experiments.neural_report.StudyConfig`, the study is
:func:`experiments.neural_report.run_study`.
"""

from __future__ import annotations

from experiments import common, neural_report
from experiments.neural_report import StudyConfig, validate

FLAGS = common.define_flags(StudyConfig, output_dir="out/neural_chain", module_name=__name__)


def config_from_flags() -> StudyConfig:
    return common.config_from_flags(FLAGS, StudyConfig)


def main(argv):
    common.run_cli(argv, FLAGS, lambda: validate(config_from_flags()), neural_report)


if __name__ == "__main__":
    common.run_main(main, FLAGS)
