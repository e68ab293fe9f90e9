"""The remedies study's settings (its flags are made from :class:`StudyConfig`) and their checks."""

from __future__ import annotations

import dataclasses
import math

from experiments import common
from experiments.common import MAX_SIZE, setting
from sim.regimes import round_half_up

KINDS = ("replace", "accumulate", "subsample", "fresh", "anchored")
KNOWN_KINDS = ("replace", "accumulate", "anchored")  # closed forms with sigma known
ESTIMATORS = ("mle", "unbiased")
# The parts, each switched off by its chains flag set to 0.
PART_CHAINS = ("num_chains", "cat_chains", "phase_chains", "schedule_chains", "verifier_chains")


def real_count(fraction: float, size: int) -> int:
    """round(fraction x size), halves up: the simulator's count of real points of a
    fresh regime (alpha M) and of synthetic points of an anchored one (lambda M),
    by the simulator's own rounding (:func:`sim.regimes.round_half_up`)."""
    return round_half_up(fraction * size)


def parse_accept(text: str) -> tuple[float, float]:
    """``"good:bad"`` -> (accept_good, accept_bad), both probabilities."""
    parts = str(text).split(":")
    if len(parts) != 2:
        raise ValueError("write each as accept_good:accept_bad, e.g. 0.9:0.1")
    try:
        good, bad = (float(p) for p in parts)
    except ValueError:
        raise ValueError("not two numbers") from None
    if not (0 <= good <= 1 and 0 <= bad <= 1):
        raise ValueError("both must be probabilities in [0, 1]")
    return good, bad


@dataclasses.dataclass(frozen=True)
class StudyConfig(common.CommonSettings):
    """Everything that determines a remedies study's numbers (0 chains skips a part)."""

    # side by side, Gaussian
    regimes: tuple[str, ...] = setting(KINDS, "Regimes side by side (Gaussian and categorical).")
    estimator: str = setting("unbiased", "Variance estimator: mle or unbiased.")
    method: str = setting(
        "sample",
        "Draws where the regime allows a choice: sample (M points, refit) or exact (the "
        "sufficient statistics, O(1) in M but slower to compile). Subsample and verifiers "
        "always use points, schedules always exact.",
    )
    sample_size: int = setting(20, "Gaussian samples per generation (M).", high=MAX_SIZE)
    num_chains: int = setting(4000, "Gaussian chains per regime (0: skip).", high=MAX_SIZE)
    generations: int = setting(100, "Gaussian generations side by side.", high=MAX_SIZE)
    subsample_chains: int = setting(
        1000,
        "Gaussian chains of the subsample regime (its pool costs O(M G) per chain and generation).",
        high=MAX_SIZE,
    )
    fresh_alpha: float = setting(0.1, "Real share alpha of the fresh regime.")
    anchor_lam: float = setting(0.5, "Synthetic share lambda of the anchored regime.")
    known_variance: bool = setting(True, "Also run replace/accumulate/anchored with sigma known.")
    tail_k: float = setting(2.0, "Gaussian tail masses are measured beyond tail_k sigma0.")
    # side by side, categorical
    num_categories: int = setting(200, "Vocabulary size K (Zipf).", high=MAX_SIZE)
    zipf_beta: float = setting(1.1, "Zipf exponent beta: p_i proportional to i^-beta.")
    cat_sample_size: int = setting(200, "Tokens per generation (M).", high=MAX_SIZE)
    cat_chains: int = setting(
        256, "Categorical chains per regime and verifier (0: skip).", high=MAX_SIZE
    )
    cat_generations: int = setting(100, "Categorical generations.", high=MAX_SIZE)
    cat_subsample_chains: int = setting(
        128, "Categorical chains of the subsample regime.", high=MAX_SIZE
    )
    # phase diagram
    phase_alphas: tuple[float, ...] = setting(
        (0.0, 0.02, 0.05, 0.1, 0.2, 0.5), "Real shares alpha."
    )
    phase_sample_sizes: tuple[int, ...] = setting(
        (5, 20, 100), "Sample sizes M of the grid.", high=MAX_SIZE
    )  # every distinct (M, R) compiles once
    phase_estimator: str = setting("mle", "Estimator of the phase diagram.")
    phase_chains: int = setting(2000, "Chains per grid cell (0: skip the part).", high=MAX_SIZE)
    phase_generations: int = setting(200, "Generations per grid cell.", high=MAX_SIZE)
    # schedules
    schedule_powers: tuple[float, ...] = setting(
        (0.0, 0.5, 1.0, 1.5, 2.0), "Powers p of M_t = ceil(M0 t^p)."
    )
    schedule_m0: int = setting(20, "M0 of the schedules.", high=MAX_SIZE)
    schedule_chains: int = setting(4000, "Chains per schedule (0: skip).", high=MAX_SIZE)
    schedule_generations: int = setting(200, "Schedule generations.", high=MAX_SIZE)
    # verifier
    verifier_k: float = setting(2.0, "Gaussian verifier: good iff |x - mu0| <= k sigma0.")
    verifier_accepts: tuple[str, ...] = setting(
        ("1:0", "0.9:0.1"),
        "Verifier settings accept_good:accept_bad (a no-op 1:1 is always added).",
        keep_case=True,
    )
    verifier_chains: int = setting(4000, "Gaussian verifier chains (0: skip).", high=MAX_SIZE)
    verifier_generations: int = setting(100, "Gaussian verifier gens.", high=MAX_SIZE)
    verifier_good_ranks: int = setting(
        100,
        "Categorical verifier: the tokens of the top ranks are good (p0 >= p0 at this rank).",
        high=MAX_SIZE,
    )


