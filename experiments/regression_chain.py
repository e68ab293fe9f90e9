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

The study is :func:`experiments.regression_report.run_study` (importable from
a notebook); the engine is ``sim`` and the closed forms are
``theory.regression``.
"""

from __future__ import annotations

from absl import app, flags

from experiments import common
from experiments.regression_report import StudyConfig, parse_sizes, validate

FLAGS = flags.FLAGS
flags.DEFINE_list("sizes", ["10:50"], "Pairs d:T (weights, rows per generation), a list.")
flags.DEFINE_float("noise", 1.0, "Label-noise standard deviation sigma.")
flags.DEFINE_float("ridge", 10.0, "Ridge penalty lambda of the ridge runs (0: OLS runs only).")
flags.DEFINE_list("designs", ["fresh", "fixed"], "Designs of the OLS runs: fresh, fixed.")
flags.DEFINE_list(
    "ridge_designs",
    ["fixed"],
    "Designs of the ridge runs (fresh has no closed form; fixed is tested given X).",
)
flags.DEFINE_list("regimes", ["replace", "accumulate", "subsample"], "Data regimes.")
flags.DEFINE_integer("budget", 0, "Rows per fit of the subsample regime (0: T).")
flags.DEFINE_integer("num_chains", 4000, "Independent chains per configuration (C).")
flags.DEFINE_integer(
    "subsample_chains", 1000, "Chains per subsample run (each stores every row: O(T G))."
)
flags.DEFINE_integer("generations", 20, "Number of fits per chain (G).")
flags.DEFINE_integer("design_seed", 0, "Seed of the fixed design matrix X.")
flags.DEFINE_integer("seed", 0, "Root seed; every chain's path depends on it and its index.")
flags.DEFINE_bool("x64", False, "Simulate in float64 (theory is always float64).")
flags.DEFINE_string("output_dir", "out/regression_chain", "Where figures and data go.")
flags.DEFINE_bool("check", False, "Exit with status 1 if any testable comparison fails.")
flags.DEFINE_float(
    "false_failure_rate",
    1e-3,
    "Family-wise false-failure rate of the comparison table (Bonferroni over its testable rows).",
)
flags.DEFINE_string("prng_impl", "philox4x32", "PRNG: philox4x32 or threefry2x32.")
flags.DEFINE_integer(
    "chunk_chains", None, "Chains per compiled call (results do not depend on it)."
)
flags.DEFINE_bool("progress", True, "Show progress bars.")


def _names(flags_obj, name):
    return tuple(v.strip().lower() for v in flags_obj[name].value)


def config_from_flags() -> StudyConfig:
    convert = {n: _names for n in ("designs", "ridge_designs", "regimes")}
    convert["sizes"] = parse_sizes
    return common.config_from_flags(FLAGS, StudyConfig, convert)


def main(argv):
    from experiments import regression_report

    common.run_cli(argv, FLAGS, lambda: validate(config_from_flags()), regression_report)


if __name__ == "__main__":
    app.run(main)
