r"""Many chains at once: chunks, devices, deterministic reductions, progress.

:func:`simulate` runs ``num_chains`` independent chains of a step function for
``num_generations`` generations and returns, on the host:

* per-generation cross-chain moments of every record field (mean and central
  moments 2-4, in float64), from which means, variances and their Monte-Carlo
  standard errors follow;
* per-chain values of selected fields at selected *snapshot* generations (for
  quantiles, distribution tests and figures);
* the per-chain final parameters.

Memory. Per chunk of ``P`` chains the device holds the chain state (O(P)),
the transient samples of one generation (O(P * M) for the ``sample`` path,
O(P) for ``exact``), and per-generation block summaries. The host keeps block
summaries, O(num_chains / block_size * generations * fields), plus snapshots,
O(num_chains * snapshots * snapshot_fields). Nothing is O(chains *
generations * M), and nothing is O(chains * generations) unless you ask for
every generation as a snapshot.

Reproducibility. Chain ``i`` uses keys derived from ``(root, i, t)`` only
(:mod:`sim.chain`), so per-chain values are the same for any chunk size and
device count. Cross-chain moments are first reduced on the device over fixed
blocks of ``block_size`` consecutive chains by an explicit pairwise tree (the
order of every addition is fixed), then combined on the host in float64 over
all blocks at once. Both steps depend on the number of chains and the block
size only, so the moments are bit-identical across chunk sizes and device
counts too.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from sim._reduce import pairwise_sum
from sim._validate import check_generations, check_int
from sim.chain import chain_key, generation_key

DEFAULT_BLOCK_SIZE = 1024
# Upper bound on per-generation samples held at once in one chunk (sample path).
DEFAULT_MAX_CHUNK_ELEMENTS = 1 << 24
DEFAULT_MAX_CHUNK_CHAINS = 1 << 16
DEFAULT_MAX_SEGMENT = 100


class Moments(NamedTuple):
    """Cross-chain moments of one field, per generation (float64, host)."""

    count: int
    mean: np.ndarray  # shape=(G+1,)
    m2: np.ndarray  # shape=(G+1,), central moment E[(x - mean)^2] (divisor count)
    m3: np.ndarray  # shape=(G+1,)
    m4: np.ndarray  # shape=(G+1,)

    @property
    def var(self) -> np.ndarray:
        """Unbiased sample variance across chains."""
        return self.m2 * self.count / max(self.count - 1, 1)

    @property
    def sem(self) -> np.ndarray:
        """Monte-Carlo standard error of the cross-chain mean."""
        return np.sqrt(self.var / self.count)

    @property
    def var_se(self) -> np.ndarray:
        """Standard error of the sample variance, from the fourth moment."""
        n = self.count
        return np.sqrt(np.maximum(self.m4 - self.m2**2 * (n - 3) / (n - 1), 0.0) / n)


class SimulationResult(NamedTuple):
    """What :func:`simulate` returns (host arrays).

    A record field of per-chain shape ``s`` (``()`` for scalars, ``(B,)`` for a
    vector such as survival by frequency bucket) has moments of shape
    ``(G+1,) + s`` and snapshots of shape ``(S, num_chains) + s``.
    """

    num_chains: int
    generations: np.ndarray  # shape=(G+1,), 0..G
    moments: dict[str, Moments]  # per record field
    snapshot_generations: np.ndarray  # shape=(S,)
    snapshots: dict[str, np.ndarray]  # field -> shape=(S, num_chains) + field shape
    final: Any  # params pytree, leaves of shape=(num_chains, ...)
    timings: dict[str, float]
    # field -> shape=(num_chains,) int64: the first generation at which the
    # (scalar) field was nonzero, -1 if it never was up to G.
    first_passage: dict[str, np.ndarray] = {}
    # the fields whose moments hold an inf or NaN (overflow of a float32 fourth
    # moment, or a record that is itself infinite, e.g. KL off the support); a
    # RuntimeWarning names them too.
    nonfinite: tuple[str, ...] = ()


def _block_moments(x: jax.Array, valid: jax.Array, block: int) -> jax.Array:
    """Per-block [mean, sum d^2, sum d^3, sum d^4] of each column of x over valid lanes.

    x: (chains, F); returns (num_blocks, F, 4).
    """
    xb = jnp.moveaxis(x.reshape(-1, block, x.shape[-1]), 1, 2)  # (nb, F, block)
    wb = valid.reshape(-1, 1, block)
    cnt = pairwise_sum(wb.astype(x.dtype))
    mean = pairwise_sum(jnp.where(wb, xb, 0)) / jnp.maximum(cnt, 1)
    d = jnp.where(wb, xb - mean[..., None], 0)
    d2 = d * d
    return jnp.stack([mean, pairwise_sum(d2), pairwise_sum(d2 * d), pairwise_sum(d2 * d2)], -1)


def _columns(fields: dict, lead: int) -> jax.Array:
    """Record fields flattened to one (lead, F) array of columns, in field order."""
    return jnp.concatenate([jnp.reshape(v, (lead, -1)) for v in fields.values()], 1)


def _combine_blocks(counts: np.ndarray, stats: np.ndarray) -> tuple:
    """Exact float64 merge of block moments (Pebay 2008 shift formulas).

    counts: (B,), stats: (B, ..., 4) with [mean, M2, M3, M4] per block.
    """
    stats = stats.astype(np.float64)
    w = counts.astype(np.float64).reshape((-1,) + (1,) * (stats.ndim - 2))
    n = w.sum()
    mb, s2, s3, s4 = (stats[..., i] for i in range(4))
    mean = (w * mb).sum(0) / n
    d = mb - mean
    m2 = (s2 + w * d**2).sum(0)
    m3 = (s3 + 3 * d * s2 + w * d**3).sum(0)
    m4 = (s4 + 4 * d * s3 + 6 * d**2 * s2 + w * d**4).sum(0)
    return mean, m2 / n, m3 / n, m4 / n


def default_mesh(devices=None):
    """A 1-D mesh over the local devices with an Auto ``chains`` axis."""
    devices = list(devices or jax.local_devices())
    return jax.sharding.Mesh(
        np.asarray(devices), ("chains",), axis_types=(jax.sharding.AxisType.Auto,)
    )


# -- host and device placement (the only places that move arrays; multi-process runs
#    replace them with global-array versions, see sim.distributed) ------------------------


def _devices(devices) -> list:
    """The devices the chains are sharded over (default: every device of the run)."""
    if devices:
        return list(devices)
    from sim import distributed

    return list(distributed.run_devices())


def _put(x, sharding):
    """Places a host array (or pytree) with ``sharding`` (None: the default device)."""
    if sharding is None:
        return jax.tree.map(jnp.asarray, x)
    from sim import distributed

    return distributed.put(x, sharding)


def _fetch(x) -> np.ndarray:
    """A device array as a host NumPy array (all of it, on every process)."""
    from sim import distributed

    return distributed.fetch(x)


def initial_info(step, key, state0, theta=()):
    """The info recorded with generation 0: zeros shaped like a step's info.

    Generation 0 is the real distribution, produced by no fit: its diagnostics
    are zero (no training set, no iterations, no loss).
    """
    shapes = jax.eval_shape(step, key, state0, theta)[1]
    return jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)


@functools.cache
def _with_theta(step):
    """``step(key, state)`` as ``step(key, state, theta)`` with no per-point parameters."""

    def stepped(key, params, theta):
        del theta
        return step(key, params)

    return stepped


@functools.lru_cache(maxsize=64)
def _segment_fn(step, record, snapshot_fields, passage_fields, block, seg_len, sharding):
    """Jitted: run ``seg_len`` generations for one chunk of lanes (point, chain)."""

    def segment(
        point_keys, lane_point, chain_ids, valid, theta, state, snaps, passage, slots, t0, last
    ):
        keys = jax.vmap(lambda p, c: chain_key(point_keys[p], c))(lane_point, chain_ids)
        lane_theta = jax.tree.map(lambda a: a[lane_point], theta)
        lead = chain_ids.shape[0]

        def body(carry, t):
            state, snaps, passage = carry
            gkeys = jax.vmap(generation_key, in_axes=(0, None))(keys, t)
            new, info = jax.vmap(step)(gkeys, state, lane_theta)
            active = t <= last
            state = jax.tree.map(lambda a, b: jnp.where(active, a, b), new, state)
            fields = jax.vmap(record)(state, info)._asdict()
            blocks = _block_moments(_columns(fields, lead), valid, block)
            if snapshot_fields:
                snap = _columns({f: fields[f] for f in snapshot_fields}, lead).T
                snaps = jax.lax.dynamic_update_index_in_dim(snaps, snap, slots[t], 0)
            if passage_fields:
                hit = jnp.stack([fields[f] != 0 for f in passage_fields]) & active
                passage = jnp.where(hit & (passage < 0), t, passage)
            return (state, snaps, passage), blocks

        ts = t0 + jnp.arange(seg_len, dtype=jnp.int32)
        (state, snaps, passage), blocks = jax.lax.scan(body, (state, snaps, passage), ts)
        return state, snaps, passage, blocks

    kw = {}
    if sharding is not None:
        rep = NamedSharding(sharding.mesh, PartitionSpec())
        chains = sharding
        snap_sh = NamedSharding(sharding.mesh, PartitionSpec(None, None, "chains"))
        pass_sh = NamedSharding(sharding.mesh, PartitionSpec(None, "chains"))
        kw = dict(
            in_shardings=(
                rep,
                chains,
                chains,
                chains,
                rep,
                chains,
                snap_sh,
                pass_sh,
                rep,
                rep,
                rep,
            ),
            out_shardings=(chains, snap_sh, pass_sh, pass_sh),
        )
    return jax.jit(segment, donate_argnums=(5, 6, 7), **kw)


class Plan(NamedTuple):
    """How a run is cut: lanes (point x chain), blocks, chunks of lanes, segments."""

    num_points: int  # P
    num_chains: int  # C, chains per point
    chains_per_point: int  # C rounded up to whole blocks (the lane stride of a point)
    block: int  # chains per reduction block
    num_devices: int
    chunk: int  # lanes per compiled call (a multiple of block x devices)
    num_chunks: int
    num_generations: int  # G
    segment_length: int  # generations per compiled call
    num_segments: int

    @property
    def lanes(self) -> int:
        return self.num_points * self.chains_per_point

    @property
    def steps(self) -> int:
        """Compiled calls of the run (the progress bar's unit)."""
        return self.num_chunks * self.num_segments


def plan_run(
    num_chains: int,
    num_generations: int,
    *,
    num_points: int = 1,
    chain_elements: int = 1,
    block_size: int | None = None,
    chunk_chains: int | None = None,
    segment_length: int | None = None,
    num_devices: int = 1,
) -> Plan:
    """The :class:`Plan` of a run (see :func:`simulate_points` for the arguments).

    The block depends on ``num_chains`` only, never on chunking or devices, so
    the reductions (and therefore every result) do not either.
    """
    g = check_int(num_generations, "num_generations", 1)
    c = check_int(num_chains, "num_chains", 1)
    p = check_int(num_points, "num_points", 1)
    block = block_size or min(DEFAULT_BLOCK_SIZE, 1 << max(0, math.ceil(math.log2(c))))
    if block < 1 or block & (block - 1):
        raise ValueError(f"block_size={block} must be a power of two")
    if chunk_chains is None:
        chunk_chains = max(
            block,
            min(DEFAULT_MAX_CHUNK_CHAINS, DEFAULT_MAX_CHUNK_ELEMENTS // max(1, chain_elements)),
        )
    chunk_chains = check_int(chunk_chains, "chunk_chains", 1)
    cp = -(-c // block) * block
    lanes = p * cp
    unit = block * num_devices
    nchunks = max(1, -(-lanes // chunk_chains))
    chunk = -(-lanes // (nchunks * unit)) * unit
    nchunks = -(-lanes // chunk)
    seg_max = check_int(segment_length or DEFAULT_MAX_SEGMENT, "segment_length", 1)
    nseg = -(-g // seg_max)
    return Plan(p, c, cp, block, num_devices, chunk, nchunks, g, -(-g // nseg), nseg)


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
    fn = _segment_fn(step, record, snapshot_fields, passage_fields, block, seg_len, sharding)

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


def _point_result(
    rec0,
    names,
    shapes,
    widths,
    counts,
    stats,
    snap_all,
    passage_all,
    final_leaves,
    treedef,
    g,
    c,
    snaps_at,
    snapshot_fields,
    passage_fields,
    nsnap,
    timings,
) -> SimulationResult:
    """One point's reduced :class:`SimulationResult` from its blocks and lanes."""
    nz = counts > 0
    if not nz.all():  # padding blocks (no valid chain); skip the copy when there are none
        counts, stats = counts[nz], stats[nz]
    mean, m2, m3, m4 = _combine_blocks(counts, stats)
    moments = {}
    col = 0
    for name, x0 in zip(names, rec0, strict=True):
        shape, w = shapes[name], widths[name]
        x0 = np.asarray(x0, np.float64).reshape(1, *shape)
        zero = np.zeros_like(x0)

        def field(m, shape=shape, w=w, col=col):
            return m[:, col : col + w].reshape(-1, *shape)

        moments[name] = Moments(
            c,
            np.concatenate([x0, field(mean)]),
            np.concatenate([zero, field(m2)]),
            np.concatenate([zero, field(m3)]),
            np.concatenate([zero, field(m4)]),
        )
        col += w
    snapshots = {}
    col = 0
    for f in snapshot_fields:
        w = widths[f]
        arr = np.moveaxis(snap_all[:, col : col + w, :], 1, 2).reshape(nsnap, c, *shapes[f])
        if snaps_at and snaps_at[0] == 0:  # generation 0 is params0 for every chain
            arr[0] = np.asarray(rec0[names.index(f)])
        snapshots[f] = arr
        col += w
    first_passage = {}
    for j, f in enumerate(passage_fields):
        hit0 = bool(np.asarray(rec0[names.index(f)]) != 0)  # generation 0, the same for all
        first_passage[f] = np.zeros(c, np.int64) if hit0 else passage_all[j]
    nonfinite = tuple(
        f
        for f, m in moments.items()
        if not all(np.isfinite(x).all() for x in (m.mean, m.m2, m.m3, m.m4))
    )
    if nonfinite:
        warnings.warn(
            f"moments of record fields {list(nonfinite)} are not finite (inf or NaN): a "
            f"{np.dtype(rec0[0].dtype).name} overflow of their fourth moments, or records "
            "that are infinite themselves; use dtype=float64 or smaller scales "
            "(SimulationResult.nonfinite lists them)",
            RuntimeWarning,
            stacklevel=3,
        )
    return SimulationResult(
        c,
        np.arange(g + 1),
        moments,
        np.asarray(snaps_at if snapshot_fields else (), np.int64),
        snapshots,
        None if final_leaves is None else jax.tree.unflatten(treedef, final_leaves),
        timings,
        first_passage,
        nonfinite,
    )
