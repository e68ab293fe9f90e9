"""Files and provenance: atomic writes and the environment of a run.

Every file the project writes (tables, arrays, figures, checkpoints,
datasets) goes through :func:`atomic_path` (or :func:`atomic_write`, its
bytes form): the bytes land in a temporary file in the same directory, are
flushed to disk, and replace the target by one rename, so a reader (or a
resumed run) sees either the old file or the new one, never half of one, even
if the writer is killed. The file gets the mode a plain ``open(path, "w")``
would give a new file: 0666 less the process's umask (0644 under umask 022),
not ``mkstemp``'s private 0600.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import tempfile
import time


def _umask() -> int:
    """The process's umask (read from /proc where it can be, without changing it)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no way to read it without setting it elsewhere
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str):
    """Yields a temporary path beside ``path``; on success it replaces ``path`` by a rename.

    For writers that want a file name (NetCDF, HDF5) rather than bytes; on an
    error the temporary file is removed and ``path`` is left as it was.
    """
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=os.path.splitext(path)[1])
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def check_writable_dir(path, name: str = "directory") -> str:
    """``path`` if files can be written there; else ``ValueError('name=path: reason')``.

    The directory must exist and be writable, or be creatable: its nearest
    existing ancestor must be a writable directory. Both are probed by making
    (and removing) a temporary file or directory, so nothing is left behind and
    file systems that refuse files (``/proc``, ``/sys``) are caught before any
    work is done.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"{name}={path!r}: not a path; give a directory")
    if not str(path).strip():
        raise ValueError(f"{name}={path}: empty; give a directory")
    path = os.fspath(path)
    full = os.path.abspath(path)
    if os.path.exists(full) and not os.path.isdir(full):
        raise ValueError(f"{name}={path}: exists and is not a directory")
    probe_in = full
    while not os.path.exists(probe_in):
        parent = os.path.dirname(probe_in)
        if parent == probe_in:
            break
        probe_in = parent
    if not os.path.isdir(probe_in):
        raise ValueError(f"{name}={path}: {probe_in} is not a directory")
    try:
        if probe_in == full:
            fd, tmp = tempfile.mkstemp(dir=full, prefix=".probe-")
            os.close(fd)
            os.unlink(tmp)
        else:
            os.rmdir(tempfile.mkdtemp(dir=probe_in, prefix=".probe-"))
    except OSError as e:
        what = "not writable" if probe_in == full else f"cannot be created in {probe_in}"
        raise ValueError(f"{name}={path}: {what} ({e.strerror or e})") from None
    return path


def check_writable_file(path, name: str = "path") -> str:
    """``path`` if a file can be written there (its directory checked as above)."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"{name}={path!r}: not a path; give a file name")
    if not str(path).strip():
        raise ValueError(f"{name}={path}: empty; give a file name")
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{name}={path}: is a directory; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        check_writable_dir(folder, name)
    except ValueError as e:
        reason = str(e).split(": ", 1)[1]
        raise ValueError(f"{name}={path}: its directory {folder} {reason}") from None
    return path


def atomic_write(path: str, data: bytes | str) -> None:
    """Writes ``data`` to ``path`` via a temporary file, fsync and a rename."""
    with atomic_path(path) as tmp, open(tmp, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


# The distributions whose versions a manifest records: the install and test
# requirements of setup.cfg (by distribution name, as pip knows them).
_DISTRIBUTIONS = (
    "jax",
    "jaxlib",
    "numpy",
    "scipy",
    "chex",
    "absl-py",
    "matplotlib",
    "tqdm",
    "xarray",
    "h5netcdf",
    "h5py",
    "mpmath",
    "pytest",
)


def versions() -> dict:
    """Python, ``sim`` and every installed dependency's version (missing ones left out)."""
    from importlib import metadata

    import sim

    out = {"python": sys.version.split()[0], "sim": sim.__version__}
    for name in _DISTRIBUTIONS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def versions_line() -> str:
    """One line, ``python 3.11.7, jax 0.10.2, ...``: what the README's test note quotes."""
    return ", ".join(f"{k} {v}" for k, v in versions().items())


def environment() -> dict:
    """Package versions, platform and devices, for a run's manifest."""
    import jax

    devices = jax.devices()
    return {
        "versions": versions(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in devices],
        "device_kind": devices[0].device_kind if devices else None,
        "process_count": jax.process_count(),
        "x64": bool(jax.config.jax_enable_x64),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


if __name__ == "__main__":
    print(versions_line())
