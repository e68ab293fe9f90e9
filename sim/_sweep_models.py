"""The built-in sweep models: Gaussian, categorical and regression chains.

Each says which parameters are traced (vary inside one compiled program) and
builds a step ``step(key, params, theta)`` whose family is constructed from the
traced values inside the trace (the uncached ``*_family`` builders and
:func:`sim.regimes.make_regime_step` accept tracers). Parameters that do not
apply at a point (``alpha`` outside the fresh regime, say) are traced and
unused, so crossing them with others costs no extra program.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

from sim.chain import replace_step
from sim.families.categorical import Vocabulary, categorical, categorical_family
from sim.families.gaussian import ESTIMATOR_DDOF, gaussian, gaussian_family, real_params
from sim.families.regression import regression, regression_family
from sim.metrics import categorical_record, default_bucket_edges, gaussian_record, regression_record
from sim.regimes import Constant, Regime, make_regime_step, regime_record
from sim.sampling import SamplingBias, sampling_bias
from sim.sweep import Model, Program, register

REGIMES = ("replace", "accumulate", "fresh", "anchored")


def _number(v):
    return float(v)


def _regime(kind: str, alpha: float, lam: float, mixing: str = "fixed") -> Regime:
    if kind not in REGIMES:
        raise ValueError(f"regime={kind!r} is not one of {REGIMES}")
    if kind == "fresh":
        return Regime.fresh(alpha, mixing=mixing)
    if kind == "anchored":
        return Regime.anchored(lam)
    return Regime(kind)


def _dtype(name):
    return jnp.dtype(name or jnp.result_type(float))


def _regime_program(family_of, static_family, regime, m, real, record, draws, traced):
    """(params0, record, step) of ``family_of(theta) -> Family`` under ``regime``.

    ``static_family`` is any family with the same DataOps layout (it builds the
    initial state); a traced ``alpha`` or ``lam`` overrides the regime's fraction.
    """
    fraction_name = {"fresh": "alpha", "anchored": "lam"}.get(regime.kind)
    _, init = make_regime_step(static_family, regime, m, Constant(real), draws, 0)

    def step(key, state, theta):
        th = dict(zip(traced, theta, strict=True))
        fraction = th.get(fraction_name)
        s, _ = make_regime_step(family_of(th), regime, m, Constant(real), draws, 0, fraction)
        return s(key, state)

    return init(real), regime_record(record), step


# -- Gaussian ------------------------------------------------------------------------------

GAUSSIAN_DEFAULTS = dict(
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
)


def _gaussian_traced(p: dict) -> dict:
    traced = {"estimator": lambda e: float(ESTIMATOR_DDOF[e])}
    # fractions change sizes on the points path (static there), not on exact draws
    for name, kind in (("alpha", "fresh"), ("lam", "anchored")):
        if p["regime"] != kind or p["method"] == "exact":
            traced[name] = _number
    return traced


def _gaussian_record(p: dict):
    return gaussian_record(*(float(p[k]) for k in ("mu0", "sigma0", "tail_k", "collapse_eps")))


def _gaussian_check(p: dict) -> None:
    from sim.runners import gaussian_step

    gaussian_step(p["sample_size"], p["estimator"], p["method"])
    _regime(p["regime"], p["alpha"], p["lam"], p["mixing"])
    gaussian_record(
        float(p["mu0"]), float(p["sigma0"]), float(p["tail_k"]), float(p["collapse_eps"])
    )


@functools.cache
def _gaussian_build_cached(static_items, traced, num_chains, num_generations):
    s = dict(static_items)
    m, kind = s["sample_size"], s["regime"]
    real = real_params(s["mu0"], s["sigma0"], _dtype(s["dtype"]))
    record = gaussian_record(
        float(s["mu0"]), float(s["sigma0"]), float(s["tail_k"]), float(s["collapse_eps"])
    )
    exact = s["method"] == "exact"

    def family_of(th):
        ddof = th["estimator"] if "estimator" in th else ESTIMATOR_DDOF[s["estimator"]]
        return gaussian_family(ddof)

    if kind == "replace":

        def step(key, params, theta):
            fam = family_of(dict(zip(traced, theta, strict=True)))
            if exact:
                return fam.ops.fit_stats(None, fam.ops.sample_stats(key, params, m))
            return replace_step.__wrapped__(fam, m)(key, params)

        return Program(step, real, record, 1 if exact else m, None, ("log_var", "mean"))
    regime = _regime(kind, s.get("alpha", 0.0), s.get("lam", 0.0), s["mixing"])
    static_family = gaussian(s.get("estimator", "unbiased"))
    params0, rec, step = _regime_program(
        family_of,
        static_family,
        regime,
        m,
        real,
        record,
        "exact" if exact else "points",
        traced,
    )
    return Program(step, params0, rec, 1 if exact else m, None, ("log_var", "mean"))


def _build(cached):
    def build(static, traced, num_chains, num_generations):
        return cached(tuple(sorted(static.items())), tuple(traced), num_chains, num_generations)

    return build


def _gaussian_theory(p: dict, gen: np.ndarray) -> dict:
    if p["regime"] != "replace":
        return {}
    from theory import gaussian as tg

    m, est, s0 = p["sample_size"], p["estimator"], float(p["sigma0"])
    n = jnp.asarray(gen, jnp.result_type(float))
    return {
        "log_var": {
            "mean": np.asarray(tg.log_variance_mean(n, m, est, s0)),
            "var": np.asarray(tg.log_variance_var(n, m)),
        },
        "mean": {
            "mean": np.full(len(gen), float(p["mu0"])),
            "var": np.asarray(tg.mean_variance(n, m, est, s0)),
        },
        "w2_squared": {"mean": np.asarray(tg.expected_w2_squared(n, m, est, s0))},
    }


register(
    Model(
        "gaussian",
        GAUSSIAN_DEFAULTS,
        _gaussian_traced,
        _build(_gaussian_build_cached),
        _gaussian_check,
        _gaussian_theory,
    )
)


# -- categorical ---------------------------------------------------------------------------

CATEGORICAL_DEFAULTS = dict(
    num_categories=100,
    zipf_beta=1.0,
    sample_size=100,
    smoothing=0.0,
    temperature=1.0,
    top_k=None,
    top_p=None,
    regime="replace",
    alpha=0.0,
    lam=0.0,
    tail_rank=None,
    dtype=None,
)


def _vocabulary(p: dict) -> Vocabulary:
    k = p["num_categories"]
    return Vocabulary.uniform(k) if p["zipf_beta"] == 0 else Vocabulary.zipf(k, p["zipf_beta"])


def _categorical_traced(p: dict) -> dict:
    traced = {"smoothing": _number, "temperature": _number, "alpha": _number, "lam": _number}
    if p["top_p"] is not None:  # None: no truncation at all, a cheaper program
        traced["top_p"] = _number
    return traced


def _categorical_check(p: dict) -> None:
    _vocabulary(p)
    categorical(p["smoothing"], sampling_bias(p["temperature"], p["top_k"], p["top_p"]))
    _regime(p["regime"], p["alpha"], p["lam"])
    if not isinstance(p["sample_size"], int) or p["sample_size"] < 1:
        raise ValueError(f"sample_size={p['sample_size']!r} must be an integer >= 1")


@functools.cache
def _categorical_build_cached(static_items, traced, num_chains, num_generations):
    from sim.runners import categorical_block_size

    s = dict(static_items)
    vocab = _vocabulary(s)
    k, m, kind = vocab.num_categories, s["sample_size"], s["regime"]
    dtype = _dtype(s["dtype"])
    real = vocab.params(dtype)
    tail = k // 10 if s["tail_rank"] is None else s["tail_rank"]
    record = categorical_record(vocab, tail, default_bucket_edges(k))

    def family_of(th):
        bias = SamplingBias(th["temperature"], s["top_k"], th.get("top_p", s.get("top_p")))
        return categorical_family(th["smoothing"], bias, dtype)

    block = categorical_block_size(num_chains, k)
    fields = ("support", "heterozygosity")
    if kind == "replace":

        def step(key, params, theta):
            fam = family_of(dict(zip(traced, theta, strict=True)))
            return replace_step.__wrapped__(fam, m)(key, params)

        return Program(step, real, record, 4 * k, block, fields, ("absorbed",))
    regime = _regime(kind, s.get("alpha", 0.0), s.get("lam", 0.0))
    params0, rec, step = _regime_program(
        family_of, categorical(0.0), regime, m, real, record, "exact", traced
    )
    return Program(step, params0, rec, 4 * k, block, fields, ("absorbed",))


def _categorical_theory(p: dict, gen: np.ndarray) -> dict:
    unbiased = p["temperature"] == 1.0 and p["top_k"] is None and p["top_p"] in (None, 1.0)
    if p["regime"] != "replace" or not unbiased:
        return {}
    from theory import categorical as tc

    probs = _vocabulary(p).probs
    m = p["sample_size"]
    out = {
        "heterozygosity": {
            "mean": np.asarray(tc.expected_heterozygosity(gen, m, probs, p["smoothing"]))
        }
    }
    if p["smoothing"] == 0:
        out["support"] = {"mean": np.asarray(tc.expected_support_size(gen, m, probs))}
    return out


register(
    Model(
        "categorical",
        CATEGORICAL_DEFAULTS,
        _categorical_traced,
        _build(_categorical_build_cached),
        _categorical_check,
        _categorical_theory,
    )
)


# -- regression ----------------------------------------------------------------------------

REGRESSION_DEFAULTS = dict(
    dim=10,
    num_samples=50,
    noise=1.0,
    ridge=0.0,
    design="fresh",
    design_seed=0,
    regime="replace",
    dtype=None,
)


def _regression_traced(p: dict) -> dict:
    traced = {"noise": _number}
    if p["design"] == "fresh":  # fixed design, ridge 0: the min-norm solve (static)
        traced["ridge"] = _number
    return traced


def _regression_check(p: dict) -> None:
    if p["regime"] not in ("replace", "accumulate"):
        raise ValueError(f"regime={p['regime']!r}: regression sweeps take replace or accumulate")
    regression(p["dim"], p["num_samples"], p["noise"], p["ridge"], p["design"], p["design_seed"])


@functools.cache
def _regression_build_cached(static_items, traced, num_chains, num_generations):
    from sim.runners import default_w_star

    s = dict(static_items)
    d, t = s["dim"], s["num_samples"]
    dtype = _dtype(s["dtype"])
    w = default_w_star(d)
    real = jnp.asarray(w, dtype)

    def family_of(th):
        ridge = th["ridge"] if "ridge" in th else s["ridge"]
        return regression_family(d, t, th["noise"], ridge, s["design"], s["design_seed"], dtype)

    static_family = regression(
        d, t, 1.0, s.get("ridge", 1.0) or 1.0, s["design"], s["design_seed"], dtype
    )
    params0, rec, step = _regime_program(
        family_of,
        static_family,
        Regime(s["regime"]),
        t,
        real,
        regression_record(w),
        "points",
        traced,
    )
    return Program(step, params0, rec, t * (d + 1), None, ("test_error",))


def _regression_theory(p: dict, gen: np.ndarray) -> dict:
    if p["ridge"] != 0:
        return {}
    from theory import regression as tr

    curve = tr.test_error(gen, p["dim"], p["num_samples"], p["noise"], p["regime"], p["design"])
    return {"test_error": {"mean": np.asarray(curve, np.float64)}}


register(
    Model(
        "regression",
        REGRESSION_DEFAULTS,
        _regression_traced,
        _build(_regression_build_cached),
        _regression_check,
        _regression_theory,
    )
)
