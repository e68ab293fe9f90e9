r"""The 1-D Gaussian chain: simulation against closed-form theory.

Runs C independent chains of recursive Gaussian fitting for G generations,
for each sample size M and variance estimator, prints a theory-versus-
simulation table and writes figures, CSVs, per-chain final states and a
manifest to ``--output_dir``.

    python -m experiments.gaussian_chain                  # defaults, ~1 min on 2 CPU cores
    python -m experiments.gaussian_chain --method=exact --num_chains=1000000
    python -m experiments.gaussian_chain --check          # exit 1 if theory and simulation disagree

This file is kept short on purpose: the study is :func:`run_study` (importable
from a notebook), the engine is ``sim`` and the closed forms are ``theory``.
"""

from __future__ import annotations

import dataclasses
import math

from absl import app, flags

from experiments import common, gaussian_report

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_chains", 10_000, "Independent chains per configuration (C).")
flags.DEFINE_integer("generations", 500, "Number of fits per chain (G).")
flags.DEFINE_list("sample_sizes", ["10", "100"], "Samples per generation (M), a list.")
flags.DEFINE_list("estimators", ["mle", "unbiased"], "Variance estimators: mle, unbiased.")
flags.DEFINE_string(
    "method",
    "sample",
    "sample: draw M samples and refit; exact: draw "
    "the sufficient statistics (same Markov chain, O(1) in M).",
)
flags.DEFINE_integer("seed", 0, "Root seed; every chain's path depends on it and its index.")
flags.DEFINE_float("tail_k", 2.0, "Tail masses are measured beyond tail_k real std devs.")
flags.DEFINE_float("collapse_eps", 1e-6, "A chain is collapsed when sigma^2 < eps sigma0^2.")
flags.DEFINE_bool("x64", False, "Simulate in float64 (theory is always float64).")
flags.DEFINE_string("output_dir", "out/gaussian_chain", "Where figures and data go.")
flags.DEFINE_bool("check", False, "Exit with status 1 if any testable comparison fails.")
flags.DEFINE_float(
    "false_failure_rate",
    1e-3,
    "Family-wise false-failure rate of the comparison table (Bonferroni over its testable rows).",
)
flags.DEFINE_string(
    "prng_impl",
    "philox4x32",
    "PRNG: philox4x32 (fastest on CPU, measured in bench/) or threefry2x32 (JAX's default).",
)
flags.DEFINE_integer(
    "chunk_chains",
    None,
    "Chains per compiled call (default: automatic). Results do not depend on it.",
)
flags.DEFINE_bool("progress", True, "Show progress bars.")


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """Everything that determines a Gaussian-chain study's numbers."""

    num_chains: int = 10_000
    generations: int = 500
    sample_sizes: tuple[int, ...] = (10, 100)
    estimators: tuple[str, ...] = ("mle", "unbiased")
    method: str = "sample"
    seed: int = 0
    tail_k: float = 2.0
    collapse_eps: float = 1e-6
    x64: bool = False
    false_failure_rate: float = 1e-3
    prng_impl: str = "philox4x32"
    chunk_chains: int | None = None


PRNG_IMPLS = ("philox4x32", "threefry2x32")


def validate(config: StudyConfig) -> StudyConfig:
    """Raises ValueError('--flag=value: reason') for the first bad setting."""

    def bad(flag, value, why):
        raise ValueError(f"--{flag}={value}: {why}")

    if config.num_chains < 1:
        bad("num_chains", config.num_chains, "need at least 1 chain")
    if config.generations < 1:
        bad("generations", config.generations, "need at least 1 generation")
    if not config.sample_sizes:
        bad("sample_sizes", "", "give at least one sample size")
    for m in config.sample_sizes:
        if m < 2:
            bad("sample_sizes", m, "a variance needs M >= 2 samples")
    if not config.estimators:
        bad("estimators", "", "give at least one of mle, unbiased")
    for e in config.estimators:
        if e not in ("mle", "unbiased"):
            bad("estimators", e, "unknown estimator (choose mle or unbiased)")
    if config.method not in ("sample", "exact"):
        bad("method", config.method, "choose sample or exact")
    if not (config.tail_k >= 0 and math.isfinite(config.tail_k)):
        bad("tail_k", config.tail_k, "must be a finite number >= 0")
    if not (0 < config.collapse_eps and math.isfinite(config.collapse_eps)):
        bad("collapse_eps", config.collapse_eps, "must be a finite number > 0")
    if not 0 < config.false_failure_rate < 1:
        bad("false_failure_rate", config.false_failure_rate, "must be in (0, 1)")
    if config.prng_impl not in PRNG_IMPLS:
        bad("prng_impl", config.prng_impl, f"choose one of {', '.join(PRNG_IMPLS)}")
    if config.chunk_chains is not None and config.chunk_chains < 1:
        bad("chunk_chains", config.chunk_chains, "must be >= 1")
    return config


def config_from_flags() -> StudyConfig:
    return common.config_from_flags(
        FLAGS,
        StudyConfig,
        {
            "sample_sizes": common.parse_list,
            "estimators": lambda fl, name: tuple(e.strip().lower() for e in fl[name].value),
        },
    )


def main(argv):

    common.run_cli(argv, FLAGS, lambda: validate(config_from_flags()), gaussian_report)


if __name__ == "__main__":
    app.run(main)
