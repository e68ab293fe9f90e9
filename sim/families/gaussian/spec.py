"""The Gaussian chain's spec: settings, traced settings, programs, theory columns."""

from __future__ import annotations

import numpy as np

from sim import spec as _spec
from sim._validate import check_estimator, check_float, check_int
from sim.families import register
from sim.families.gaussian.family import ESTIMATOR_DDOF, gaussian, gaussian_family, real_params
from sim.families.gaussian.record import gaussian_record
from sim.families.gaussian.verifier import gaussian_verifier

DEFAULTS = dict(
    sample_size=10,
    estimator="unbiased",
    method="sample",
    regime="replace",
    alpha=0.0,
    lam=0.0,
    mixing="fixed",
    mu0=0.0,
    sigma0=1.0,
    tail_k=3.0,
    collapse_eps=1e-6,
    dtype=None,
    known_variance=None,
)
# float32 runs refuse real distributions whose scale (sigma0, |mu0| or 1/sigma0) is
# this large: the fourth central moments of W2^2 ~ sigma0^2, summed over a reduction
# block, leave float32's range (measured: sigma0 = 300 overflows at the default
# 10,000 chains x 500 generations, M = 10; 100 does not). Any run whose moments are
# not finite all the same is flagged (SimulationResult.nonfinite, a RuntimeWarning).
FLOAT32_MAX_SCALE = 100.0
# The settings of the first Gaussian sweeps: always part of a point's key.
KEY_SETTINGS = tuple(k for k in DEFAULTS if k != "known_variance")


def check(s: dict) -> dict:
    s = dict(s)
    s["sample_size"] = check_int(s["sample_size"], "sample_size", 2)
    check_estimator(s["estimator"])
    _spec.check_chain_settings(s)
    s["mu0"] = check_float(s["mu0"], "mu0")
    s["sigma0"] = check_float(s["sigma0"], "sigma0", positive=True)
    s["tail_k"] = check_float(s["tail_k"], "tail_k", nonnegative=True)
    s["collapse_eps"] = check_float(s["collapse_eps"], "collapse_eps", positive=True)
    scale = max(s["sigma0"], abs(s["mu0"]), 1.0 / s["sigma0"])
    if _spec.resolve_dtype(s["dtype"]) == "float32" and scale >= FLOAT32_MAX_SCALE:
        name = "sigma0" if s["sigma0"] in (scale, 1.0 / scale) else "mu0"
        raise ValueError(
            f"{name}={s[name]:g}: in float32 the records' fourth moments overflow at this "
            "scale; the chain is location-scale equivariant, so simulate mu0=0, sigma0=1 "
            "and rescale, or use dtype=float64"
        )
    if s["known_variance"] is not None:
        s["known_variance"] = check_float(s["known_variance"], "known_variance", positive=True)
        if s["regime"] in (None, "replace"):
            raise ValueError(
                "known_variance needs a regime (use Regime.replace() for the plain chain)"
            )
    return s


def traced(s: dict) -> dict:
    return {"estimator": lambda e: float(ESTIMATOR_DDOF[e]), **_spec.traced_fractions(s)}


def build(s: dict, traced_names: tuple, num_chains: int, num_generations: int):
    del num_chains
    m, exact, known = s["sample_size"], s["method"] == "exact", s["known_variance"]
    regime = _spec.static_regime(s)

    def family_of(th):
        ddof = th["estimator"] if "estimator" in th else ESTIMATOR_DDOF[s["estimator"]]
        return gaussian_family(ddof, known)

    elements = _spec.chain_elements(regime, m, exact, num_generations)
    return _spec.chain_program(
        family_of=family_of,
        static_family=gaussian(s.get("estimator", "unbiased"), known),
        real=real_params(s["mu0"], s["sigma0"], s["dtype"]),
        record=gaussian_record(s["mu0"], s["sigma0"], s["tail_k"], s["collapse_eps"]),
        sample_size=m,
        regime=regime,
        draws="exact" if exact else "points",
        traced=traced_names,
        num_generations=num_generations,
        chain_elements=elements,
        snapshot_fields=("log_var", "mean"),
    )


def theory(s: dict, gen: np.ndarray) -> dict:
    """E and Var of log sigma^2 and of the mean, E W2^2 (THEORY.md G3, G5, G6): the
    plain chain only."""
    if _spec.static_regime(s) is not None or s["known_variance"] is not None:
        return {}
    from theory import gaussian as tg

    m, est, s0 = s["sample_size"], s["estimator"], float(s["sigma0"])
    n = np.asarray(gen, np.float64)
    return {
        "log_var": {
            "mean": np.asarray(tg.log_variance_mean(n, m, est, s0)),
            "var": np.asarray(tg.log_variance_var(n, m)),
        },
        "mean": {
            "mean": np.full(len(gen), float(s["mu0"])),
            "var": np.asarray(tg.mean_variance(n, m, est, s0)),
        },
        "w2_squared": {"mean": np.asarray(tg.expected_w2_squared(n, m, est, s0))},
    }


TRACED_SIZES = (
    "a traced fraction draws summaries of a traced size, for some sizes from other random "
    "words than a Python size (alpha=0.5 at M=6; 0.3 and 0.7 agree): the same law "
    "(tests/test_dynamic_params.py compares them with int32 sizes)"
)


def example() -> _spec.Example:
    """A small point for the contract tests (:class:`sim.spec.Example`)."""
    s = check({**DEFAULTS, "sample_size": 6, "mu0": 0.5, "sigma0": 2.0})
    return _spec.Example(
        settings={k: s[k] for k in ("sample_size", "mu0", "sigma0")},
        family=gaussian(s["estimator"]),
        params=real_params(s["mu0"], s["sigma0"], s["dtype"]),
        sample_size=6,
        grid={"estimator": ["mle", "unbiased"]},
        lanes=(
            ({}, {"estimator": ("mle", "unbiased")}),
            ({"regime": "fresh", "method": "exact"}, {"alpha": (0.5, 0.3)}, TRACED_SIZES),
        ),
        bad=(("sample_size", 1), ("sigma0", 0.0), ("tail_k", -1.0)),
    )


SPEC = register(
    _spec.FamilySpec(
        name="gaussian",
        defaults=DEFAULTS,
        check=check,
        traced=traced,
        build=build,
        theory=theory,
        verifiers={"likelihood": gaussian_verifier},
        key_settings=KEY_SETTINGS,
        example=example,
        description="1-D Gaussian refitted by MLE or the unbiased estimator (THEORY.md G1-G10)",
    )
)
