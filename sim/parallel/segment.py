"""One compiled segment: ``seg_len`` generations of a chunk of lanes, a ``scan`` of the
vmapped step, with per-generation block moments, snapshots and hitting times.

An :class:`sim.chain.AheadStep` is pipelined: the segment draws its first
generation's noise, and each generation fits on the noise it carries and draws the
next one's. The noise is a function of the chain's key and the generation only,
so a segment boundary (a chunk, a checkpoint, a resume) changes no number.

Lane groups. A step whose vmapped operations round by batch shape (matmuls and their
reductions on the CPU: the neural family) gets different last bits at another chunk
size or device count. With ``lane_group=W`` the step and the record run on groups of
W consecutive lanes, one group after another (``lax.map`` over each device's groups,
``vmap`` inside): every batched operation then has the batch shape W whatever the
chunk or the device count, and a group holds the same lanes in every layout (chunks
and each device's lanes start at multiples of the block, a multiple of W)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from sim.chain import AheadStep, chain_key, generation_key
from sim.parallel.reduction import _block_moments, _columns


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


def _lane_map(fn, width: int | None, num_devices: int):
    """``vmap(fn)`` over lanes, or over groups of ``width`` lanes in turn (module doc).

    The lanes (axis 0, sharded over ``num_devices`` in contiguous runs) are laid out as
    (groups per device, devices, width): ``lax.map`` walks the first axis, so each device
    loops over its own groups and every call inside is batched over exactly ``width``
    lanes per device.
    """
    if width is None:
        return jax.vmap(fn)

    def mapped(*args):
        lead = jax.tree.leaves(args)[0].shape[0]
        groups = lead // (num_devices * width)
        split = lambda a: jnp.swapaxes(a.reshape((num_devices, groups, width) + a.shape[1:]), 0, 1)
        out = jax.lax.map(lambda xs: jax.vmap(jax.vmap(fn))(*xs), jax.tree.map(split, args))
        return jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1).reshape((lead,) + a.shape[3:]), out)

    return mapped


@functools.lru_cache(maxsize=64)
def _segment_fn(
    step, record, snapshot_fields, passage_fields, block, seg_len, sharding, lane_group=None
):
    """Jitted: run ``seg_len`` generations for one chunk of lanes (point, chain).

    ``lane_group``: None (one ``vmap`` over the chunk) or a power of two <= ``block``,
    the lanes batched together (module doc, lane groups).
    """
    if lane_group is not None and (lane_group < 1 or block % lane_group):
        raise ValueError(f"lane_group={lane_group} must divide the block ({block})")
    ndev = 1 if sharding is None else sharding.mesh.size

    def segment(
        point_keys, lane_point, chain_ids, valid, theta, state, snaps, passage, slots, t0, last
    ):
        keys = jax.vmap(lambda p, c: chain_key(point_keys[p], c))(lane_point, chain_ids)
        lane_theta = jax.tree.map(lambda a: a[lane_point], theta)
        lead = chain_ids.shape[0]

        def gen_keys(t):
            return jax.vmap(generation_key, in_axes=(0, None))(keys, t)

        def body(carry, t):
            state, snaps, passage, noise = carry
            gkeys = gen_keys(t)
            if ahead:  # fit generation t on its noise, draw generation t+1's
                new, info = lanes(step.apply)(gkeys, state, lane_theta, noise)
                noise = lanes(step.draw)(gen_keys(t + 1), lane_theta)
            else:
                new, info = lanes(step)(gkeys, state, lane_theta)
            active = t <= last
            state = jax.tree.map(lambda a, b: jnp.where(active, a, b), new, state)
            fields = lanes(record)(state, info)._asdict()
            blocks = _block_moments(_columns(fields, lead), valid, block)
            if snapshot_fields:
                snap = _columns({f: fields[f] for f in snapshot_fields}, lead).T
                snaps = jax.lax.dynamic_update_index_in_dim(snaps, snap, slots[t], 0)
            if passage_fields:
                hit = jnp.stack([fields[f] != 0 for f in passage_fields]) & active
                passage = jnp.where(hit & (passage < 0), t, passage)
            return (state, snaps, passage, noise), blocks

        ts = t0 + jnp.arange(seg_len, dtype=jnp.int32)
        noise = lanes(step.draw)(gen_keys(t0), lane_theta) if ahead else ()
        carry = (state, snaps, passage, noise)
        (state, snaps, passage, _), blocks = jax.lax.scan(body, carry, ts)
        return state, snaps, passage, blocks

    ahead = isinstance(step, AheadStep)
    lanes = functools.partial(_lane_map, width=lane_group, num_devices=ndev)

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
