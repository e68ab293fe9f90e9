"""A study's files: the output directory (checked, locked), CSVs, arrays, figures, manifest.

Every file goes through :func:`sim.io.atomic_path` (a temporary file renamed
over the target), figures included, with the mode the umask gives. The output
directory is checked before anything runs (:func:`check_output_dir`) and
locked while a study uses it (:func:`output_lock`): a second study writing to
the same directory at the same moment is refused with one line instead of
leaving files of two runs side by side.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import errno
import io
import json
import os
from collections.abc import Iterable

import numpy as np

from sim.io import atomic_path, atomic_write, check_writable_dir

LOCK_NAME = ".lock"


def check_output_dir(path: str, flag: str = "output_dir") -> str:
    """``path`` if a study can write there; ``ValueError('--output_dir=path: reason')``
    (:func:`sim.io.check_writable_dir`, which probes without leaving anything)."""
    return check_writable_dir(path, f"--{flag}")


_HELD: dict[str, tuple[int, int]] = {}  # real path -> (fd, depth): locks this process holds


@contextlib.contextmanager
def output_lock(path: str, flag: str = "output_dir"):
    """Holds an exclusive lock (``fcntl.flock`` on ``path/.lock``) while the block runs.

    Creates the directory. A directory another process holds is refused at once
    with ``ValueError('--output_dir=path: ...')``; the same process may nest the
    lock (the command line holds it for the whole run, ``write_study`` again
    while it writes). The lock dies with the process.
    """
    import fcntl

    os.makedirs(path, exist_ok=True)
    key = os.path.realpath(path)
    if key in _HELD:
        fd, depth = _HELD[key]
        _HELD[key] = (fd, depth + 1)
        try:
            yield
        finally:
            fd, depth = _HELD[key]
            _HELD[key] = (fd, depth - 1)
        return
    lock = os.path.join(path, LOCK_NAME)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            holder = ""
            with contextlib.suppress(OSError), open(lock) as f:
                holder = f.read().strip()
            raise ValueError(
                f"--{flag}={path}: another study is using this directory"
                + (f" ({holder})" if holder else "")
                + "; wait for it to finish or choose another --output_dir"
            ) from None
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()}".encode())
    _HELD[key] = (fd, 1)
    try:
        yield
    finally:
        _, depth = _HELD[key]
        if depth <= 1:
            del _HELD[key]
            os.close(fd)  # releases the lock
        else:
            _HELD[key] = (fd, depth - 1)


def write_csv(path: str, rows: Iterable[dict]) -> None:
    rows = list(rows)
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)
    atomic_write(path, buf.getvalue())


def write_npz(path: str, arrays: dict) -> None:
    """Compressed ``.npz``, written atomically."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write(path, buf.getvalue())


def write_manifest(path: str, manifest: dict) -> None:
    atomic_write(path, json.dumps(manifest, indent=2, default=_json_default) + "\n")


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def subplots(nrow: int, ncol: int, title: str | None = None, width=5.0, height=3.6):
    """A (nrow, ncol) grid of axes (always 2-D) on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        nrow, ncol, figsize=(width * ncol, height * nrow), squeeze=False, layout="constrained"
    )
    if title:
        fig.suptitle(title)
    return fig, axes


def save_figure(fig, output_dir: str, name: str) -> list[str]:
    """Saves ``fig`` as PNG and PDF (each atomically), closes it, and returns the paths."""
    import matplotlib.pyplot as plt

    paths = []
    try:
        for ext in ("png", "pdf"):
            p = os.path.join(output_dir, f"{name}.{ext}")
            with atomic_path(p) as tmp:
                fig.savefig(tmp, format=ext, dpi=130 if ext == "png" else None, bbox_inches="tight")
            paths.append(p)
    finally:
        plt.close(fig)
    return paths


def write_study(
    study,
    output_dir: str,
    *,
    experiment: str,
    summary_rows: Iterable[dict],
    run_arrays,
    plot_all,
    flags_dict: dict | None = None,
    wall_s: float | None = None,
) -> list[str]:
    """Writes a study's files under the directory's lock: summary and comparison CSVs,
    per-chain arrays (.npz, ``run_arrays(run) -> {name: array}`` stored as
    ``"<run label>/<name>"``), figures (PNG + PDF, from ``plot_all(study,
    output_dir)``) and the manifest.

    ``study`` has ``config`` (a dataclass with ``seed``, ``prng_impl`` and
    ``false_failure_rate``), ``runs`` (each with ``label`` and
    ``result.timings``), ``comparisons``, ``z_crit``, ``env`` and
    ``num_failed``. Returns the paths written.
    """
    with output_lock(output_dir):
        out = []
        p = os.path.join(output_dir, "summary.csv")
        write_csv(p, summary_rows)
        out.append(p)
        p = os.path.join(output_dir, "comparisons.csv")
        write_csv(p, (dataclasses.asdict(r) for r in study.comparisons))
        out.append(p)
        p = os.path.join(output_dir, "final_states.npz")
        arrays = {}
        for run in study.runs:
            key = run.label.replace("=", "").replace(" ", "_")
            arrays.update({f"{key}/{name}": v for name, v in run_arrays(run).items()})
        write_npz(p, arrays)
        out.append(p)
        out += plot_all(study, output_dir)
        p = os.path.join(output_dir, "manifest.json")
        cfg = dataclasses.asdict(study.config)
        manifest = dict(
            experiment=experiment,
            config=cfg,
            flags=flags_dict or cfg,
            seed=study.config.seed,
            prng_impl=study.config.prng_impl,
            environment=study.env,
            timings={r.label: r.result.timings for r in study.runs},
            wall_s=wall_s,
            false_failure_rate=study.config.false_failure_rate,
            z_threshold=study.z_crit,
            comparisons=dict(
                tested=sum(r.testable for r in study.comparisons),
                failed=study.num_failed,
                not_testable=sum(not r.testable for r in study.comparisons),
            ),
            outputs=[os.path.basename(x) for x in out],
        )
        write_manifest(p, manifest)
        out.append(p)
    return out
