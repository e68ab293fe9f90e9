"""The regression chain's spec: settings, traced settings, programs, theory columns."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from sim import spec as _spec
from sim._validate import check_float, check_int
from sim.families import register
from sim.families.regression.family import DESIGNS, check_sizes, regression, regression_family
from sim.families.regression.record import regression_record
from sim.regimes import Regime

DEFAULTS = dict(
    dim=10,
    num_samples=50,
    noise=1.0,
    ridge=0.0,
    design="fresh",
    design_seed=0,
    regime="replace",
    dtype=None,
    w_star=None,
)
# The settings of the first regression sweeps: always part of a point's key.
KEY_SETTINGS = tuple(k for k in DEFAULTS if k != "w_star")
REGIME_NAMES = ("replace", "accumulate")


def default_w_star(dim: int) -> tuple[float, ...]:
    r"""The default true weights: :math:`w^* = (1, \dots, 1)/\sqrt d` (unit norm)."""
    d = check_int(dim, "dim", 1)
    return (1.0 / math.sqrt(d),) * d


def check_w_star(w_star, dim: int) -> tuple[float, ...]:
    """``w_star`` as a tuple of d finite floats (``default_w_star`` for ``None``)."""
    if w_star is None:
        return default_w_star(dim)
    w = np.asarray(w_star, np.float64)
    if w.shape != (dim,):
        raise ValueError(f"w_star must have shape ({dim},) (dim={dim}); got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"w_star must be finite; got {w.tolist()}")
    return tuple(float(v) for v in w)


def regime_of(s: dict) -> Regime:
    """Regression chains always run under a regime (``replace`` by default)."""
    r = s["regime"]
    return r if isinstance(r, Regime) else Regime(r)


def check(s: dict) -> dict:
    s = dict(s)
    r = s["regime"]
    if r is None:
        s["regime"] = r = "replace"
    if not isinstance(r, Regime) and r not in REGIME_NAMES:
        raise ValueError(f"regime={r!r} is not a Regime or one of {REGIME_NAMES}")
    s["noise"] = check_float(s["noise"], "noise", nonnegative=True)
    s["ridge"] = check_float(s["ridge"], "ridge", nonnegative=True)
    s["dim"], s["num_samples"] = check_sizes(s["dim"], s["num_samples"], s["ridge"])
    if s["design"] not in DESIGNS:
        raise ValueError(f"design={s['design']!r} is not one of {DESIGNS}")
    s["design_seed"] = check_int(s["design_seed"], "design_seed", 0)
    if s["dtype"] is not None:
        _spec.resolve_dtype(s["dtype"])
    s["w_star"] = None if s["w_star"] is None else check_w_star(s["w_star"], s["dim"])
    regime = regime_of(s)
    if s["ridge"] == 0 and regime.kind == "subsample" and regime.budget <= s["dim"]:
        raise ValueError(
            f"OLS (ridge=0) on a subsample needs budget > dim: got budget={regime.budget}, "
            f"dim={s['dim']}"
        )
    return s


def traced(s: dict) -> dict:
    out = {"noise": _spec.number}
    if s["design"] == "fresh":  # fixed design, ridge 0: the min-norm solve (static)
        out["ridge"] = _spec.number
    return out


def build(s: dict, traced_names: tuple, num_chains: int, num_generations: int):
    del num_chains
    d, t, dtype = s["dim"], s["num_samples"], s["dtype"]
    seed = s["design_seed"] if s["design"] == "fixed" else 0
    w = check_w_star(s["w_star"], d)
    regime = regime_of(s)

    def family_of(th):
        noise = th.get("noise", s.get("noise"))
        ridge = th.get("ridge", s.get("ridge"))
        return regression_family(d, t, noise, ridge, s["design"], seed, dtype)

    # floats held per chain: one generation's rows, and the stored pool
    rows = t + (t * num_generations if regime.kind == "subsample" else 0)
    return _spec.chain_program(
        family_of=family_of,
        static_family=regression(d, t, 1.0, s.get("ridge", 1.0) or 1.0, s["design"], seed, dtype),
        real=jnp.asarray(w, dtype),
        record=regression_record(w),
        sample_size=t,
        regime=regime,
        draws="points",
        traced=traced_names,
        num_generations=num_generations,
        chain_elements=rows * (d + 1),
        snapshot_fields=("test_error",),
    )


def theory(s: dict, gen: np.ndarray) -> dict:
    """E test error of OLS (THEORY.md L1, L2), replace and accumulate."""
    kind = regime_of(s)
    if s["ridge"] != 0 or kind not in (Regime.replace(), Regime.accumulate()):
        return {}
    from theory import regression as tr

    curve = tr.test_error(gen, s["dim"], s["num_samples"], s["noise"], kind.kind, s["design"])
    return {"test_error": {"mean": np.asarray(curve, np.float64)}}


def example() -> _spec.Example:
    """A small point for the contract tests (:class:`sim.spec.Example`)."""
    given = {"dim": 3, "num_samples": 8}
    s = check({**DEFAULTS, **given})
    return _spec.Example(
        settings=given,
        family=regression(3, 8, s["noise"], s["ridge"], s["design"], 0, s["dtype"]),
        params=jnp.asarray(default_w_star(3), _spec.resolve_dtype(s["dtype"])),
        sample_size=8,
        grid={"noise": [0.5, 1.0]},
        lanes=(
            ({}, {"noise": (0.0, 0.5), "ridge": (0.0, 0.1)}),
            ({"regime": "accumulate"}, {"noise": (0.0, 0.5), "ridge": (0.0, 0.1)}),
        ),
        bad=(("num_samples", 3), ("noise", -1.0), ("ridge", -0.1)),
    )


SPEC = register(
    _spec.FamilySpec(
        name="regression",
        defaults=DEFAULTS,
        check=check,
        traced=traced,
        build=build,
        theory=theory,
        key_settings=KEY_SETTINGS,
        example=example,
        description="OLS / ridge refitted to its own labels (THEORY.md L1-L2)",
    )
)
