"""The Bayesian chain's spec: settings, traced settings, programs, theory columns.

Two updates (``update``):

* ``"refit"``: every generation's posterior is computed from the same prior
  (regime (a)); any data regime applies (replace, accumulate, subsample, fresh,
  anchored);
* ``"sequential"``: the posterior becomes the next prior (regime (b)). By
  conjugacy this is the posterior of the original prior given every generation's
  data, i.e. ``"refit"`` under the ``accumulate`` regime, which is how it is built
  (one O(1) summary per chain). Only the plain chain (``regime="replace"``) is
  offered: pooling data on top of it would count them twice, and mixing real data
  into a sequential update is not a regime of the engine.

Two fits (``fit``): ``"conjugate"`` (the closed form) and ``"nuts"`` (numpyro's NUTS,
``nuts_chains`` chains of ``nuts_warmup`` + ``nuts_samples`` steps per fit, inside
the same vmapped, scanned program; joint predictive only; see
:mod:`sim.families.bayes.nuts`).
"""

from __future__ import annotations

import numpy as np

from sim import spec as _spec
from sim._validate import check_float, check_int
from sim.families import register
from sim.families.bayes.family import PREDICTIVES, Prior, bayes_family, check_prior, real_params
from sim.families.bayes.nuts import nuts_family, real_nuts_params
from sim.families.bayes.record import bayes_record
from sim.regimes import Regime

UPDATES = ("refit", "sequential")
FITS = ("conjugate", "nuts")
PRIOR = ("mu0", "kappa0", "alpha0", "beta0")

DEFAULTS = dict(
    sample_size=10,
    update="refit",
    predictive="joint",
    fit="conjugate",
    nuts_warmup=200,
    nuts_samples=200,
    nuts_chains=2,
    mu0=0.0,
    kappa0=1.0,
    alpha0=3.0,
    beta0=1.0,
    real_mean=0.0,
    real_sd=1.0,
    method="sample",
    regime="replace",
    alpha=0.0,
    lam=0.0,
    mixing="fixed",
    dtype=None,
)


def check(s: dict) -> dict:
    s = dict(s)
    s["sample_size"] = check_int(s["sample_size"], "sample_size", 2)
    if s["update"] not in UPDATES:
        raise ValueError(f"update={s['update']!r} is not one of {UPDATES}")
    if s["predictive"] not in PREDICTIVES:
        raise ValueError(f"predictive={s['predictive']!r} is not one of {PREDICTIVES}")
    if s["fit"] not in FITS:
        raise ValueError(f"fit={s['fit']!r} is not one of {FITS}")
    s["nuts_warmup"] = check_int(s["nuts_warmup"], "nuts_warmup", 1)
    s["nuts_samples"] = check_int(s["nuts_samples"], "nuts_samples", 1)
    s["nuts_chains"] = check_int(s["nuts_chains"], "nuts_chains", 1)
    if s["fit"] == "nuts" and s["predictive"] != "joint":
        raise ValueError(
            f"predictive={s['predictive']!r} with fit='nuts': a NUTS fit samples by its "
            "posterior draw (the joint predictive) only"
        )
    s.update(check_prior(*(s[k] for k in PRIOR))._asdict())
    s["real_mean"] = check_float(s["real_mean"], "real_mean")
    s["real_sd"] = check_float(s["real_sd"], "real_sd", positive=True)
    _spec.check_chain_settings(s)
    if s["predictive"] == "student_t" and s["method"] == "exact":
        raise ValueError(
            "predictive='student_t' has no exact path (the summary of M independent t draws "
            "has no closed-form law); use method='sample'"
        )
    if s["update"] == "sequential" and _spec.static_regime(s) is not None:
        raise ValueError(
            f"regime={s['regime']!r} with update='sequential': the sequential posterior "
            "already pools every generation's data (it is refit under accumulate); "
            "use update='refit' for data regimes"
        )
    return s


def traced(s: dict) -> dict:
    return {**{name: _spec.number for name in PRIOR}, **_spec.traced_fractions(s)}


