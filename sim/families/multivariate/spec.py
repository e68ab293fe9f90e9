"""The multivariate Gaussian chain's spec: settings, traced settings, programs, theory."""

from __future__ import annotations

import numpy as np

from sim import spec as _spec
from sim._validate import check_estimator, check_float, check_int
from sim.families import register
from sim.families.multivariate.family import (
    ESTIMATOR_DDOF,
    multivariate,
    multivariate_family,
    real_params,
)
from sim.families.multivariate.record import multivariate_record

METHODS = ("sample", "exact")

DEFAULTS = dict(
    dim=3,
    sample_size=20,
    estimator="unbiased",
    method="sample",
    regime="replace",
    alpha=0.0,
    lam=0.0,
    mixing="fixed",
    dtype=None,
)


def check(s: dict) -> dict:
    s = dict(s)
    s["dim"] = check_int(s["dim"], "dim", 1)
    s["sample_size"] = check_int(s["sample_size"], "sample_size", 2)
    if s["dim"] >= s["sample_size"]:
        raise ValueError(
            f"dim={s['dim']} must be < sample_size={s['sample_size']} "
            "(the covariance of M points in d >= M dimensions is singular)"
        )
    check_estimator(s["estimator"])
    if s["method"] not in METHODS:
        raise ValueError(f"method={s['method']!r} is not one of {METHODS}")
    _spec.check_regime_setting(s)
    for name in ("alpha", "lam"):
        s[name] = check_float(s[name], name)
    if s["dtype"] is not None:
        _spec.resolve_dtype(s["dtype"])
    return s


def traced(s: dict) -> dict:
    out = {"estimator": lambda e: float(ESTIMATOR_DDOF[e])}
    for name, kind in (("alpha", "fresh"), ("lam", "anchored")):
        if s["regime"] != kind or s["method"] == "exact":
            out[name] = _spec.number
    return out


def build(s: dict, traced_names: tuple, num_chains: int, num_generations: int):
    del num_chains
    d, m, exact = s["dim"], s["sample_size"], s["method"] == "exact"
    regime = _spec.static_regime(s)

    def family_of(th):
        ddof = th["estimator"] if "estimator" in th else ESTIMATOR_DDOF[s["estimator"]]
        return multivariate_family(d, ddof)

    if regime is None or exact:
        elements = d * d if exact else m * d + d * d
    else:
        elements = max(regime.schedule or (m,)) * d + d * d
    if regime is not None and regime.kind == "subsample":
        elements += m * d * num_generations
    return _spec.chain_program(
        family_of=family_of,
        static_family=multivariate(d, s.get("estimator", "unbiased")),
        real=real_params(d, s["dtype"]),
        record=multivariate_record,
        sample_size=m,
        regime=regime,
        draws="exact" if exact else "points",
        traced=traced_names,
        num_generations=num_generations,
        chain_elements=elements,
        snapshot_fields=("log_det", "trace"),
    )


def theory(s: dict, gen: np.ndarray) -> dict:
    """E and Var of log det, E tr, E ||mu||^2 (THEORY.md W1, W2): the plain chain only."""
    if _spec.static_regime(s) is not None:
        return {}
    from theory import multivariate as tm

    d, m, est = s["dim"], s["sample_size"], s["estimator"]
    n = np.asarray(gen, np.float64)
    return {
        "log_det": {
            "mean": np.asarray(tm.log_det_mean(n, m, d, est), np.float64),
            "var": np.asarray(tm.log_det_var(n, m, d), np.float64),
        },
        "trace": {"mean": np.asarray(tm.expected_trace(n, m, d, est), np.float64)},
        "mean_sq_error": {"mean": np.asarray(tm.mean_sq_error(n, m, d, est), np.float64)},
    }


def example() -> _spec.Example:
    """A small point for the contract tests (:class:`sim.spec.Example`)."""
    given = {"dim": 2, "sample_size": 6}
    s = check({**DEFAULTS, **given})
    return _spec.Example(
        settings=given,
        family=multivariate(s["dim"], s["estimator"]),
        params=real_params(s["dim"], s["dtype"]),
        sample_size=6,
        grid={"estimator": ["mle", "unbiased"]},
        lanes=(
            ({}, {"estimator": ("mle", "unbiased")}),
            ({"method": "exact"}, {"estimator": ("mle", "unbiased")}),
            ({"regime": "fresh", "method": "exact"}, {"alpha": (0.0, 0.5, 1.0)}),
        ),
        bad=(("sample_size", 2), ("dim", 0)),
        summary_value=scatter_value,
        # each merge is a Householder QR of a (2d + 1) x d stack, backward stable to
        # about (2d + 1) d u ||S|| (Higham 2002, Thm 19.4; u = eps/2); the two orders are
        # two merges each: 2 x 2 x (2d + 1) d u = 2 (2d + 1) d eps (20 at d = 2;
        # measured: 5.2)
        merge_eps=2.0 * (2 * given["dim"] + 1) * given["dim"],
    )


def scatter_value(stats):
    r"""``((count, mean, S), magnitudes)`` with the scatter :math:`S = G\,\mathrm{diag}
    (e^{2t})\,G^T` formed densely: what a summary stands for (its factor and log
    scales are one representation of it), for the merge contract
    (:class:`sim.spec.Example`). The magnitude of :math:`S_{jk} = \sum_i x_{ij} x_{ik}`
    (centred) is :math:`\sum_i |x_{ij} x_{ik}| \le \sqrt{S_{jj} S_{kk}}`, that bound."""
    import jax.numpy as jnp

    g = stats.factor * jnp.exp(stats.log_scales)[None, :]
    scatter = g @ g.T
    root = jnp.sqrt(jnp.diagonal(scatter))
    values = (stats.count, stats.mean, scatter)
    return values, (jnp.abs(stats.count), jnp.abs(stats.mean), root[:, None] * root[None, :])


SPEC = register(
    _spec.FamilySpec(
        name="multivariate",
        defaults=DEFAULTS,
        check=check,
        traced=traced,
        build=build,
        theory=theory,
        example=example,
        description="d-dimensional full-covariance Gaussian refitted by MLE or unbiased (W1, W2)",
    )
)
