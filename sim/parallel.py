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


@functools.lru_cache(maxsize=64)
def _segment_fn(step, record, snapshot_fields, passage_fields, block, seg_len, sharding):
    """Jitted: run ``seg_len`` generations for one chunk of chains."""

    def segment(root, chain_ids, valid, state, snaps, passage, slots, t0, last):
        keys = jax.vmap(chain_key, in_axes=(None, 0))(root, chain_ids)
        lead = chain_ids.shape[0]

        def body(carry, t):
            state, snaps, passage = carry
            gkeys = jax.vmap(generation_key, in_axes=(0, None))(keys, t)
            new = jax.vmap(step)(gkeys, state)
            active = t <= last
            state = jax.tree.map(lambda a, b: jnp.where(active, a, b), new, state)
            fields = jax.vmap(record)(state)._asdict()
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
            in_shardings=(rep, chains, chains, chains, snap_sh, pass_sh, rep, rep, rep),
            out_shardings=(chains, snap_sh, pass_sh, pass_sh),
        )
    return jax.jit(segment, donate_argnums=(3, 4, 5), **kw)


def _plan(num_chains, block, ndev, chunk_chains):
    unit = block * ndev
    padded = -(-num_chains // block) * block
    nchunks = max(1, -(-padded // chunk_chains))
    chunk = -(-padded // (nchunks * unit)) * unit
    return nchunks, chunk


def simulate(
    key,
    step,
    params0,
    record,
    *,
    num_generations: int,
    num_chains: int,
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
) -> SimulationResult:
    """Runs ``num_chains`` chains of ``step`` and reduces their records.

    Args:
      key: the root PRNG key (a typed key from ``jax.random.key``).
      step: ``step(key, params) -> params`` for one chain (hashable; build it
        with a cached factory such as :func:`sim.chain.replace_step`).
      params0: the generation-0 params (the same for every chain).
      record: ``record(params) -> NamedTuple of scalars`` (hashable).
      num_generations: G, the number of fits.
      num_chains: C.
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
      chunk_chains: chains per compiled call (rounded to blocks x devices).
      segment_length: generations per compiled call (progress granularity).
      devices: devices to shard chains over (default: all local devices).
      progress: a callable ``progress(n)`` advanced once per chunk-segment, or
        ``None`` for a tqdm bar (disabled with ``False``).
      progress_desc: label of the tqdm bar.

    Returns:
      A :class:`SimulationResult`.
    """
    g = check_int(num_generations, "num_generations", 1)
    c = check_int(num_chains, "num_chains", 1)
    snaps_at = check_generations(snapshot_generations, g, "snapshot_generations")
    rec0 = record(params0)
    names = list(rec0._fields)
    shapes = {f: tuple(np.shape(v)) for f, v in zip(names, rec0, strict=True)}
    for f in (*snapshot_fields, *first_passage_fields):
        if f not in names:
            raise ValueError(f"record field {f!r} is not one of {names}")
    for f in first_passage_fields:
        if shapes[f]:
            raise ValueError(f"first-passage field {f!r} has shape {shapes[f]}; it must be scalar")
    snapshot_fields = tuple(snapshot_fields) if snaps_at else ()
    passage_fields = tuple(first_passage_fields)
    widths = {f: math.prod(shapes[f]) for f in names}
    block = block_size or min(DEFAULT_BLOCK_SIZE, 1 << max(0, math.ceil(math.log2(c))))
    if block & (block - 1):
        raise ValueError(f"block_size={block} must be a power of two")
    devices = list(devices or jax.local_devices())
    ndev = len(devices)
    if chunk_chains is None:
        chunk_chains = max(
            block,
            min(DEFAULT_MAX_CHUNK_CHAINS, DEFAULT_MAX_CHUNK_ELEMENTS // max(1, chain_elements)),
        )
    nchunks, chunk = _plan(c, block, ndev, check_int(chunk_chains, "chunk_chains", 1))
    seg_max = segment_length or DEFAULT_MAX_SEGMENT
    nseg = -(-g // check_int(seg_max, "segment_length", 1))
    seg_len = -(-g // nseg)
    sharding = None
    if ndev > 1:
        sharding = NamedSharding(default_mesh(devices), PartitionSpec("chains"))
    fn = _segment_fn(step, record, snapshot_fields, passage_fields, block, seg_len, sharding)

    nsnap = len(snaps_at) if snapshot_fields else 0
    slots = np.full(nseg * seg_len + 2, nsnap, np.int32)
    for j, t in enumerate(snaps_at if snapshot_fields else ()):
        slots[t] = j
    slots = jnp.asarray(slots)
    dtype = rec0[0].dtype

    bar = None
    if progress is None:
        from tqdm.auto import tqdm

        bar = tqdm(total=nchunks * nseg, desc=progress_desc, unit="seg", leave=False)
        progress = bar.update
    elif progress is False:
        progress = lambda n: None

    snap_cols = sum(widths[f] for f in snapshot_fields)
    counts, stats, snap_out, finals, passages = [], [], [], [], []
    t_first = t_run = 0.0
    for ci in range(nchunks):
        ids = ci * chunk + np.arange(chunk, dtype=np.int64)
        valid = ids < c
        ids_j = jnp.asarray(np.minimum(ids, np.iinfo(np.int32).max).astype(np.int32))
        valid_j = jnp.asarray(valid)
        state = jax.tree.map(lambda x: jnp.broadcast_to(x, (chunk,) + jnp.shape(x)), params0)
        snaps = jnp.zeros((nsnap + 1, snap_cols, chunk), dtype)
        passage = jnp.full((len(passage_fields), chunk), -1, jnp.int32)
        if sharding is not None:
            ids_j, valid_j = jax.device_put((ids_j, valid_j), sharding)
            state = jax.device_put(state, sharding)
            snaps = jax.device_put(
                snaps, NamedSharding(sharding.mesh, PartitionSpec(None, None, "chains"))
            )
            passage = jax.device_put(
                passage, NamedSharding(sharding.mesh, PartitionSpec(None, "chains"))
            )
        chunk_blocks = []
        for s in range(nseg):
            args = (
                key,
                ids_j,
                valid_j,
                state,
                snaps,
                passage,
                slots,
                jnp.int32(1 + s * seg_len),
                jnp.int32(g),
            )
            t = time.perf_counter()
            state, snaps, passage, blocks = fn(*args)
            chunk_blocks.append(np.asarray(blocks))
            dt = time.perf_counter() - t
            if ci == 0 and s == 0:
                t_first = dt  # includes tracing and compilation on a cache miss
            else:
                t_run += dt
            progress(1)
        blocks = np.concatenate(chunk_blocks, 0)[:g]  # (G, nb, F, 4)
        counts.append(valid.reshape(-1, block).sum(1))
        stats.append(np.moveaxis(blocks, 1, 0))  # (nb, G, F, 4)
        keep = valid.nonzero()[0]
        snap_out.append(np.asarray(snaps)[:nsnap][..., keep])
        passages.append(np.asarray(passage)[:, keep])
        finals.append(jax.tree.map(lambda x, keep=keep: np.asarray(x)[keep], state))
    if bar is not None:
        bar.close()

    t = time.perf_counter()
    counts = np.concatenate(counts)
    nz = counts > 0
    mean, m2, m3, m4 = _combine_blocks(counts[nz], np.concatenate(stats)[nz])
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
    snap_all = np.concatenate(snap_out, -1) if snapshot_fields else None
    snapshots = {}
    col = 0
    for f in snapshot_fields:
        w = widths[f]
        arr = np.moveaxis(snap_all[:, col : col + w, :], 1, 2).reshape(nsnap, c, *shapes[f])
        if snaps_at and snaps_at[0] == 0:  # generation 0 is params0 for every chain
            arr[0] = np.asarray(rec0[names.index(f)])
        snapshots[f] = arr
        col += w
    passage_all = np.concatenate(passages, -1).astype(np.int64)
    first_passage = {}
    for j, f in enumerate(passage_fields):
        hit0 = bool(np.asarray(rec0[names.index(f)]) != 0)  # generation 0, the same for all
        first_passage[f] = np.zeros(c, np.int64) if hit0 else passage_all[j]
    final = jax.tree.map(lambda *xs: np.concatenate(xs), *finals)
    steps = nchunks * nseg
    timings = dict(
        first_call_s=t_first,
        steady_s=t_run,
        # time of a cached call, estimated from the steady calls
        run_s=t_run * steps / max(steps - 1, 1) if steps > 1 else t_first,
        reduce_s=time.perf_counter() - t,
    )
    return SimulationResult(
        c,
        np.arange(g + 1),
        moments,
        np.asarray(snaps_at if snapshot_fields else (), np.int64),
        snapshots,
        final,
        timings,
        first_passage,
    )