def validate(config: StudyConfig) -> StudyConfig:
    """Raises ValueError('--flag=value: reason') for the first bad setting.

    Every setting is checked, also those of a part that is switched off; a
    study with every part switched off is refused (it would test nothing); the
    study must fit in memory.
    """
    bad = common.bad
    common.check_settings(config)
    for r in config.regimes:
        if r not in KINDS:
            bad("regimes", r, f"unknown regime (choose from {', '.join(KINDS)})")
    for name in ("estimator", "phase_estimator"):
        if getattr(config, name) not in ESTIMATORS:
            bad(name, getattr(config, name), "choose mle or unbiased")
    if config.method not in ("sample", "exact"):
        bad("method", config.method, "choose sample or exact")
    if config.sample_size < 2:
        bad("sample_size", config.sample_size, "a variance needs M >= 2 samples")
    for name in (*PART_CHAINS, "subsample_chains", "cat_subsample_chains"):
        if getattr(config, name) < 0:
            bad(name, getattr(config, name), "must be >= 0 (0 skips the part)")
    if all(getattr(config, name) == 0 for name in PART_CHAINS):
        bad(
            "num_chains",
            0,
            "every part is switched off (--" + ", --".join(PART_CHAINS) + " are all 0): "
            "nothing would be simulated or tested",
        )
    for name in (
        "generations",
        "cat_generations",
        "phase_generations",
        "schedule_generations",
        "verifier_generations",
    ):
        if getattr(config, name) < 1:
            bad(name, getattr(config, name), "need at least 1 generation")
    m = config.sample_size
    # The points path cannot draw 0 points (sim.regimes): keep both shares inside (0, 1).
    # The range first: real_count of a huge share would overflow.
    if not 0 < config.fresh_alpha < 1 or not 0 < real_count(config.fresh_alpha, m) < m:
        bad("fresh_alpha", config.fresh_alpha, f"need 0 < round(alpha M) < M with M={m}")
    if not 0 < config.anchor_lam < 1 or not 0 < real_count(config.anchor_lam, m) < m:
        bad("anchor_lam", config.anchor_lam, f"need 0 < round(lambda M) < M with M={m}")
    if not config.tail_k >= 0:
        bad("tail_k", config.tail_k, "must be a finite number >= 0")
    if config.num_categories < 2:
        bad("num_categories", config.num_categories, "need at least 2 categories")
    if not config.zipf_beta >= 0:
        bad("zipf_beta", config.zipf_beta, "must be a finite number >= 0")
    if config.cat_sample_size < 1:
        bad("cat_sample_size", config.cat_sample_size, "must be >= 1")
    if not config.phase_alphas:
        bad("phase_alphas", "", "give at least one alpha")
    for a in config.phase_alphas:
        if not (0 <= a < 1):
            bad("phase_alphas", a, "every alpha must be in [0, 1)")
    if not config.phase_sample_sizes:
        bad("phase_sample_sizes", "", "give at least one sample size")
    for mm in config.phase_sample_sizes:
        if mm < 2:
            bad("phase_sample_sizes", mm, "a variance needs M >= 2 samples")
    for a in config.phase_alphas:
        for mm in config.phase_sample_sizes:
            if real_count(a, mm) >= mm:
                bad("phase_alphas", a, f"round(alpha M) = M at M={mm}: no synthetic data left")
    if not config.schedule_powers:
        bad("schedule_powers", "", "give at least one power")
    for p in config.schedule_powers:
        if not (0 <= p <= 4):
            bad("schedule_powers", p, "every power must be in [0, 4]")
    if config.schedule_m0 < 2:
        bad("schedule_m0", config.schedule_m0, "M0 must be >= 2")
    for p in config.schedule_powers:
        top = math.ceil(config.schedule_m0 * float(config.schedule_generations) ** p)
        if top > 2**24:
            bad("schedule_powers", p, f"M_G = {top:.3g} exceeds 2^24 (exact float32 counts)")
    if not config.verifier_k > 0:
        bad("verifier_k", config.verifier_k, "must be a finite number > 0")
    for a in config.verifier_accepts:
        try:
            parse_accept(a)
        except ValueError as e:
            bad("verifier_accepts", a, str(e))
    if not 1 <= config.verifier_good_ranks <= config.num_categories:
        bad(
            "verifier_good_ranks",
            config.verifier_good_ranks,
            f"must be in [1, K={config.num_categories}]",
        )
    common.check_memory(memory_runs(config), config.x64, config.chunk_chains)
    return config


