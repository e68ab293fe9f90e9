r"""One generation step, a scan over generations, keys per chain.

A *step* is ``step(key, params) -> params``: one generation of recursive
fitting for one chain. :func:`replace_step` builds it from a family (draw M
samples from the current fit, refit: the "replace" regime); exact fast paths
(:mod:`sim.exact`) build the same transition from sufficient statistics.

Keys are derived, never carried: chain ``i`` uses ``fold_in(root, i)`` and its
generation ``t`` uses ``fold_in(chain_key, t)``. A chain's path therefore
depends only on the root key and its index, not on how chains are batched,
chunked or sharded, nor on where a run was resumed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from sim._validate import check_int
from sim.families.base import Family

Step = Callable[[Any, Any], Any]
Record = Callable[[Any], Any]


def chain_key(root, chain_index):
    """The key of chain ``chain_index`` (an int or int32 scalar)."""
    return jax.random.fold_in(root, chain_index)


def generation_key(key, generation):
    """The key a chain uses to produce fit number ``generation`` (1-based)."""
    return jax.random.fold_in(key, generation)


@functools.cache
def replace_step(family: Family, sample_size: int) -> Step:
    """Draw ``sample_size`` samples from the current fit and refit to them.

    Cached so that equal arguments return the same function (one compilation).
    """
    m = check_int(sample_size, "sample_size", 1)

    def step(key, params):
        k_sample, k_fit = jax.random.split(key)
        return family.fit(k_fit, family.sample(k_sample, params, m))

    return step


def run_chain(key, step: Step, params0, num_generations: int, record: Record):
    """Runs one chain and returns its record at generations 0..num_generations.

    This is the reference single-stream runner (vmap it over chain keys for a
    small batch); :func:`sim.parallel.simulate` runs the same steps with the same
    keys for many chains at once and reduces as it goes.

    Args:
      key: the chain's key (e.g. ``chain_key(root, i)``).
      step: ``step(key, params) -> params``.
      params0: generation 0 (the real distribution).
      num_generations: number of fits (static).
      record: ``record(params) -> pytree of scalars``.

    Returns:
      The record pytree with a leading axis of length ``num_generations + 1``.
    """
    num_generations = check_int(num_generations, "num_generations", 0)

    def body(params, t):
        params = step(generation_key(key, t), params)
        return params, record(params)

    _, recs = jax.lax.scan(body, params0, jnp.arange(1, num_generations + 1))
    first = jax.tree.map(lambda x: x[None], record(params0))
    return jax.tree.map(lambda a, b: jnp.concatenate([a, b]), first, recs)
