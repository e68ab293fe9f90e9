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


PRNG_IMPLS = ("philox4x32", "threefry2x32")
# Seeds are 32-bit: jax.random.key(seed) keeps the low 32 bits of larger
# seeds, so 0 and 2**32 would give the same numbers under different labels.
MAX_SEED = 2**32 - 1


def check_seed(seed, name: str = "seed") -> int:
    """``seed`` as a Python int in ``[0, 2**32 - 1]`` (the one seed rule everywhere).

    Bools, non-integral numbers, negative seeds and seeds of 2**32 or more are
    refused with a message naming the value: a larger seed would alias a
    smaller one (JAX keeps its low 32 bits).
    """
    ok = not isinstance(seed, bool)
    try:
        ok = ok and float(seed).is_integer()
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok or not 0 <= int(seed) <= MAX_SEED:
        raise ValueError(f"{name}={seed!r} must be an integer in [0, 2**32 - 1]")
    return int(seed)


def root_key(seed, prng_impl: str = "philox4x32"):
    """The root key of a run: ``jax.random.key(seed, impl=prng_impl)``, both checked."""
    if prng_impl not in PRNG_IMPLS:
        raise ValueError(f"prng_impl={prng_impl!r} is not one of {PRNG_IMPLS}")
    return jax.random.key(check_seed(seed), impl=prng_impl)


def check_key(key, name: str = "key"):
    """A typed scalar PRNG key, from a typed key or a legacy ``jax.random.PRNGKey``.

    Legacy keys (uint32 arrays of shape (2,), threefry2x32's layout) are
    wrapped with :func:`jax.random.wrap_key_data`, which keeps their random
    bits; anything else (an int seed, a batch of keys) is refused by name.
    """
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"{name} must be one key (shape ()); got shape {key.shape}")
        return key
    if isinstance(key, jax.Array) and key.dtype == jnp.uint32 and key.shape == (2,):
        return jax.random.wrap_key_data(key, impl="threefry2x32")
    raise ValueError(
        f"{name}={key!r} is not a PRNG key; make one with sim.chain.root_key(seed) "
        "or jax.random.key(seed)"
    )


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