def memory_runs(config: StudyConfig):
    """The study's runs as the memory model sees them (:mod:`experiments.common.memory`)."""
    m, g = config.sample_size, config.generations
    sample = config.method == "sample"
    gauss = dict(fields=7, columns=40)
    advice = "use --method=exact (O(1) in M) or fewer chains (--chunk_chains)"
    if config.num_chains > 0:
        for kind in config.regimes:
            sub = kind == "subsample"
            yield common.RunSize(
                ("subsample_chains", config.subsample_chains)
                if sub
                else ("num_chains", config.num_chains),
                ("generations", g),
                elements=m * (g + 1) if sub else (m if sample else 0),
                elements_flag=("generations", g) if sub else ("sample_size", m),
                advice="use fewer generations or --subsample_chains (the subsample pool "
                "keeps every point)"
                if sub
                else advice,
                snapshots=g + 1,
                snapshot_fields=1,
                **gauss,
            )
            if config.known_variance and kind in KNOWN_KINDS:
                yield common.RunSize(
                    ("num_chains", config.num_chains),
                    ("generations", g),
                    elements=m if sample else 0,
                    elements_flag=("sample_size", m),
                    advice=advice,
                    **gauss,
                )
    k, gc = config.num_categories, config.cat_generations
    cat = dict(
        generations=("cat_generations", gc),
        fields=14,
        elements=k,
        elements_flag=("num_categories", k),
        advice="use a smaller vocabulary or fewer chains (--chunk_chains)",
        state_floats=k,
        columns=40,
    )
    if config.cat_chains > 0:
        for kind in config.regimes:
            c = config.cat_subsample_chains if kind == "subsample" else config.cat_chains
            yield common.RunSize(("cat_chains", c), **cat)
        for _ in range(2 + len(config.verifier_accepts)):
            yield common.RunSize(("cat_chains", config.cat_chains), **cat)
    if config.phase_chains > 0:
        for mm in config.phase_sample_sizes:
            for _ in config.phase_alphas:
                yield common.RunSize(
                    ("phase_chains", config.phase_chains),
                    ("phase_generations", config.phase_generations),
                    elements=mm if sample else 0,
                    elements_flag=("phase_sample_sizes", mm),
                    advice=advice,
                    **gauss,
                )
    if config.schedule_chains > 0:
        for _ in config.schedule_powers:
            yield common.RunSize(
                ("schedule_chains", config.schedule_chains),
                ("schedule_generations", config.schedule_generations),
                snapshots=8,
                snapshot_fields=1,
                **gauss,
            )
    if config.verifier_chains > 0:
        for _ in range(2 + len(config.verifier_accepts)):
            yield common.RunSize(
                ("verifier_chains", config.verifier_chains),
                ("verifier_generations", config.verifier_generations),
                elements=m,
                elements_flag=("sample_size", m),
                advice="use fewer chains (--verifier_chains, --chunk_chains)",
                snapshots=8,
                snapshot_fields=2,
                **gauss,
            )
