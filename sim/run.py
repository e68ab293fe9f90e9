r"""One generic run: a family's name (or spec) and settings to a reduced result.

>>> import jax
>>> from sim.run import run
>>> res = run("gaussian", jax.random.key(0), num_chains=1000, num_generations=50,
...           sample_size=10, estimator="mle", progress=False)      # doctest: +SKIP
>>> res.moments["log_var"].mean[-1]                                  # doctest: +SKIP

Every family registered in :mod:`sim.families` runs through this one function:
its spec validates the settings (once), builds the program (cached: one
compilation per setting) and :func:`sim.parallel.simulate_points` runs it.
``sim.runners.run_gaussian`` and its siblings are thin wrappers.
"""

from __future__ import annotations

import jax.numpy as jnp

from sim import families
from sim._validate import check_int
from sim.chain import check_key
from sim.parallel import SimulationResult, simulate_points
from sim.spec import RUN_OPTIONS


def run(
    spec,
    key,
    *,
    num_chains: int,
    num_generations: int,
    regime=None,
    **settings,
) -> SimulationResult:
    """Simulates ``num_chains`` chains of a family and reduces their records.

    Args:
      spec: a registered family's name (:func:`sim.families.names`) or its
        :class:`~sim.spec.FamilySpec`.
      key: the root PRNG key (``sim.chain.root_key(seed)`` or
        ``jax.random.key(seed)``; a legacy ``jax.random.PRNGKey`` is accepted).
      num_chains, num_generations: C and G.
      regime: a :class:`~sim.regimes.Regime` (accumulate, fresh data, ...), a
        kind name as sweeps give it, or ``None`` for the family's plain chain.
      **settings: the family's settings (``spec.defaults`` lists them, with
        their defaults) and the engine's options: ``snapshot_generations``,
        ``snapshot_fields`` and ``first_passage_fields`` (default: the
        family's choice), ``chain_elements`` and ``block_size`` (default: the
        family's sizing), ``chunk_chains``, ``segment_length``, ``devices``,
        ``progress``, ``progress_desc``, ``checkpoint``, ``keep_final`` (see
        :func:`sim.parallel.simulate_points`).

    Returns:
      A :class:`~sim.parallel.SimulationResult` whose fields are those of the
      family's record (plus ``train_size`` under a regime).

    Raises:
      ValueError: naming the first bad setting, before anything is compiled.
    """
    spec = families.get(spec)
    options = {k: settings.pop(k) for k in RUN_OPTIONS if k in settings}
    if regime is not None:
        settings["regime"] = regime
    checked = spec.settings(**settings)
    key = check_key(key)
    c = check_int(num_chains, "num_chains", 1)
    g = check_int(num_generations, "num_generations", 1)
    schedule = getattr(checked.get("regime"), "schedule", None)
    if schedule and len(schedule) < g:
        raise ValueError(f"the schedule has {len(schedule)} sizes but num_generations={g}")
    program = spec.program(checked, (), c, g)
    snapshot_fields = options.pop("snapshot_fields", None)
    if snapshot_fields is None:
        snapshot_fields = program.snapshot_fields
    first_passage = options.pop("first_passage_fields", None)
    if first_passage is None:
        first_passage = program.first_passage_fields
    options.setdefault("chain_elements", program.chain_elements)
    if options.get("block_size") is None:
        options["block_size"] = program.block_size
    options["lane_group"] = program.lane_group
    (result,) = simulate_points(
        jnp.reshape(key, (1,)),
        program.step,
        program.init,
        program.record,
        num_generations=g,
        num_chains=c,
        snapshot_fields=tuple(snapshot_fields),
        first_passage_fields=tuple(first_passage),
        **options,
    )
    return result
