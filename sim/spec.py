r"""Family specs: everything the engine needs to know about a model family, in one object.

A :class:`FamilySpec` owns a family's settings (names, defaults, one
validation), says which settings may be *traced* (ride along each lane as
data, so one compiled program serves many values: an estimator's divisor, a
temperature, a mixing fraction) and which change shapes or control flow
(sample size, dimension, regime kind), builds the :class:`Program` for given
static settings, lists its verifiers, and gives the theory columns where a
closed form exists. Runs (:func:`sim.run.run`), sweeps (:func:`sim.sweep.sweep`),
checkpoints and experiments all read the same spec from the registry
(:mod:`sim.families`), so nothing is built twice.

A new family is one folder ``sim/families/<name>/`` whose ``__init__`` imports
its ``spec`` module, which calls :func:`sim.families.register`.

Settings and keys. A sweep point's PRNG key is ``fold_in(root, crc32(label))``
with ``label`` the JSON of its settings (:func:`key_label`). The settings in
``key_settings`` always enter the label (the schema the family's first sweeps
used); any other setting enters it only when it differs from its default, so
adding a setting to a family changes no existing sweep's numbers.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sim._validate import check_float
from sim.chain import ahead_replace_step, params_record, replace_transition, stats_transition
from sim.regimes import Constant, Regime, make_regime_step, regime_record

# Options of the engine that a run passes through (not family settings).
RUN_OPTIONS = (
    "snapshot_generations",
    "snapshot_fields",
    "first_passage_fields",
    "chain_elements",
    "block_size",
    "chunk_chains",
    "segment_length",
    "devices",
    "progress",
    "progress_desc",
    "checkpoint",
    "keep_final",
)


@dataclasses.dataclass(frozen=True, eq=False)
class Program:
    """One compiled chain: what :func:`sim.parallel.simulate_points` runs.

    Attributes:
      step: ``step(key, state, theta) -> (state, info)`` for one chain;
        ``theta`` is the tuple of the traced settings' encoded values, in the
        order the program was built with (``()`` when none is traced).
      init: the generation-0 state (the real distribution, or a regime's state).
      record: ``record(state, info) -> NamedTuple`` of per-chain summaries.
      chain_elements: floats one chain holds per generation (sizes chunks).
      block_size: chains per reduction block (``None``: the engine's default).
      snapshot_fields: the record fields kept at snapshot generations by default.
      first_passage_fields: the record fields whose hitting times are kept.
      lane_group: ``None`` (the step is one ``vmap`` over a chunk's lanes) or a power
        of two W: the step and the record run on groups of W lanes in turn, so that a
        step whose batched operations round by batch shape (the neural family's
        matmuls on the CPU) gives the same bits at every chunk size and device count
        (``sim.parallel.segment``, lane groups).
    """

    step: Callable
    init: Any
    record: Callable
    chain_elements: int = 1
    block_size: int | None = None
    snapshot_fields: tuple[str, ...] = ()
    first_passage_fields: tuple[str, ...] = ()
    lane_group: int | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class Example:
    """A small point of a family for the contract tests every registered family gets
    (``tests/test_family_contract.py``); built on demand by ``FamilySpec.example``.

    Attributes:
      settings: given settings (the rest default) that compile and run in seconds.
      family: the :class:`~sim.families.base.Family` at ``settings``.
      params: params of that family to draw test data from (the real ones).
      sample_size: points per draw (the family's M).
      grid: a two-point sweep grid ``{setting: [a, b]}`` (cheapest: a traced setting).
      lanes: ``((overrides, {setting: values}), ...)``: at ``settings`` updated by
        ``overrides``, each named traced setting is run as lanes of ``values`` and
        compared with the static build at each value; a third entry, a reason, marks a
        case whose lanes agree with the static build in law only (an expected failure).
      bad: ``((setting, value), ...)`` the spec must refuse, beyond the generic
        bad values the tests derive from ``defaults``.
      summary_value: optional ``summary_value(stats) -> (values, magnitudes)``, two
        pytrees of one structure: what a summary stands for, where its leaves are
        one representation of it among several (a factored scatter with per-column
        log scales), and each value's magnitude, the sum of the absolute terms it is
        made of (a scatter's entry (j, k): its Cauchy-Schwarz bound
        sqrt(S_jj S_kk)). The merge contract then compares the values, with the
        inputs' magnitudes as the scale. ``None``: the leaves and their |x|.
      merge_eps: how many eps of that scale two orders of merging may differ by:
        2 for sums of three terms (the default; see the contract's docstring), more
        for a summary re-factored at each merge (say why where it is set).
    """

    settings: Mapping[str, Any]
    family: Any
    params: Any
    sample_size: int
    grid: Mapping[str, tuple]
    lanes: tuple = ()
    bad: tuple = ()
    summary_value: Any = None
    merge_eps: float = 2.0


@dataclasses.dataclass(frozen=True, eq=False)
class FamilySpec:
    """A model family as the engine sees it.

    Attributes:
      name: the registry name (``"gaussian"``, ``"categorical"``, ...).
      defaults: every setting with its default value.
      check: ``check(settings) -> settings``: validates a complete settings
        dict once and returns it normalised (hashable values); raises
        ``ValueError("name=value: reason")`` naming the first bad setting.
      traced: ``traced(settings) -> {name: encode}``: the settings that may be
        per-lane data at this point, each with ``encode(value) -> float``.
      build: ``build(static, traced_names, num_chains, num_generations) ->
        Program``: ``static`` holds every setting not in ``traced_names``
        (checked, dtype resolved); the step receives the traced values as
        ``theta`` in ``traced_names`` order. Called through :meth:`program`,
        which caches it (one compilation per setting).
      theory: optional ``theory(settings, generations) -> {field: {statistic:
        curve}}`` (statistics ``mean``/``var``, curves of shape (G+1,)) where
        a closed form applies, ``{}`` elsewhere; import ``theory`` lazily.
      verifiers: ``{name: factory}`` of the family's verifiers
        (:class:`sim.regimes.Verifier` factories).
      key_settings: the settings always in a sweep point's key label (see
        the module docstring); ``None``: all of ``defaults``.
      description: one line for listings.
      example: optional ``example() -> Example``: a small point for the contract tests.
    """

    name: str
    defaults: Mapping[str, Any]
    check: Callable[[dict], dict]
    traced: Callable[[dict], Mapping[str, Callable[[Any], float]]]
    build: Callable[[dict, tuple, int, int], Program]
    theory: Callable[[dict, np.ndarray], dict] | None = None
    verifiers: Mapping[str, Callable] = dataclasses.field(default_factory=dict)
    key_settings: tuple[str, ...] | None = None
    description: str = ""
    example: Callable[[], Example] | None = None

    def settings(self, **given) -> dict:
        """The complete, checked settings: ``defaults`` updated by ``given``."""
        unknown = sorted(set(given) - set(self.defaults))
        if unknown:
            raise ValueError(
                f"{unknown[0]!r} is not a setting of family {self.name!r}; "
                f"choose from {sorted(self.defaults)}"
            )
        return self.check({**self.defaults, **given})

    def program(
        self, static: Mapping, traced: tuple = (), num_chains: int = 1, num_generations: int = 1
    ) -> Program:
        """The (cached) :class:`Program` for checked ``static`` settings."""
        static = dict(static)
        if "dtype" in static:
            static["dtype"] = resolve_dtype(static["dtype"])
        items = tuple(sorted(static.items()))
        return _program(self, items, tuple(traced), int(num_chains), int(num_generations))

    def key_label(self, settings: Mapping) -> str:
        """The JSON label a sweep point's key is derived from (module docstring)."""
        always = self.defaults if self.key_settings is None else self.key_settings
        shown = {k: settings[k] for k in always}
        for k, v in settings.items():
            if k not in shown and not _same(v, self.defaults.get(k)):
                shown[k] = v
        return json.dumps({k: plain(v) for k, v in sorted(shown.items())}, sort_keys=True)


@functools.cache
def _program(spec: FamilySpec, items: tuple, traced: tuple, num_chains: int, num_generations: int):
    return spec.build(dict(items), traced, num_chains, num_generations)


def _same(a, b) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except (TypeError, ValueError):
        return False


def plain(v):
    """A setting as a JSON-able Python value (NumPy scalars to Python)."""
    return v.item() if isinstance(v, np.generic) else v


def resolve_dtype(dtype) -> str:
    """A float dtype's name; ``None`` is JAX's default float (float32, or float64 with x64)."""
    name = jnp.dtype(dtype or jnp.result_type(float)).name
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype={dtype!r} must be float32 or float64")
    return name


def number(v) -> float:
    """The encoder of a traced real-valued setting."""
    return float(v)


# -- the generic chain ---------------------------------------------------------------------

FRACTIONS = {"fresh": "alpha", "anchored": "lam"}


def chain_program(
    *,
    family_of: Callable[[dict], Any],
    static_family,
    real,
    record: Callable,
    sample_size: int,
    regime: Regime | None,
    draws: str,
    traced: tuple,
    num_generations: int,
    chain_elements: int,
    block_size: int | None = None,
    snapshot_fields: tuple[str, ...] = (),
    first_passage_fields: tuple[str, ...] = (),
) -> Program:
    """The :class:`Program` of any family: the plain chain or a data regime.

    Args:
      family_of: ``family_of(theta_by_name) -> Family``, called inside the
        trace with the traced settings (tracers) by name (``{}`` when none is
        traced): static settings close over the builder, traced ones come in.
      static_family: a family with the same DataOps layout, built from static
        settings (it sizes a regime's initial state).
      real: the generation-0 params.
      record: the family's ``record(params)``.
      sample_size: M.
      regime: ``None`` for the plain chain (the state is the params), or a
        :class:`~sim.regimes.Regime` (the state a
        :class:`~sim.regimes.RegimeState`, the record gains ``train_size``). A
        traced ``alpha`` (fresh) or ``lam`` (anchored) overrides its fraction.
      draws: ``"points"`` (draw M samples and refit) or ``"exact"`` (draw the
        summary of M samples, ``DataOps.sample_stats``).
      traced: the traced settings' names, in ``theta`` order.
      num_generations: G (sizes the pool of ``subsample``).
      chain_elements, block_size, snapshot_fields, first_passage_fields: as
        in :class:`Program`.
    """
    names = tuple(traced)
    if regime is None and draws == "points" and static_family.noise is not None:
        dtype = jax.tree.leaves(real)[0].dtype
        step = ahead_replace_step(family_of, static_family, sample_size, dtype, names)
    elif regime is None:
        transition = stats_transition if draws == "exact" else replace_transition

        def step(key, params, theta):
            return transition(
                family_of(dict(zip(names, theta, strict=True))), sample_size, key, params
            )

    if regime is None:
        return Program(
            step,
            real,
            params_record(record),
            chain_elements,
            block_size,
            tuple(snapshot_fields),
            tuple(first_passage_fields),
        )
    fraction_name = FRACTIONS.get(regime.kind)
    pool_generations = num_generations if regime.kind == "subsample" else 0
    real_c = Constant(real)
    _, init = make_regime_step(static_family, regime, sample_size, real_c, draws, pool_generations)

    def regime_chain_step(key, state, theta):
        th = dict(zip(names, theta, strict=True))
        s, _ = make_regime_step(
            family_of(th),
            regime,
            sample_size,
            real_c,
            draws,
            pool_generations,
            th.get(fraction_name),
        )
        return s(key, state)

    return Program(
        regime_chain_step,
        init(real),
        regime_record(record),
        chain_elements,
        block_size,
        tuple(snapshot_fields),
        tuple(first_passage_fields),
    )


def regime_from_settings(regime, alpha=0.0, lam=0.0, mixing="fixed") -> Regime | None:
    """A setting ``regime`` as a :class:`~sim.regimes.Regime` (``None``: the plain chain).

    ``regime`` is a Regime, ``None`` or ``"replace"`` (the plain chain), or a
    kind name ``"accumulate"``, ``"fresh"`` (with ``alpha`` and ``mixing``)
    or ``"anchored"`` (with ``lam``), as sweeps give it.
    """
    if regime is None or isinstance(regime, Regime):
        return regime
    if regime == "replace":
        return None
    if regime == "fresh":
        return Regime.fresh(alpha, mixing=mixing)
    if regime == "anchored":
        return Regime.anchored(lam)
    if regime == "accumulate":
        return Regime.accumulate()
    raise ValueError(
        f"regime={regime!r} is not a Regime or one of replace, accumulate, fresh, anchored"
    )


METHODS = ("sample", "exact")


def check_chain_settings(s: dict) -> dict:
    """Checks (in place) the settings chain families share, where ``s`` has them:
    ``method`` (``sample`` or ``exact``), ``regime`` with ``alpha``, ``lam`` and
    ``mixing``, and ``dtype`` (float32, float64 or None)."""
    if "method" in s and s["method"] not in METHODS:
        raise ValueError(f"method={s['method']!r} is not one of {METHODS}")
    if "regime" in s:
        check_regime_setting(s)
    for name in ("alpha", "lam"):
        if name in s:
            s[name] = check_float(s[name], name)
    if s.get("dtype") is not None:
        resolve_dtype(s["dtype"])
    return s


def traced_fractions(s: dict) -> dict:
    """``alpha`` and ``lam`` as traced settings where they change no shape: always on
    the exact path (summaries of a traced size), and on the points path when the
    regime does not use them (there they set how many points are drawn)."""
    return {
        name: number
        for kind, name in FRACTIONS.items()
        if s["regime"] != kind or s.get("method") == "exact"
    }


def chain_elements(regime: Regime | None, sample_size: int, exact: bool, num_generations: int):
    """Floats one chain holds per generation: one summary on the exact path, else the
    largest sample (of a schedule), plus the stored pool of ``subsample``."""
    if exact:
        elements = 1
    else:
        elements = max(regime.schedule or (sample_size,)) if regime is not None else sample_size
    if regime is not None and regime.kind == "subsample":
        elements += sample_size * num_generations
    return elements


def check_regime_setting(settings: dict) -> None:
    """Validates ``regime``, and ``mixing`` whatever the regime (a sweep may set it
    beside a regime that ignores it: a typo must not pass there either)."""
    from sim.regimes import MIXINGS

    mixing = settings.get("mixing", "fixed")
    if mixing not in MIXINGS:
        raise ValueError(f"mixing={mixing!r} is not one of {MIXINGS}")
    regime_from_settings(
        settings["regime"],
        settings.get("alpha", 0.0),
        settings.get("lam", 0.0),
        settings.get("mixing", "fixed"),
    )


def static_regime(static: dict) -> Regime | None:
    """The regime of a build: traced fractions are stood in for by 0 (the step
    overrides them with the lane's value)."""
    return regime_from_settings(
        static["regime"],
        static.get("alpha", 0.0),
        static.get("lam", 0.0),
        static.get("mixing", "fixed"),
    )
