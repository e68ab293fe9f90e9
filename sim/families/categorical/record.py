"""What a categorical chain records per generation: see :class:`CategoricalRecord`."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sim._reduce import pairwise_sum
from sim._validate import check_int
from sim.families.categorical.family import CategoricalParams, Vocabulary


class CategoricalRecord(NamedTuple):
    r"""Per-chain, per-generation summaries of a categorical chain (all float).

    ``p`` is the fit, ``p0`` the real distribution; sums run over categories.
    """

    support: jax.Array  # shape=(), number of categories with p > 0
    entropy: jax.Array  # shape=(), -sum p log p (nats)
    heterozygosity: jax.Array  # shape=(), 1 - sum p^2: P(two draws differ)
    tv: jax.Array  # shape=(), total variation (1/2) sum |p - p0|
    kl: jax.Array  # shape=(), KL(p || p0) = sum p log(p / p0) (nats; inf off p0's support)
    tail_mass: jax.Array  # shape=(), mass on categories of initial rank > tail_rank
    mode_mass: jax.Array  # shape=(), max p: the head
    absorbed: jax.Array  # shape=(), 1.0 if p is a point mass
    survival: jax.Array  # shape=(B,), fraction of each rank bucket with p > 0


def default_bucket_edges(num_categories: int) -> tuple[int, ...]:
    """Rank buckets by decade: (1, 10, 100, ..., K) as upper rank bounds."""
    edges, e = [], 1
    while e < num_categories:
        edges.append(e)
        e *= 10
    return (*edges, num_categories)


def check_bucket_edges(edges, num_categories: int) -> tuple[int, ...]:
    """Increasing upper rank bounds ending at K (one-line ``ValueError`` otherwise)."""
    edges = tuple(int(e) for e in edges)
    if not edges or edges[-1] != num_categories:
        raise ValueError(f"bucket_edges={edges} must end at K={num_categories}")
    if edges[0] < 1 or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
        raise ValueError(f"bucket_edges={edges} must be strictly increasing from >= 1")
    return edges


@functools.cache
def categorical_record(vocabulary: Vocabulary, tail_rank: int, bucket_edges: tuple[int, ...]):
    """Builds ``record(params) -> CategoricalRecord`` (cached per setting).

    Args:
      vocabulary: the real distribution p0.
      tail_rank: the tail is every category of initial rank > ``tail_rank``.
      bucket_edges: upper rank bounds of the survival buckets, ending at K:
        bucket b holds ranks ``(edges[b-1], edges[b]]`` (``(0, edges[0]]`` first).
    """
    k = vocabulary.num_categories
    tail_rank = check_int(tail_rank, "tail_rank", 0)
    if tail_rank > k:
        raise ValueError(f"tail_rank={tail_rank} exceeds the number of categories K={k}")
    edges = check_bucket_edges(bucket_edges, k)
    order = np.argsort(-vocabulary.probs, kind="stable")
    identity = bool(np.all(order == np.arange(k)))  # Zipf and uniform come sorted
    p0_sorted = vocabulary.probs[order]
    log_p0 = np.log(np.where(p0_sorted > 0, p0_sorted, 1.0))
    # Bucket membership as a (K, B) 0/1 matrix: counting survivors is then one
    # matmul of 0/1 values, exact in any summation order (integers < 2^24),
    # where slicing the vector per bucket measured 3.5 ns per category per bucket.
    lows = (0, *edges[:-1])
    member = np.zeros((k, len(edges)), np.float32)
    for b, (lo, hi) in enumerate(zip(lows, edges, strict=True)):
        member[lo:hi, b] = 1.0
    sizes = np.diff((0, *edges)).astype(np.float64)

    def record(params: CategoricalParams) -> CategoricalRecord:
        p = params.probs
        dtype = p.dtype
        ps = p if identity else p[..., order]
        pos = ps > 0
        log_ps = jnp.log(jnp.where(pos, ps, 1))
        plogp = jnp.where(pos, ps * log_ps, 0)
        alive = jnp.dot(
            pos.astype(dtype), jnp.asarray(member, dtype), precision=jax.lax.Precision.HIGHEST
        )  # (B,) exact counts
        support = jnp.sum(alive, axis=-1)  # exact: a sum of small integers
        tail = pairwise_sum(ps[..., tail_rank:]) if tail_rank < k else jnp.zeros((), dtype)
        kl_terms = jnp.where(pos, ps * (log_ps - jnp.asarray(log_p0, dtype)), 0)
        if np.any(p0_sorted == 0):  # mass where p0 has none: KL is infinite
            kl_terms = jnp.where(pos & jnp.asarray(p0_sorted == 0), jnp.inf, kl_terms)
        return CategoricalRecord(
            support=support,
            entropy=-pairwise_sum(plogp),
            heterozygosity=1 - pairwise_sum(ps * ps),
            tv=0.5 * pairwise_sum(jnp.abs(ps - jnp.asarray(p0_sorted, dtype))),
            kl=pairwise_sum(kl_terms),
            tail_mass=tail,
            mode_mass=jnp.max(ps, axis=-1),
            absorbed=(support == 1).astype(dtype),
            survival=alive / jnp.asarray(sizes, dtype),
        )

    return record
