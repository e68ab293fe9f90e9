"""Exact multinomial counts by conditional binomial splits down a binary tree.

The splits are the batched binomial passes of ``_binomial`` (see its section header).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from sim.random._binomial import (
    _BTRS_CANDIDATES,
    BinomialPasses,
    _poisson_sf,
    binomial_passes,
)
from sim.random._bits import _as_key

_SPARSE_TERMS = (9, 14, 19, 24, 29, 39)  # inversion lengths of the multinomial's deep levels
_DENSE_MEAN = 30.0  # multinomial levels whose mean node count reaches this use BTRS passes


def _one_row(fn, key, salt, *arrays):
    """fn(keys (1,), salt (1,), *arrays (1, S)) for a single row."""
    return fn(key[None], salt[None], *(a[None] for a in arrays))[0]


def _level_plan(mean_count):
    """First-pass plan of a tree level whose nodes hold ``mean_count`` tokens on average:
    BTRS passes from 30 on, else the shortest inversion that a Poisson(mean) node
    count exceeds with probability < 1e-7 (nodes beyond it go to the fallback)."""
    if mean_count >= _DENSE_MEAN:
        return ("btrs", _BTRS_CANDIDATES)
    for terms in _SPARSE_TERMS:
        if _poisson_sf(terms, mean_count) < 1e-7:
            return ("inversion", terms)
    return ("inversion", _SPARSE_TERMS[-1])


def _chunk_width(k: int) -> int:
    """Lanes per chunk: 1 for K <= 256, then K/32 rounded up to a power of 2 between 4
    and 32, and K/256 (up to 1024) past K = 8192.

    A chunk is padded to its width, so small vocabularies want narrow chunks: at
    K = 3 (vmapped over 20,000 chains) width 32 measured 1,400 ns per category,
    width 1 55 ns; at K = 40, 290 against 19; at K = 200, 80 against 55; at
    K = 1,000 width 32 stays best (19-26 against 38 for width 1).
    """
    if k <= 256:
        return 1
    if k <= 8192:
        return max(4, min(32, 1 << math.ceil(math.log2(k / 32))))
    return min(1024, 1 << math.ceil(math.log2(k / 256)))


def multinomial(
    key, total, probs, *, chunk: int | None = None, passes: BinomialPasses | None = None
) -> jax.Array:
    r"""Exact :math:`\mathrm{Multinomial}(\text{total}, \text{probs})` counts (one chain's).

    Args:
      key: a PRNG key.
      total: the number of tokens, a Python int (level plans then use it) or a traced
        integer scalar (plans then assume ``total = K``; only speed depends on it).
      probs: shape ``(K,)``, non-negative with a positive sum (normalised here; zeros
        allowed). Its float dtype is the working precision (counts up to 2**24 in
        float32).
      chunk: nodes per step of the tree walk (default from K; a tuning knob).
      passes: the binomial passes (default :func:`binomial_passes`, the exact ones;
        profiling swaps in stand-ins).

    Returns:
      int32 counts, shape ``(K,)``, summing exactly to ``total``, 0 wherever ``probs``
      is 0.

    Conditional binomial splits down a binary tree over the categories: node masses
    are pairwise sums bottom-up (a level of odd length gets a zero-mass partner, so
    the tree has about K internal nodes for any K); top-down, a node with count n
    gives its left child Bin(n, P_left / P_node) (q = 0 where P_node = 0) and its right
    child the rest. Exact, with ceil(log2 K) dependent levels. The levels are walked
    in chunks of ``chunk`` nodes (a level shorter than a chunk fills one) inside a
    fori_loop, so the body compiles once whatever K (levels unrolled in Python
    compiled for 20-40 s). Each chunk: a first pass (BTRS passes where the level's
    mean node count is >= 30, else inversion of a length chosen from that mean),
    then the fallback for its unfinished lanes, gathered across the vmap batch.
    """
    key = _as_key(key)
    probs = jnp.asarray(probs)
    if probs.ndim != 1:
        raise ValueError(f"probs must have shape (K,); got {probs.shape}")
    dtype = probs.dtype if jnp.issubdtype(probs.dtype, jnp.floating) else jnp.result_type(float)
    dtype = jnp.promote_types(dtype, jnp.float32)
    p = jnp.where(probs > 0, probs, 0).astype(dtype)
    k = p.shape[0]
    if k == 1:
        return jnp.full((1,), total, jnp.int32)
    static_total = int(total) if isinstance(total, (int, np.integer)) else None
    depth = math.ceil(math.log2(k))
    sizes = [-(-k // (1 << (depth - d))) for d in range(depth + 1)]  # real nodes per level
    width = chunk or _chunk_width(k)
    # Level d occupies [offset[d], offset[d] + sizes[d]) of the flat buffers; a chunk
    # reads `width` nodes of its level (lanes past the level's end are masked) and
    # writes 2 `width` children into the next level (past its end: positions that a
    # later level overwrites before they are read).
    offset = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    levels = [p]  # masses, level by level
    for _ in range(depth):
        a = levels[0]
        if a.shape[0] % 2:
            a = jnp.concatenate([a, jnp.zeros((1,), dtype)])
        levels.insert(0, a[0::2] + a[1::2])
    splits = []  # the left child's share of each internal node
    for d in range(depth):
        node, child = levels[d], levels[d + 1]
        if child.shape[0] % 2:
            child = jnp.concatenate([child, jnp.zeros((1,), dtype)])
        splits.append(jnp.where(node > 0, child[0::2] / jnp.where(node > 0, node, 1.0), 0.0))
    split = jnp.concatenate(splits + [jnp.zeros((width,), dtype)])
    # The static schedule: chunk t covers nodes [o, o + width) of level d.
    plans, reads, writes, active, plan_of = [], [], [], [], []
    for d in range(depth):
        mean = (static_total if static_total is not None else k) / sizes[d]
        plan = _level_plan(mean)
        if plan not in plans:
            plans.append(plan)
        for o in range(0, sizes[d], width):
            reads.append(offset[d] + o)
            writes.append(offset[d + 1] + 2 * o)
            active.append(min(width, sizes[d] - o))
            plan_of.append(plans.index(plan))
    table = np.asarray([reads, writes, active, plan_of], np.int32)
    passes = passes or binomial_passes()
    branches = [functools.partial(_one_row, passes.first_pass(plan)) for plan in plans]
    lane = jnp.arange(width, dtype=jnp.int32)

    def body(t, counts):
        read, write, live, which = (jnp.asarray(table)[i, t] for i in range(4))
        salt = t.astype(jnp.uint32)
        n = jnp.where(lane < live, jax.lax.dynamic_slice(counts, (read,), (width,)), 0.0)
        q = jax.lax.dynamic_slice(split, (read,), (width,))
        if len(branches) == 1:
            x = branches[0](key, salt, n, q)
        else:
            x = jax.lax.switch(which, branches, key, salt, n, q)
        x = _one_row(passes.finish, key, salt, n, q, x)
        children = jnp.stack([x, n - x], axis=-1).reshape(-1)
        return jax.lax.dynamic_update_slice(counts, children, (write,))

    counts = jnp.zeros((offset[-1] + 2 * width + 2,), dtype).at[0].set(jnp.asarray(total, dtype))
    counts = jax.lax.fori_loop(0, table.shape[1], body, counts)
    return counts[offset[depth] : offset[depth] + k].astype(jnp.int32)
