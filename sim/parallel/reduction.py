"""Deterministic reductions: per-block moments on the device (fixed pairwise order),
merged over blocks on the host in float64, into one :class:`SimulationResult` per point."""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sim._reduce import pairwise_sum


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
