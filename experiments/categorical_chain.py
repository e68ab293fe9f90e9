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

The study is :func:`experiments.categorical_report.run_study` (importable from
a notebook); the engine is ``sim`` and the closed forms are
``theory.categorical``.
"""

from __future__ import annotations

import functools

from absl import app, flags

from experiments import common
from experiments.categorical_report import StudyConfig, validate

FLAGS = flags.FLAGS
flags.DEFINE_enum("distribution", "zipf", ["zipf", "uniform"], "Real distribution.")
flags.DEFINE_integer("num_categories", 1000, "Vocabulary size K.")
flags.DEFINE_float("zipf_beta", 1.1, "Zipf exponent beta: p_i proportional to i^-beta.")
flags.DEFINE_string(
    "probs_file", None, "A probability vector (.npy or text) to use as the real distribution."
)
flags.DEFINE_integer("sample_size", 1000, "Tokens drawn per generation (M).")
flags.DEFINE_integer("num_chains", 2000, "Independent chains of the main run (C).")
flags.DEFINE_integer("generations", 300, "Number of fits per chain in the main run (G).")
flags.DEFINE_integer("tail_rank", None, "The tail is every category of rank > tail_rank (K/10).")
flags.DEFINE_integer("absorption_categories", 3, "Categories of the absorption run (top ranks).")
flags.DEFINE_integer("absorption_sample_size", 30, "M of the absorption run.")
flags.DEFINE_integer("absorption_chains", 10_000, "Chains of the absorption run (0: skip).")
flags.DEFINE_integer("absorption_generations", 600, "Generations of the absorption run.")
flags.DEFINE_list("temperatures", ["0.8", "1.25"], "Sampling temperatures of the bias part.")
flags.DEFINE_list("top_ks", ["100"], "top-k truncations of the bias part.")
flags.DEFINE_list("top_ps", ["0.9"], "top-p (nucleus) truncations of the bias part.")
flags.DEFINE_float("smoothing", 0.5, "Additive smoothing alpha of the bias part (0: skip).")
flags.DEFINE_integer("bias_chains", 500, "Chains per bias configuration (0: skip the part).")
flags.DEFINE_integer("bias_generations", 100, "Generations of the bias part.")
flags.DEFINE_integer("seed", 0, "Root seed; every chain's path depends on it and its index.")
flags.DEFINE_bool("x64", False, "Simulate in float64 (theory is always float64).")
flags.DEFINE_string("output_dir", "out/categorical_chain", "Where figures and data go.")
flags.DEFINE_bool("check", False, "Exit with status 1 if any testable comparison fails.")
flags.DEFINE_float(
    "false_failure_rate",
    1e-3,
    "Family-wise false-failure rate of the comparison table (Bonferroni over its testable rows).",
)
flags.DEFINE_enum("prng_impl", "philox4x32", ["philox4x32", "threefry2x32"], "PRNG implementation.")
flags.DEFINE_integer(
    "chunk_chains", None, "Chains per compiled call (results do not depend on it)."
)
flags.DEFINE_bool("progress", True, "Show progress bars.")


def config_from_flags() -> StudyConfig:
    lists = {"temperatures": float, "top_ks": int, "top_ps": float}
    convert = {name: functools.partial(common.parse_list, kind=k) for name, k in lists.items()}
    return common.config_from_flags(FLAGS, StudyConfig, convert)


def main(argv):
    from experiments import categorical_report

    common.run_cli(argv, FLAGS, lambda: validate(config_from_flags()), categorical_report)


if __name__ == "__main__":
    app.run(main)
