"""The Poisson chain's spec: settings, traced settings, programs, theory columns."""

from __future__ import annotations

import numpy as np

from sim import spec as _spec
from sim._validate import check_float, check_int
from sim.families import register
from sim.families.poisson.family import poisson, real_params
from sim.families.poisson.record import poisson_record

DEFAULTS = dict(
    sample_size=10,
    lam0=1.0,
    method="sample",
    regime="replace",
    alpha=0.0,
    lam=0.0,
    mixing="fixed",
    dtype=None,
)


def check(s: dict) -> dict:
    s = dict(s)
    s["sample_size"] = check_int(s["sample_size"], "sample_size", 1)
    s["lam0"] = check_float(s["lam0"], "lam0", nonnegative=True)
    _spec.check_chain_settings(s)
    limit = 2**24 if _spec.resolve_dtype(s["dtype"]) == "float32" else 2**53
    if s["sample_size"] * s["lam0"] * 100 > limit:
        raise ValueError(
            f"sample_size * lam0 = {s['sample_size'] * s['lam0']:g}: counts would leave the "
            f"exact integers of {_spec.resolve_dtype(s['dtype'])} (use dtype=float64)"
        )
    return s


def traced(s: dict) -> dict:
    return _spec.traced_fractions(s)


def build(s: dict, traced_names: tuple, num_chains: int, num_generations: int):
    del num_chains
    m, exact = s["sample_size"], s["method"] == "exact"
    regime = _spec.static_regime(s)
    elements = _spec.chain_elements(regime, m, exact, num_generations)
    return _spec.chain_program(
        family_of=lambda th: poisson(),
        static_family=poisson(),
        real=real_params(s["lam0"], s["dtype"]),
        record=poisson_record(s["lam0"]),
        sample_size=m,
        regime=regime,
        draws="exact" if exact else "points",
        traced=traced_names,
        num_generations=num_generations,
        chain_elements=elements,
        snapshot_fields=("rate",),
        first_passage_fields=("extinct",),
    )


def theory(s: dict, gen: np.ndarray) -> dict:
    """E and Var of the rate, P(extinct) (theory.poisson): the plain chain only."""
    if _spec.static_regime(s) is not None:
        return {}
    from theory import poisson as tp

    m, lam0 = s["sample_size"], s["lam0"]
    n = np.asarray(gen)
    return {
        "rate": {
            "mean": np.asarray(tp.expected_rate(n, m, lam0), np.float64),
            "var": np.asarray(tp.rate_variance(n, m, lam0), np.float64),
        },
        "extinct": {"mean": np.asarray(tp.zero_probability(n, m, lam0), np.float64)},
    }


def example() -> _spec.Example:
    """A small point for the contract tests (:class:`sim.spec.Example`)."""
    given = {"sample_size": 6, "lam0": 2.0, "method": "exact"}  # exact: one sampler to compile
    s = check({**DEFAULTS, **given})
    return _spec.Example(
        settings=given,
        family=poisson(),
        params=real_params(s["lam0"], s["dtype"]),
        sample_size=6,
        grid={"alpha": [0.0, 0.5]},  # traced (and unused by the plain chain): one program
        lanes=(({"regime": "anchored"}, {"lam": (0.3, 0.7)}),),
        bad=(("sample_size", 0), ("lam0", -1.0)),
    )


SPEC = register(
    _spec.FamilySpec(
        name="poisson",
        defaults=DEFAULTS,
        check=check,
        traced=traced,
        build=build,
        theory=theory,
        example=example,
        description="Poisson rate refitted by the sample mean: critical Galton-Watson (D5)",
    )
)
