"""Single- and multi-process placement of the chains' arrays.

One process (the usual case) shards chains over its local devices. Several
processes (a TPU pod slice, several GPU hosts, or several CPU processes on one
machine) run the same program over all devices of all processes after
:func:`initialize`: JAX's global arrays and ``jit`` are the distributed engine,
this module only feeds them and reads them back.

* :func:`run_devices`: every device of every process (``jax.devices()``); the
  1-D ``chains`` mesh of :mod:`sim.parallel` spans them all.
* :func:`put`: host inputs are deterministic, so every process holds the same
  full array; each process places the slices its own devices hold
  (``jax.make_array_from_callback``).
* :func:`fetch`: a global array gathered to every process as NumPy
  (``process_allgather``), so every process reduces the same numbers and the
  results are bit-identical to a single-process run.
* :func:`is_main_process`: process 0, the one that writes files.

Every process must make the same calls in the same order (the gathers are
collectives): write files only on the main process, but compute everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import jax
import numpy as np

# The explicit arguments of the call to initialize() that started the distributed
# runtime (None: not started by us).
_initialized: dict | None = None


def _check_count(value, name: str, least: int):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}={value!r}: must be an integer >= {least}")
    if value < least:
        raise ValueError(f"{name}={value}: must be >= {least}")
    return int(value)


def check_arguments(
    coordinator_address=None, num_processes=None, process_id=None, local_device_ids=None
) -> dict:
    """The arguments of :func:`initialize`, checked: ``ValueError('name=value: reason')``."""
    if coordinator_address is not None:
        if not isinstance(coordinator_address, str) or not re.fullmatch(
            r"(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):(\d{1,5})", coordinator_address
        ):
            raise ValueError(
                f"coordinator_address={coordinator_address!r}: must be 'host:port' "
                "(e.g. '10.0.0.1:1234'; '[::1]:1234' for an IPv6 address)"
            )
        port = int(coordinator_address.rsplit(":", 1)[1])
        if not 0 < port < 65536:
            raise ValueError(
                f"coordinator_address={coordinator_address!r}: port {port} is not in 1..65535"
            )
    num_processes = _check_count(num_processes, "num_processes", 1)
    process_id = _check_count(process_id, "process_id", 0)
    if num_processes is not None and process_id is not None and process_id >= num_processes:
        raise ValueError(
            f"process_id={process_id}: must be < num_processes={num_processes} "
            f"(processes are numbered 0..{num_processes - 1})"
        )
    if local_device_ids is not None:
        ids = [local_device_ids] if isinstance(local_device_ids, int) else local_device_ids
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence) or not ids:
            raise ValueError(
                f"local_device_ids={local_device_ids!r}: must be a device id or a "
                "non-empty list of them"
            )
        local_device_ids = [_check_count(i, "local_device_ids item", 0) for i in ids]
        if len(set(local_device_ids)) != len(local_device_ids):
            raise ValueError(f"local_device_ids={local_device_ids!r}: repeated ids")
    return dict(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        local_device_ids=local_device_ids,
    )


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids: int | Sequence[int] | None = None,
    *,
    initialization_timeout: int = 300,
) -> None:
    """Joins this process to a multi-process run (``jax.distributed.initialize``).

    Call it in every process before anything touches a JAX backend (before the
    first computation, ``jax.devices()`` or ``jax.device_put``).

    On a Cloud TPU pod slice (and under Slurm or Open MPI) every argument can be
    omitted: JAX detects them. Elsewhere (GPU hosts, several CPU processes) give
    ``coordinator_address`` (``host:port`` of process 0, the same in every
    process), ``num_processes`` and this process's ``process_id`` (0 ..
    ``num_processes - 1``). CPU processes exchange data through JAX's CPU
    collectives, ``jax_cpu_collectives_implementation`` (``"gloo"``, JAX's
    default, needs nothing more; ``"mpi"`` needs an MPI launcher).

    Calling it again with the same (or no) arguments does nothing, so library
    code may call it defensively.

    Raises:
      ValueError: an argument is malformed or inconsistent (``process_id >=
        num_processes``), or a second call asks for another configuration.
      RuntimeError: a JAX backend was already in use (from JAX).
    """
    global _initialized
    args = check_arguments(coordinator_address, num_processes, process_id, local_device_ids)
    if _initialized is not None or jax.distributed.is_initialized():
        before = _initialized or {}
        clash = [
            f"{k}={v!r} (initialized with {before.get(k)!r})"
            for k, v in args.items()
            if v is not None and before.get(k) is not None and before[k] != v
        ]
        if clash:
            raise ValueError(
                "jax.distributed is already initialized with other arguments: " + ", ".join(clash)
            )
        return
    jax.distributed.initialize(**args, initialization_timeout=initialization_timeout)
    _initialized = args


def is_initialized() -> bool:
    """Whether this process belongs to a distributed run (:func:`initialize` was called)."""
    return _initialized is not None or jax.distributed.is_initialized()


def process_index() -> int:
    """This process's index (0 in a single-process run)."""
    return jax.process_index()


def process_count() -> int:
    """The number of processes of the run (1 unless :func:`initialize` joined several)."""
    return jax.process_count()


def is_main_process() -> bool:
    """True on process 0: the one process that writes files (checkpoints, outputs)."""
    return jax.process_index() == 0


def run_devices() -> list:
    """The devices a run shards its chains over: every device of every process."""
    return list(jax.devices())


def _put_leaf(x, sharding):
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        data = _put_leaf(jax.random.key_data(x), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return jax.device_put(x, sharding)  # already global: a reshard
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def put(x, sharding):
    """Places host arrays (a pytree) with ``sharding``.

    In a multi-process run every process passes the same full host arrays; each
    places the slices that its own devices hold.
    """
    if sharding.is_fully_addressable:
        return jax.device_put(x, sharding)
    return jax.tree.map(lambda leaf: _put_leaf(leaf, sharding), x)


def fetch(x) -> np.ndarray:
    """A (possibly sharded, possibly global) device array as a host NumPy array.

    A global array is gathered to every process, so every process sees all of
    it (a collective: every process must call it).
    """
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        if x.sharding.is_fully_replicated:
            return np.asarray(x.addressable_data(0))
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def main_decides(flag: bool) -> bool:
    """Process 0's ``flag`` on every process (a collective when there are several).

    For decisions that lead to collectives (whether to gather a checkpoint now),
    which every process must take alike even if each computed its own.
    """
    if jax.process_count() == 1:
        return bool(flag)
    from jax.experimental import multihost_utils

    return bool(multihost_utils.broadcast_one_to_all(np.asarray(bool(flag))))


def same_on_all(token: str) -> bool:
    """Whether every process passed the same ``token`` (a collective when there are several)."""
    if jax.process_count() == 1:
        return True
    import hashlib

    from jax.experimental import multihost_utils

    digest = np.frombuffer(hashlib.sha256(token.encode()).digest()[:8], np.int32)
    gathered = np.asarray(multihost_utils.process_allgather(digest))
    return bool((gathered == gathered[0]).all())
