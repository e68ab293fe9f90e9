"""Single- and multi-process placement of the chains' arrays.

One process (the usual case) shards chains over its local devices. Several
processes (a TPU pod slice, several GPU hosts) run the same program over all
devices of all processes after :func:`initialize`; each process then feeds
and fetches the lanes its devices hold.
"""

from __future__ import annotations

import jax
import numpy as np


def run_devices() -> list:
    """The devices a run shards its chains over: every device of every process."""
    return list(jax.devices())


def put(x, sharding):
    """Places host arrays (a pytree) with ``sharding``."""
    return jax.device_put(x, sharding)


def fetch(x) -> np.ndarray:
    """A (possibly sharded) device array as a host NumPy array."""
    return np.asarray(x)
