"""Reductions whose order of additions is fixed by the data's length alone.

XLA chooses how to vectorise ``jnp.sum`` from the whole array's shape, so the
same row can sum to different last bits in a batch of 512 chains and in a
batch of 4096 (measured on CPU for the Gaussian fit). :func:`pairwise_sum`
spells the summation tree out as elementwise additions of slices, so a
chain's result no longer depends on the batch, chunk or device it sits in.
"""

from __future__ import annotations

import jax


def pairwise_sum(x: jax.Array) -> jax.Array:
    """Sums the last axis by repeated halving in a fixed order.

    At each level the two halves are added elementwise; an odd leftover element
    goes to a separate accumulator (no copies), added in at the end.
    """
    extra = None
    while x.shape[-1] > 1:
        n = x.shape[-1]
        h = n // 2
        if n % 2:
            last = x[..., 2 * h]
            extra = last if extra is None else extra + last
        x = x[..., :h] + x[..., h : 2 * h]
    total = x[..., 0]
    return total if extra is None else total + extra


def pairwise_mean(x: jax.Array) -> jax.Array:
    return pairwise_sum(x) / x.shape[-1]
