"""How a run is cut: chains per point, reduction blocks, chunks of lanes, segments of
generations, and where the lanes live (devices, the mesh, host<->device transfers)."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sim._validate import check_int

DEFAULT_BLOCK_SIZE = 1024
# Upper bound on per-generation samples held at once in one chunk (sample path).
DEFAULT_MAX_CHUNK_ELEMENTS = 1 << 24
DEFAULT_MAX_CHUNK_CHAINS = 1 << 16
DEFAULT_MAX_SEGMENT = 100


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
