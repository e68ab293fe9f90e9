"""The driver: chunks of lanes through segments, progress, checkpoints, and the results."""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from sim._validate import check_generations, check_int
from sim.parallel.plan import _devices, _fetch, _put, default_mesh, plan_run
from sim.parallel.reduction import SimulationResult, _point_result
from sim.parallel.segment import _segment_fn, _with_theta, initial_info


def simulate(
    key,
    step,
    params0,
    record,
    *,
    num_generations: int,
    num_chains: int,
    progress_desc: str = "chains",
    **kwargs,
) -> SimulationResult:
    """Runs ``num_chains`` chains of ``step`` and reduces their records.

    Args:
      key: the root PRNG key (a typed key from ``jax.random.key``).
      step: ``step(key, state) -> (state, info)`` for one chain (hashable;
        build it with a cached factory such as :func:`sim.chain.replace_step`).
      params0: the generation-0 params (the same for every chain).
      record: ``record(state, info) -> NamedTuple of scalars`` (hashable;
        :func:`sim.chain.params_record` adapts a ``record(params)``).
      num_generations: G, the number of fits.
      num_chains: C.
      progress_desc: label of the tqdm bar.
      **kwargs: the options of :func:`simulate_points` (snapshots, hitting
        times, chunking, devices, progress, checkpoint).

    Returns:
      A :class:`SimulationResult`.
    """
    (result,) = simulate_points(
        jnp.reshape(key, (1,)),
        _with_theta(step),
        params0,
        record,
        num_generations=num_generations,
        num_chains=num_chains,
        progress_desc=progress_desc,
        **kwargs,
    )
    return result


def _chunk_arrays(counts, blocks, snaps, passage, state) -> dict:
    arrays = {"counts": counts, "blocks": blocks, "snaps": snaps, "passage": passage}
    for i, leaf in enumerate(jax.tree.leaves(state) if state is not None else ()):
        arrays[f"state/{i}"] = leaf
    return arrays