def chain_regime(s: dict) -> Regime | None:
    """The engine's regime of a build: ``accumulate`` for the sequential update."""
    if s["update"] == "sequential":
        return Regime.accumulate()
    return _spec.static_regime(s)


def build(s: dict, traced_names: tuple, num_chains: int, num_generations: int):
    del num_chains
    m, exact = s["sample_size"], s["method"] == "exact"
    regime = chain_regime(s)
    predictive = s["predictive"]

    nuts = s["fit"] == "nuts"
    nuts_args = (s["nuts_warmup"], s["nuts_samples"], s["nuts_chains"])

    def family_of(th):
        prior = Prior(*(th[k] if k in th else s[k] for k in PRIOR))
        return nuts_family(prior, *nuts_args) if nuts else bayes_family(prior, predictive)

    elements = _spec.chain_elements(regime, m, exact, num_generations)
    return _spec.chain_program(
        family_of=family_of,
        static_family=family_of({k: 1.0 for k in PRIOR}),
        real=(real_nuts_params if nuts else real_params)(s["real_mean"], s["real_sd"], s["dtype"]),
        record=bayes_record(s["real_mean"]),
        sample_size=m,
        regime=regime,
        draws="exact" if exact else "points",
        traced=traced_names,
        num_generations=num_generations,
        chain_elements=elements,
        snapshot_fields=("var_mean", "mean"),
    )


def theory_update(s: dict) -> str | None:
    """The theory's update for these settings: the plain chain, or refit under accumulate
    (the sequential update); ``None`` for the other regimes (no closed form here)."""
    if s["update"] == "sequential":
        return "sequential"
    regime = _spec.static_regime(s)
    if regime is None:
        return "refit"
    if regime.kind == "accumulate" and not regime.schedule and regime.verifier is None:
        return "sequential"
    return None


def theory(s: dict, gen: np.ndarray) -> dict:
    """E of the posterior mean of sigma^2, E and Var of the posterior mean of mu
    (theory.bayes), for both updates and both predictives."""
    update = theory_update(s)
    if update is None:
        return {}
    from theory import bayes as tb

    args = (
        np.asarray(gen),
        s["sample_size"],
        *(s[k] for k in PRIOR),
        s["real_mean"],
        s["real_sd"],
    )
    kw = dict(update=update, predictive=s["predictive"])
    return {
        "var_mean": {"mean": np.asarray(tb.expected_var_mean(*args, **kw), np.float64)},
        "mean": {
            "mean": np.asarray(tb.expected_mean(*args, **kw), np.float64),
            "var": np.asarray(tb.mean_variance(*args, **kw), np.float64),
        },
    }


def example() -> _spec.Example:
    """A small point for the contract tests (:class:`sim.spec.Example`)."""
    given = {"sample_size": 6, "method": "exact", "mu0": 0.5, "beta0": 2.0, "real_sd": 1.5}
    s = check({**DEFAULTS, **given})
    return _spec.Example(
        settings=given,
        family=bayes_family(Prior(*(s[k] for k in PRIOR)), s["predictive"]),
        params=real_params(s["real_mean"], s["real_sd"], s["dtype"]),
        sample_size=6,
        grid={"beta0": [1.0, 2.0]},  # traced: one program
        lanes=(
            ({}, {"beta0": (0.5, 2.0), "kappa0": (1.0, 3.0), "alpha0": (2.0, 4.0)}),
            ({"update": "sequential"}, {"mu0": (-1.0, 1.0), "alpha0": (0.5, 4.0)}),
        ),
        bad=(
            ("sample_size", 1),
            ("nuts_chains", 0),
            ("kappa0", 0.0),
            ("alpha0", -1.0),
            ("alpha0", 0.0),
            ("beta0", 0.0),
            ("beta0", -2.0),
            ("real_sd", 0.0),
            ("predictive", "student_t"),  # the example runs method='exact'
        ),
    )


SPEC = register(
    _spec.FamilySpec(
        name="bayes",
        defaults=DEFAULTS,
        check=check,
        traced=traced,
        build=build,
        theory=theory,
        example=example,
        description="conjugate Normal-Inverse-Gamma posterior, sampled by its predictive",
    )
)
