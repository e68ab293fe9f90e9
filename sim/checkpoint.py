r"""Checkpoints of a long simulation, taken at chunk boundaries.

A run (:func:`sim.parallel.simulate_points`) walks over *chunks* of chains,
and within a chunk over *segments* of generations. A :class:`Checkpointer`
given to it saves

* ``chunk-NNNNN.npz`` when a chunk of chains is finished (its block moments,
  snapshots, hitting times and final params), once;
* ``progress.npz`` at a segment boundary inside a chunk (the chains' state and
  what the chunk has recorded so far), at most every ``every_s`` seconds and
  replaced each time.

A resumed run loads the finished chunks, restarts the chunk in progress from
its last saved segment and computes the rest. Keys are derived from (root,
chain, generation) only (:mod:`sim.chain`) and the compiled program is the
same, so the resumed result is bit-identical to an uninterrupted run.

Safety. Files are written atomically (:func:`sim.io.atomic_write`): a kill
leaves the previous file or the new one. Every file carries its *fingerprint*
(the caller's configuration, the run's plan, the versions of ``sim`` and JAX)
and a SHA-256 of its arrays. A file whose fingerprint differs from the current
run's, or whose content does not match its hash, or which cannot be read, is
refused with a :class:`CheckpointError` that names the file and what differs;
nothing is ever silently mixed in. Delete the directory (or choose another)
to start afresh.

Several processes (:mod:`sim.distributed`). Every process computes and reads,
only process 0 writes; the directory must be on a file system that every
process sees (an NFS or GCS-fuse mount on a TPU pod slice). A process that
finds other files than process 0 raises a :class:`CheckpointError` rather than
leaving the others waiting in a collective.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import time
import zipfile

import numpy as np

from sim import distributed
from sim.io import atomic_write

_META = "__meta__"
_FORMAT = 1


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used for this run (mismatched or corrupt)."""


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _jsonable(x):
    """``x`` with tuples as lists and NumPy scalars as Python numbers (for comparing)."""
    return json.loads(json.dumps(x, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def _diff(saved: dict, current: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(saved) | set(current)):
        a, b = saved.get(k, "<absent>"), current.get(k, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += _diff(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: checkpoint has {a!r}, this run has {b!r}")
    return out


class Checkpointer:
    """Saves and restores one run's chunks in ``directory``.

    Args:
      directory: where the files go (created if missing). One run per
        directory; a sweep gives each compiled group its own subdirectory.
      config: a JSON-able description of everything that determines the
        results (model, parameters, seed, sizes). It becomes part of the
        fingerprint, so a checkpoint taken with other settings is refused.
      every_s: the least time between two ``progress.npz`` saves (0: at every
        segment boundary). Finished chunks are always saved.
    """

    def __init__(self, directory: str, config: dict, every_s: float = 60.0):
        from sim.io import check_writable_dir

        check_writable_dir(directory, "checkpoint_dir")
        if isinstance(every_s, bool) or not isinstance(every_s, (int, float)):
            raise ValueError(f"checkpoint_every_s={every_s!r} must be a number >= 0")
        if not (math.isfinite(every_s) and every_s >= 0):
            raise ValueError(f"checkpoint_every_s={every_s!r} must be finite and >= 0")
        self.directory = os.fspath(directory)
        self.config = _jsonable(config)
        self.every_s = float(every_s)
        self.fingerprint: dict | None = None
        self._last_save = time.monotonic()

    # -- fingerprint -------------------------------------------------------------------------

    def bind(self, plan: dict) -> None:
        """Fixes the fingerprint for a run with ``plan`` (sizes, chunking, layout)."""
        import jax

        import sim

        self.fingerprint = _jsonable(
            {
                "format": _FORMAT,
                "config": self.config,
                "plan": plan,
                "versions": {"sim": sim.__version__, "jax": jax.__version__},
            }
        )
        os.makedirs(self.directory, exist_ok=True)
        self._last_save = time.monotonic()

    # -- files -------------------------------------------------------------------------------

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def _write(self, name: str, arrays: dict[str, np.ndarray], extra: dict) -> None:
        if not distributed.is_main_process():
            return
        arrays = {k: np.asarray(v) for k, v in arrays.items()}
        meta = {"fingerprint": self.fingerprint, "sha256": _digest(arrays), **extra}
        buf = io.BytesIO()
        np.savez(buf, **arrays, **{_META: np.asarray(json.dumps(meta))})
        atomic_write(self._path(name), buf.getvalue())

    def _read(self, name: str) -> tuple[dict, dict] | None:
        path = self._path(name)
        if not os.path.exists(path):
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            meta = json.loads(str(arrays.pop(_META)))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            raise CheckpointError(
                f"checkpoint file {path} is corrupt or unreadable ({type(e).__name__}: {e}); "
                "delete it (or the whole directory) to recompute that part"
            ) from None
        if meta.get("fingerprint") != self.fingerprint:
            diffs = _diff(meta.get("fingerprint") or {}, self.fingerprint or {})
            raise CheckpointError(
                f"checkpoint file {path} belongs to another run; refusing to mix it in. "
                "Differences: "
                + "; ".join(diffs[:8])
                + (" ..." if len(diffs) > 8 else "")
                + f". Use another directory or delete {self.directory}"
            )
        if meta.get("sha256") != _digest(arrays):
            raise CheckpointError(
                f"checkpoint file {path} is corrupt: its arrays do not match their SHA-256; "
                "delete it to recompute that part"
            )
        return arrays, meta

    def _read_everywhere(self, name: str) -> tuple[dict, dict] | None:
        """:meth:`_read`, checked to find the same file on every process."""
        try:
            got, error = self._read(name), None
        except CheckpointError as e:
            got, error = None, e
        token = "error" if error else ("" if got is None else got[1]["sha256"])
        agree = distributed.same_on_all(token)  # every process, before any raises
        if error is not None:
            raise error
        if not agree:
            raise CheckpointError(
                f"checkpoint file {self._path(name)} is not the same on every process "
                f"(this is process {distributed.process_index()}): put the checkpoint "
                "directory on a file system shared by all processes"
            )
        return got

    # -- what the runner calls ---------------------------------------------------------------

    def load_chunk(self, index: int) -> dict | None:
        """The arrays of finished chunk ``index``, or None if it is not saved."""
        got = self._read_everywhere(f"chunk-{index:05d}.npz")
        return None if got is None else got[0]

    def save_chunk(self, index: int, arrays: dict) -> None:
        self._write(f"chunk-{index:05d}.npz", arrays, {"chunk": index})
        path = self._path("progress.npz")
        if distributed.is_main_process() and os.path.exists(path):
            os.unlink(path)
        self._last_save = time.monotonic()

    def load_progress(self) -> tuple[int, int, dict] | None:
        """(chunk, segments done, arrays) of the chunk in progress, or None."""
        got = self._read_everywhere("progress.npz")
        if got is None:
            return None
        arrays, meta = got
        return int(meta["chunk"]), int(meta["segments"]), arrays

    def maybe_save_progress(self, chunk: int, segments: int, arrays_fn) -> bool:
        """Saves ``arrays_fn()`` as the progress of ``chunk`` if ``every_s`` has passed."""
        # every process gathers the arrays (a collective), so all follow process 0's clock
        if not distributed.main_decides(time.monotonic() - self._last_save >= self.every_s):
            return False
        self._write("progress.npz", arrays_fn(), {"chunk": chunk, "segments": segments})
        self._last_save = time.monotonic()
        return True