def simulate_points(
    point_keys,
    step,
    params0,
    record,
    *,
    num_generations: int,
    num_chains: int,
    point_params=(),
    snapshot_generations=(),
    snapshot_fields=(),
    first_passage_fields=(),
    chain_elements: int = 1,
    block_size: int | None = None,
    lane_group: int | None = None,
    chunk_chains: int | None = None,
    segment_length: int | None = None,
    devices=None,
    progress=None,
    progress_desc: str = "chains",
    checkpoint=None,
    keep_final: bool = True,
) -> list[SimulationResult]:
    """Runs ``num_chains`` chains at each of P parameter points in one program.

    The points share one compiled step: ``step(key, state, theta)`` gets its
    point's slice of ``point_params`` as ``theta`` (traced scalars, so one
    program serves every value). Lanes are laid out point-major, each point's
    chains padded to whole reduction blocks, and chunked and sharded like
    chains; chain ``i`` of point ``p`` uses ``chain_key(point_keys[p], i)``.

    Args:
      point_keys: typed PRNG keys, shape (P,): one root key per point.
      step: ``step(key, state, theta) -> (state, info)`` for one chain
        (hashable); the info of generation 0 is zeros (:func:`initial_info`).
      params0: the generation-0 params (the same for every chain and point).
      record: ``record(state, info) -> NamedTuple of scalars`` (hashable).
      num_generations: G, the number of fits.
      num_chains: C, chains per point.
      point_params: a pytree of arrays with leading axis P (``()`` for none).
      snapshot_generations: generations whose per-chain values are returned.
      snapshot_fields: record fields kept at those generations.
      first_passage_fields: scalar record fields whose first nonzero
        generation is tracked per chain (e.g. ``"absorbed"``): a hitting time
        that needs no per-generation snapshots.
      chain_elements: the size of one chain's per-generation working arrays
        (M samples, or K categories); only used to size chunks so that one
        generation of a chunk stays under ``DEFAULT_MAX_CHUNK_ELEMENTS``.
      block_size: chains per reduction block (a power of two, fixed by default
        from ``num_chains`` only so that results do not depend on chunking).
      lane_group: ``None``, or a power of two W: the step and the record run on
        groups of ``min(W, block)`` lanes in turn (``sim.parallel.segment``, lane
        groups), for a step whose batched arithmetic rounds by batch shape.
      chunk_chains: lanes per compiled call (rounded to blocks x devices).
      segment_length: generations per compiled call (progress and checkpoint
        granularity).
      devices: devices to shard lanes over (default: all devices of the run).
      progress: a callable ``progress(n)`` advanced once per chunk-segment, or
        ``None`` for a tqdm bar (disabled with ``False``).
      progress_desc: label of the tqdm bar.
      checkpoint: a :class:`sim.checkpoint.Checkpointer`, or None.
      keep_final: keep every chain's final params on the host (``final``);
        False drops them (``final`` is None), which a million chains of a
        large model need (see the memory model in the README).

    Returns:
      One :class:`SimulationResult` per point.
    """
    point_keys = jnp.asarray(point_keys)
    if point_keys.ndim != 1:
        raise ValueError(f"point_keys must have shape (P,); got {point_keys.shape}")
    npoints = point_keys.shape[0]
    for leaf in jax.tree.leaves(point_params):
        if np.shape(leaf)[:1] != (npoints,):
            raise ValueError(
                f"point_params leaves need a leading axis of P={npoints}; got {np.shape(leaf)}"
            )
    info0 = initial_info(step, point_keys[0], params0, jax.tree.map(lambda a: a[0], point_params))
    rec0 = record(params0, info0)
    names = list(rec0._fields)
    shapes = {f: tuple(np.shape(v)) for f, v in zip(names, rec0, strict=True)}
    for f in (*snapshot_fields, *first_passage_fields):
        if f not in names:
            raise ValueError(f"record field {f!r} is not one of {names}")
    for f in first_passage_fields:
        if shapes[f]:
            raise ValueError(f"first-passage field {f!r} has shape {shapes[f]}; it must be scalar")
    if lane_group is not None:
        lane_group = check_int(lane_group, "lane_group", 1)
        if lane_group & (lane_group - 1):
            raise ValueError(f"lane_group={lane_group} must be a power of two")
    devices = _devices(devices)
    plan = plan_run(
        num_chains,
        num_generations,
        num_points=npoints,
        chain_elements=chain_elements,
        block_size=block_size,
        chunk_chains=chunk_chains,
        segment_length=segment_length,
        num_devices=len(devices),
    )
    g, c, cp, block, chunk = (
        plan.num_generations,
        plan.num_chains,
        plan.chains_per_point,
        plan.block,
        plan.chunk,
    )
    nseg, seg_len = plan.num_segments, plan.segment_length
    snaps_at = check_generations(snapshot_generations, g, "snapshot_generations")
    snapshot_fields = tuple(snapshot_fields) if snaps_at else ()
    passage_fields = tuple(first_passage_fields)
    widths = {f: math.prod(shapes[f]) for f in names}
    sharding = None
    if len(devices) > 1:
        sharding = NamedSharding(default_mesh(devices), PartitionSpec("chains"))
    width = None if lane_group is None else min(lane_group, block)
    fn = _segment_fn(step, record, snapshot_fields, passage_fields, block, seg_len, sharding, width)

    nsnap = len(snaps_at) if snapshot_fields else 0
    slots = np.full(nseg * seg_len + 2, nsnap, np.int32)
    for j, t in enumerate(snaps_at if snapshot_fields else ()):
        slots[t] = j
    slots = jnp.asarray(slots)
    dtype = rec0[0].dtype
    snap_cols = sum(widths[f] for f in snapshot_fields)
    rep = None if sharding is None else NamedSharding(sharding.mesh, PartitionSpec())
    snap_sh = pass_sh = None
    if sharding is not None:
        snap_sh = NamedSharding(sharding.mesh, PartitionSpec(None, None, "chains"))
        pass_sh = NamedSharding(sharding.mesh, PartitionSpec(None, "chains"))
    theta = _put(jax.tree.map(np.asarray, point_params), rep)
    keys_dev = point_keys if rep is None else _put(point_keys, rep)

    state0 = jax.tree.map(lambda x: np.broadcast_to(np.asarray(x), (chunk,) + np.shape(x)), params0)
    if checkpoint is not None:
        checkpoint.bind(
            dict(
                plan=plan._asdict(),
                record=names,
                snapshot_generations=list(snaps_at) if snapshot_fields else [],
                snapshot_fields=list(snapshot_fields),
                first_passage_fields=list(passage_fields),
                state=[
                    [list(np.shape(x)), str(np.asarray(x).dtype)] for x in jax.tree.leaves(params0)
                ],
                num_devices=len(devices),
                keep_final=keep_final,
            )
        )
    resume = checkpoint.load_progress() if checkpoint is not None else None

    bar = None
    if progress is None:
        from tqdm.auto import tqdm

        bar = tqdm(total=plan.steps, desc=progress_desc, unit="seg", leave=False)
        progress = bar.update
    elif progress is False:
        progress = lambda n: None

    chunks = []  # per chunk: dict of host arrays (see _chunk_arrays)
    t_first = t_run = 0.0
    calls = 0
    treedef = jax.tree.structure(params0)
    for ci in range(plan.num_chunks):
        lane = ci * chunk + np.arange(chunk, dtype=np.int64)
        point = np.minimum(lane // cp, npoints - 1)
        chain = lane - point * cp
        valid = (lane < plan.lanes) & (chain < c)
        counts = valid.reshape(-1, block).sum(1)
        saved = checkpoint.load_chunk(ci) if checkpoint is not None else None
        if saved is not None:
            chunks.append(saved)
            progress(nseg)
            continue
        done, chunk_blocks = 0, []
        state, snaps = state0, np.zeros((nsnap + 1, snap_cols, chunk), dtype)
        passage = np.full((len(passage_fields), chunk), -1, np.int32)
        if resume is not None and resume[0] == ci:
            _, done, arrays = resume
            leaves = [arrays[f"state/{i}"] for i in range(treedef.num_leaves)]
            state = jax.tree.unflatten(treedef, leaves)
            snaps, passage = arrays["snaps"], arrays["passage"]
            chunk_blocks = [arrays["blocks"]]
            progress(done)
        state = _put(state, sharding)
        snaps, passage = _put(snaps, snap_sh), _put(passage, pass_sh)
        lane_args = _put(
            (
                point.astype(np.int32),
                np.minimum(chain, np.iinfo(np.int32).max).astype(np.int32),
                valid,
            ),
            sharding,
        )
        for s in range(done, nseg):
            t = time.perf_counter()
            state, snaps, passage, blocks = fn(
                keys_dev,
                *lane_args,
                theta,
                state,
                snaps,
                passage,
                slots,
                jnp.int32(1 + s * seg_len),
                jnp.int32(g),
            )
            chunk_blocks.append(_fetch(blocks))
            dt = time.perf_counter() - t
            if calls == 0:
                t_first = dt  # includes tracing and compilation on a cache miss
            else:
                t_run += dt
            calls += 1
            progress(1)
            if checkpoint is not None and s + 1 < nseg:

                def progress_arrays(b=chunk_blocks, sn=snaps, pa=passage, st=state, n=counts):
                    host = jax.tree.map(_fetch, st)
                    return _chunk_arrays(n, np.concatenate(b, 0), _fetch(sn), _fetch(pa), host)

                checkpoint.maybe_save_progress(ci, s + 1, progress_arrays)
        arrays = _chunk_arrays(
            counts,
            np.concatenate(chunk_blocks, 0)[:g],
            _fetch(snaps),
            _fetch(passage),
            jax.tree.map(_fetch, state) if keep_final else None,
        )
        if checkpoint is not None:
            checkpoint.save_chunk(ci, arrays)
        chunks.append(arrays)
    if bar is not None:
        bar.close()

    t = time.perf_counter()
    counts = np.concatenate([a["counts"] for a in chunks])
    stats = np.concatenate([np.moveaxis(a["blocks"], 1, 0) for a in chunks])  # (nb, G, F, 4)
    snap_all = np.concatenate([a["snaps"][:nsnap] for a in chunks], -1)
    passage_all = np.concatenate([a["passage"] for a in chunks], -1).astype(np.int64)
    final_all = None
    if keep_final:
        final_all = [
            np.concatenate([a[f"state/{i}"] for a in chunks]) for i in range(treedef.num_leaves)
        ]
    timings = dict(
        first_call_s=t_first,
        steady_s=t_run,
        # time of a cached call, estimated from the steady calls
        run_s=t_run * calls / max(calls - 1, 1) if calls > 1 else t_first,
        calls=calls,
    )
    nbp = cp // block
    results = []
    for p in range(npoints):
        lanes = p * cp + np.arange(c)
        blocks = slice(p * nbp, (p + 1) * nbp)
        results.append(
            _point_result(
                rec0,
                names,
                shapes,
                widths,
                counts[blocks],
                stats[blocks],
                snap_all[..., lanes],
                passage_all[:, lanes],
                None if final_all is None else [x[lanes] for x in final_all],
                treedef,
                g,
                c,
                snaps_at,
                snapshot_fields,
                passage_fields,
                nsnap,
                timings,
            )
        )
    timings["reduce_s"] = time.perf_counter() - t  # all points (one dict, shared)
    return results
