"""The Gaussian-mixture chain's spec: settings, traced settings, programs, theory columns."""

from __future__ import annotations

import dataclasses

import numpy as np

from sim import spec as _spec
from sim._validate import check_float, check_int
from sim.families import register
from sim.families.gmm.family import check_floors, gmm, gmm_family, real_params
from sim.families.gmm.record import gmm_record, regime_chain_record

DEFAULTS = dict(
    components=2,
    dim=1,
    sample_size=1000,
    separation=4.0,
    max_steps=20,
    tol=1e-5,
    cov_floor=1e-6,
    weight_floor=1e-6,
    lost_weight=0.01,
    regime="replace",
    alpha=0.0,
    dtype=None,
)

# Regime kinds EM can train under: its summary is the points (no fixed-size
# statistic), so the pools of accumulate and anchored cannot be carried.
KINDS = ("replace", "fresh", "subsample")


def check(s: dict) -> dict:
    s = dict(s)
    s["components"] = k = check_int(s["components"], "components", 1)
    s["dim"] = d = check_int(s["dim"], "dim", 1)
    s["sample_size"] = m = check_int(s["sample_size"], "sample_size", 1)
    if m < k * (d + 1):
        raise ValueError(
            f"sample_size={m} must be >= components * (dim + 1) = {k * (d + 1)} "
            "(each component's covariance needs d + 1 points)"
        )
    s["separation"] = check_float(s["separation"], "separation", nonnegative=True)
    s["max_steps"] = check_int(s["max_steps"], "max_steps", 1)
    s["tol"] = check_float(s["tol"], "tol", nonnegative=True)
    for name in ("cov_floor", "weight_floor"):
        s[name] = check_float(s[name], name, positive=True)
    check_floors(k, s["cov_floor"], s["weight_floor"])
    s["lost_weight"] = lw = check_float(s["lost_weight"], "lost_weight", positive=True)
    if lw > 1.0 / k:
        raise ValueError(f"lost_weight={lw:g} must be <= 1/components = {1 / k:g}")
    _spec.check_chain_settings(s)
    regime = _spec.static_regime(s)
    if regime is not None:
        if regime.kind not in KINDS:
            raise ValueError(
                f"regime={regime.label!r} is not supported by gmm (choose from {KINDS}): EM has "
                "no fixed-size summary to accumulate; accumulate-subsample stores points"
            )
        if regime.schedule or regime.mixing == "binomial":
            raise ValueError(
                f"regime={regime.label!r} needs exact draws, which EM has not (no closed-form "
                "summary of M points)"
            )
    return s


def traced(s: dict) -> dict:
    out = {"cov_floor": _spec.number, "weight_floor": _spec.number, "tol": _spec.number}
    if s["regime"] != "fresh":
        out["alpha"] = _spec.number
    return out


def build(s: dict, traced_names: tuple, num_chains: int, num_generations: int):
    del num_chains
    k, d, m = s["components"], s["dim"], s["sample_size"]
    regime = _spec.static_regime(s)

    def family_of(th):
        return gmm_family(
            k,
            d,
            s["max_steps"],
            th.get("tol", s.get("tol")),
            th.get("cov_floor", s.get("cov_floor")),
            th.get("weight_floor", s.get("weight_floor")),
        )

    static = gmm(
        k,
        d,
        s["max_steps"],
        s.get("tol", 0.0),
        s.get("cov_floor", DEFAULTS["cov_floor"]),
        s.get("weight_floor", DEFAULTS["weight_floor"]),
    )
    elements = m * d * (k + 2) + k * d * d
    if regime is not None and regime.kind == "subsample":
        elements += m * d * num_generations
    record = gmm_record(k, d, s["separation"], s["lost_weight"])
    program = _spec.chain_program(
        family_of=family_of,
        static_family=static,
        real=real_params(k, d, s["separation"], s["dtype"]),
        record=record,
        sample_size=m,
        regime=regime,
        draws="points",
        traced=traced_names,
        num_generations=num_generations,
        chain_elements=elements,
        snapshot_fields=("l2_distance", "weights"),
        first_passage_fields=("lost",),
    )
    # the record reads the fit's info (EM iterations, log-likelihood, floors)
    rec = record if regime is None else regime_chain_record(record)
    return dataclasses.replace(program, record=rec)


def real_trace(components: int, dim: int, separation: float) -> float:
    """tr of the real mixture's covariance: d + s^2 sum_k (k - (K-1)/2)^2 / K."""
    offsets = np.arange(components) - (components - 1) / 2
    return dim + separation**2 * float(np.mean(offsets**2))


def theory(s: dict, gen: np.ndarray) -> dict:
    """Plain chain: the mixture's total covariance and mean (any K; ``record`` docstring:
    exact unless a floor fires), and for K = 1 the Gaussian MLE chain's log det
    (THEORY.md W2; G3 at d = 1). No closed form is known for the components (weights,
    the L2 distance), nor under a regime: ``{}`` there.
    """
    if _spec.static_regime(s) is not None:
        return {}
    from theory import gaussian as tg
    from theory import multivariate as tm

    k, m, d = s["components"], s["sample_size"], s["dim"]
    n = np.asarray(gen, np.float64)
    tr0 = real_trace(k, d, s["separation"])
    out = {
        "trace_cov": {"mean": tr0 * np.asarray(tg.expected_variance(n, m, "mle"), np.float64)},
        "mean_sq_error": {"mean": tr0 * np.asarray(tg.mean_variance(n, m, "mle"), np.float64)},
    }
    if k == 1:
        out["log_det_cov"] = {
            "mean": np.asarray(tm.log_det_mean(n, m, d, "mle"), np.float64),
            "var": np.asarray(tm.log_det_var(n, m, d), np.float64),
        }
    return out


def example() -> _spec.Example:
    """A small point for the contract tests (:class:`sim.spec.Example`)."""
    given = {"components": 2, "dim": 2, "sample_size": 24, "max_steps": 6}
    s = check({**DEFAULTS, **given})
    return _spec.Example(
        settings=given,
        family=gmm(2, 2, 6, s["tol"], s["cov_floor"], s["weight_floor"]),
        params=real_params(2, 2, s["separation"], s["dtype"]),
        sample_size=24,
        grid={"cov_floor": [1e-6, 1e-3]},  # traced: one program
        lanes=(
            ({}, {"cov_floor": (1e-6, 1e-3), "weight_floor": (1e-6, 1e-2)}),
            ({"regime": "fresh", "alpha": 0.5}, {"tol": (0.0, 1e-4)}),
        ),
        bad=(
            ("components", 0),
            ("dim", 0),
            ("sample_size", 5),
            ("cov_floor", 0.0),
            ("weight_floor", -1e-3),
            ("weight_floor", 0.5),
            ("regime", "accumulate"),
        ),
    )


SPEC = register(
    _spec.FamilySpec(
        name="gmm",
        defaults=DEFAULTS,
        check=check,
        traced=traced,
        build=build,
        theory=theory,
        example=example,
        description="K-component Gaussian mixture refitted by EM from the previous fit",
    )
)
