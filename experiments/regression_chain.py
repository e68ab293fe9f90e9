r"""The regression chain: OLS and ridge refitted to their own labels, under three data regimes.

Each generation draws T rows with labels from the previous fit (generation 0:
the true weights) and refits; ``replace`` trains on the newest rows only,
``accumulate`` on every row so far, ``subsample`` on ``--budget`` rows drawn
from every row so far. The study sets the mean test error
:math:`\lVert\hat w_n - w^*\rVert^2` beside its closed form (Dohmatob et al.
2024; Gerstgrasser et al. 2024; :mod:`theory.regression`), prints a
theory-versus-simulation table and writes figures, CSVs, per-chain final
weights and a manifest to ``--output_dir``.

    python -m experiments.regression_chain                # defaults, ~30-60 s on 2 CPU cores
    python -m experiments.regression_chain --sizes=10:50,20:40 --ridge_designs=fresh,fixed
    python -m experiments.regression_chain --sizes=5:20 --designs=fixed --ridge=2 --x64
    python -m experiments.regression_chain --check        # exit 1 on a disagreement

The flags are made from :class:`experiments.regression_report.StudyConfig`;
the study is :func:`experiments.regression_report.run_study` (importable from
a notebook); the engine is ``sim`` and the closed forms are
``theory.regression``.
"""

from __future__ import annotations

from experiments import common, regression_report
from experiments.regression_report import StudyConfig, validate

FLAGS = common.define_flags(StudyConfig, output_dir="out/regression_chain", module_name=__name__)


def config_from_flags() -> StudyConfig:
    return common.config_from_flags(FLAGS, StudyConfig)


def main(argv):
    common.run_cli(argv, FLAGS, lambda: validate(config_from_flags()), regression_report)


if __name__ == "__main__":
    common.run_main(main, FLAGS)
