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

The study is :func:`experiments.remedies_report.run_study` (importable from a
notebook); the engine is ``sim`` and the closed forms are ``theory``.
"""

from __future__ import annotations

import functools

from absl import app, flags

from experiments import common
from experiments.remedies_report import KINDS, StudyConfig, validate

FLAGS = flags.FLAGS
_D = StudyConfig()
# side by side
flags.DEFINE_list("regimes", list(KINDS), "Regimes side by side (Gaussian and categorical).")
flags.DEFINE_string("estimator", _D.estimator, "Variance estimator: mle or unbiased.")
flags.DEFINE_string(
    "method",
    _D.method,
    "Draws where the regime allows a choice: sample (M points, refit) or exact (the "
    "sufficient statistics, O(1) in M but slower to compile). Subsample and verifiers "
    "always use points, schedules always exact.",
)
flags.DEFINE_integer("sample_size", _D.sample_size, "Gaussian samples per generation (M).")
flags.DEFINE_integer("num_chains", _D.num_chains, "Gaussian chains per regime (0: skip).")
flags.DEFINE_integer("generations", _D.generations, "Gaussian generations side by side.")
flags.DEFINE_integer(
    "subsample_chains",
    _D.subsample_chains,
    "Gaussian chains of the subsample regime (its pool costs O(M G) per chain and generation).",
)
flags.DEFINE_float("fresh_alpha", _D.fresh_alpha, "Real share alpha of the fresh regime.")
flags.DEFINE_float("anchor_lam", _D.anchor_lam, "Synthetic share lambda of the anchored regime.")
flags.DEFINE_bool(
    "known_variance", _D.known_variance, "Also run replace/accumulate/anchored with sigma known."
)
flags.DEFINE_float("tail_k", _D.tail_k, "Gaussian tail masses are measured beyond tail_k sigma0.")
flags.DEFINE_integer("num_categories", _D.num_categories, "Vocabulary size K (Zipf).")
flags.DEFINE_float("zipf_beta", _D.zipf_beta, "Zipf exponent beta: p_i proportional to i^-beta.")
flags.DEFINE_integer("cat_sample_size", _D.cat_sample_size, "Tokens per generation (M).")
flags.DEFINE_integer(
    "cat_chains", _D.cat_chains, "Categorical chains per regime and verifier (0: skip)."
)
flags.DEFINE_integer("cat_generations", _D.cat_generations, "Categorical generations.")
flags.DEFINE_integer(
    "cat_subsample_chains", _D.cat_subsample_chains, "Categorical chains of the subsample regime."
)
# phase diagram
flags.DEFINE_list("phase_alphas", [f"{a:g}" for a in _D.phase_alphas], "Real shares alpha.")
flags.DEFINE_list(
    "phase_sample_sizes", [str(m) for m in _D.phase_sample_sizes], "Sample sizes M of the grid."
)
flags.DEFINE_string("phase_estimator", _D.phase_estimator, "Estimator of the phase diagram.")
flags.DEFINE_integer("phase_chains", _D.phase_chains, "Chains per grid cell (0: skip the part).")
flags.DEFINE_integer("phase_generations", _D.phase_generations, "Generations per grid cell.")
# schedules
flags.DEFINE_list(
    "schedule_powers", [f"{p:g}" for p in _D.schedule_powers], "Powers p of M_t = ceil(M0 t^p)."
)
flags.DEFINE_integer("schedule_m0", _D.schedule_m0, "M0 of the schedules.")
flags.DEFINE_integer("schedule_chains", _D.schedule_chains, "Chains per schedule (0: skip).")
flags.DEFINE_integer("schedule_generations", _D.schedule_generations, "Schedule generations.")
# verifier
flags.DEFINE_float(
    "verifier_k", _D.verifier_k, "Gaussian verifier: good iff |x - mu0| <= k sigma0."
)
flags.DEFINE_list(
    "verifier_accepts",
    list(_D.verifier_accepts),
    "Verifier settings accept_good:accept_bad (a no-op 1:1 is always added).",
)
flags.DEFINE_integer("verifier_chains", _D.verifier_chains, "Gaussian verifier chains (0: skip).")
flags.DEFINE_integer("verifier_generations", _D.verifier_generations, "Gaussian verifier gens.")
flags.DEFINE_integer(
    "verifier_good_ranks",
    _D.verifier_good_ranks,
    "Categorical verifier: the tokens of the top ranks are good (p0 >= p0 at this rank).",
)
# common
flags.DEFINE_integer("seed", _D.seed, "Root seed; every chain's path depends on it and its index.")
flags.DEFINE_bool("x64", _D.x64, "Simulate in float64 (theory is always float64).")
flags.DEFINE_string("output_dir", "out/remedies", "Where figures and data go.")
flags.DEFINE_bool("check", False, "Exit with status 1 if any testable comparison fails.")
flags.DEFINE_float(
    "false_failure_rate",
    _D.false_failure_rate,
    "Family-wise false-failure rate of the comparison table (Bonferroni over its testable rows).",
)
flags.DEFINE_string("prng_impl", _D.prng_impl, "PRNG: philox4x32 or threefry2x32.")
flags.DEFINE_integer(
    "chunk_chains", None, "Chains per compiled call (results do not depend on it)."
)
flags.DEFINE_bool("progress", True, "Show progress bars.")


def config_from_flags() -> StudyConfig:
    def strings(fl, name):
        return tuple(str(v).strip().lower() for v in fl[name].value)

    convert = {
        "regimes": strings,
        "verifier_accepts": lambda fl, name: tuple(str(v).strip() for v in fl[name].value),
        "phase_alphas": functools.partial(common.parse_list, kind=float),
        "phase_sample_sizes": common.parse_list,
        "schedule_powers": functools.partial(common.parse_list, kind=float),
    }
    return common.config_from_flags(FLAGS, StudyConfig, convert)


def main(argv):
    from experiments import remedies_report

    common.run_cli(argv, FLAGS, lambda: validate(config_from_flags()), remedies_report)


if __name__ == "__main__":
    app.run(main)
