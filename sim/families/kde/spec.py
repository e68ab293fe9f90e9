"""The KDE chain's spec: settings, traced settings, programs, theory columns."""

from __future__ import annotations

import numpy as np

from sim import spec as _spec
from sim._validate import check_float, check_int
from sim.families import register
from sim.families.kde.family import check_rule, kde, kde_family, real_params
from sim.families.kde.record import kde_record
from sim.regimes import round_half_up

DEFAULTS = dict(
    sample_size=20,
    bandwidth=0.5,
    rule="fixed",
    mu0=0.0,
    sigma0=1.0,
    tail_k=3.0,
    heldout_size=64,
    regime="replace",
    alpha=0.0,
    lam=0.0,
    mixing="fixed",
    dtype=None,
)


def check(s: dict) -> dict:
    s = dict(s)
    s["sample_size"] = check_int(s["sample_size"], "sample_size", 2)
    s["bandwidth"] = check_float(s["bandwidth"], "bandwidth", positive=True)
    check_rule(s["rule"])
    s["mu0"] = check_float(s["mu0"], "mu0")
    s["sigma0"] = check_float(s["sigma0"], "sigma0", positive=True)
    s["tail_k"] = check_float(s["tail_k"], "tail_k", nonnegative=True)
    s["heldout_size"] = check_int(s["heldout_size"], "heldout_size", 1)
    _spec.check_chain_settings(s)
    return s


def traced(s: dict) -> dict:
    # the fixed bandwidth is data in the fit (unused by the rules, which read the points)
    return {"bandwidth": _spec.number, **_spec.traced_fractions(s)}


def capacity(regime, sample_size: int, num_generations: int) -> int:
    """Points a fit can store: M, or M G when every generation's data accumulate."""
    if regime is not None and regime.kind == "accumulate":
        return sample_size * num_generations
    return sample_size


def build(s: dict, traced_names: tuple, num_chains: int, num_generations: int):
    del num_chains
    m = s["sample_size"]
    regime = _spec.static_regime(s)
    cap = capacity(regime, m, num_generations)

    def family_of(th):
        return kde_family(cap, s["rule"], th.get("bandwidth", s.get("bandwidth", 0.5)))

    return _spec.chain_program(
        family_of=family_of,
        static_family=kde(cap, s["rule"], s.get("bandwidth", 0.5)),
        real=real_params(cap, s["mu0"], s["sigma0"], s["dtype"]),
        record=kde_record(s["mu0"], s["sigma0"], s["tail_k"], s["heldout_size"]),
        sample_size=m,
        regime=regime,
        draws="points",
        traced=traced_names,
        num_generations=num_generations,
        # a few buffers of the capacity, and the (held-out x capacity) log-likelihood terms
        chain_elements=cap * (s["heldout_size"] + 4) + m,
        snapshot_fields=("variance", "fit_bandwidth"),
    )


def theory(s: dict, gen: np.ndarray) -> dict:
    """E variance and Var mean (theory.kde): replace (fixed h and the rules),
    accumulate and a fixed fresh fraction (fixed h); ``{}`` elsewhere."""
    regime = _spec.static_regime(s)
    from theory import kde as tk

    m, h, sigma0, mu0 = s["sample_size"], s["bandwidth"], s["sigma0"], s["mu0"]
    n = np.asarray(gen)
    if regime is None and s["rule"] == "fixed":
        var = tk.expected_variance(n, m, h, sigma0)
        mean_var = tk.mean_variance(n, m, h, sigma0)
    elif regime is None:
        var = tk.rule_expected_variance(n, m, sigma0, rule=s["rule"])
        mean_var = tk.rule_mean_variance(n, m, sigma0, rule=s["rule"])
    elif regime.kind == "accumulate" and s["rule"] == "fixed" and not regime.schedule:
        var, mean_var = tk.accumulate_moments(n, m, h, sigma0)
    elif regime.kind == "fresh" and regime.mixing == "fixed" and s["rule"] == "fixed":
        real = round_half_up(regime.fraction * m)  # the regime's real count
        if real == 0:
            var, mean_var = tk.expected_variance(n, m, h, sigma0), tk.mean_variance(n, m, h, sigma0)
        else:
            var, mean_var = tk.fresh_moments(n, m, h, real / m, sigma0)
    else:
        return {}
    return {
        "variance": {"mean": np.asarray(var, np.float64)},
        "mean": {
            "mean": np.full(n.shape, mu0, np.float64),
            "var": np.asarray(mean_var, np.float64),
        },
    }


def example() -> _spec.Example:
    """A small point for the contract tests (:class:`sim.spec.Example`).

    The example's family stores up to 4 M points (the contract tests merge three
    samples of M); the spec's replace programs store M.
    """
    given = {"sample_size": 6, "bandwidth": 0.4}
    s = check({**DEFAULTS, **given})
    m = s["sample_size"]
    return _spec.Example(
        settings=given,
        family=kde(4 * m, s["rule"], s["bandwidth"]),
        params=real_params(4 * m, s["mu0"], s["sigma0"], s["dtype"]),
        sample_size=m,
        grid={"bandwidth": [0.3, 0.6]},  # traced: one program
        lanes=(
            ({}, {"bandwidth": (0.2, 0.5)}),
            ({"regime": "accumulate"}, {"bandwidth": (0.2, 0.5)}),
            ({"regime": "fresh", "alpha": 0.5, "rule": "scott"}, {"lam": (0.0, 1.0)}),
        ),
        bad=(
            ("bandwidth", 0.0),
            ("bandwidth", -1.0),
            ("sample_size", 1),
            ("sigma0", 0.0),
            ("heldout_size", 0),
        ),
    )


SPEC = register(
    _spec.FamilySpec(
        name="kde",
        defaults=DEFAULTS,
        check=check,
        traced=traced,
        build=build,
        theory=theory,
        example=example,
        description="Gaussian KDE refitted to its own samples: variance grows (K1)",
    )
)
