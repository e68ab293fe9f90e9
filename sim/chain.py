r"""One generation step, a scan over generations, keys per chain.

A *step* is ``step(key, state) -> (state, info)`` (blackjax's State/Info
split): one generation of recursive fitting for one chain. The state is what
the next generation needs (a family's params, or a regime's params and pool);
the info is that generation's diagnostics (the size of a filtered training
set, an EM log-likelihood, a training loss), which the record may read but
which is not carried. A *record* is ``record(state, info) -> NamedTuple``.

Two transitions are written once for every family:

* :func:`replace_step`: draw M samples from the current fit and refit to
  them (the "replace" regime; any family);
* :func:`stats_step`: draw the summary of M samples directly with
  ``DataOps.sample_stats`` and fit it (the ``exact`` path: the same Markov
  chain, O(1) in M for the Gaussian, THEORY.md G1).

Every fit gets a key on every path (closed-form fits ignore it; EM and SGD
fits need one).

Keys are derived, never carried: chain ``i`` uses ``fold_in(root, i)`` and its
generation ``t`` uses ``fold_in(chain_key, t)``. A chain's path therefore
depends only on the root key and its index, not on how chains are batched,
chunked or sharded, nor on where a run was resumed.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from sim._validate import check_int
from sim.families.base import Family

Step = Callable[[Any, Any], tuple]  # step(key, state) -> (state, info)
Record = Callable[[Any, Any], Any]  # record(state, info) -> NamedTuple


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


# The fit's key on the statistics path is fold_in(key, FIT_KEY_TAG), so that the
# draws stay those of sample_stats(key, ...); a family's sample_stats must not
# fold this tag into its key itself.
FIT_KEY_TAG = 0x66697421  # "fit!"


def fit(family: Family, key, data):
    """``(params, info)`` of ``family`` fitted to ``data`` (``info`` is ``()`` unless
    the family reports fit diagnostics through ``Family.fit_info``)."""
    if family.fit_info is not None:
        return family.fit_info(key, data)
    return family.fit(key, data), ()


def fit_stats(family: Family, key, stats, previous=None):
    """``(params, info)`` of ``family`` fitted to a summary (``DataOps.fit_stats``);
    families with ``DataOps.fit_stats_warm`` start from ``previous`` (the current fit)
    when it is given."""
    if previous is not None and family.ops.fit_stats_warm is not None:
        return family.ops.fit_stats_warm(key, stats, previous)
    if family.ops.fit_stats_info is not None:
        return family.ops.fit_stats_info(key, stats)
    return family.ops.fit_stats(key, stats), ()


def replace_transition(family: Family, sample_size: int, key, params):
    """One generation of the replace chain: ``(params, info)`` refitted to
    ``sample_size`` samples of ``params`` (``sample_size`` a Python int)."""
    k_sample, k_fit = jax.random.split(key)
    return fit(family, k_fit, family.sample(k_sample, params, sample_size))


def stats_transition(family: Family, sample_size, key, params):
    """One generation drawn as a summary: ``fit_stats(sample_stats(key, params, M))``.

    The same law as :func:`replace_transition` (not the same draws); the
    family needs ``DataOps.sample_stats``. ``sample_size`` may be traced.
    """
    ops = family.ops
    if ops is None or ops.sample_stats is None:
        raise ValueError(f"family {family.name!r} has no DataOps.sample_stats (no exact path)")
    stats = ops.sample_stats(key, params, sample_size)
    return fit_stats(family, jax.random.fold_in(key, FIT_KEY_TAG), stats)


@dataclasses.dataclass(frozen=True, eq=False)
class AheadStep:
    """A step ``step(key, state, theta)`` whose state-independent randomness the
    engine may draw one generation ahead.

    ``draw(key, theta) -> noise`` is the part of a generation's draws that does
    not depend on the state (the Gaussian's standard normals), and
    ``apply(key, state, theta, noise) -> (state, info)`` the rest of the step.
    Called as a step it is ``apply(key, state, theta, draw(key, theta))``: the
    same keys and the same draws. :func:`sim.parallel.simulate_points` instead
    carries the noise and draws generation t+1's while it fits generation t:
    the normals are then computed once and stored, where inside one step XLA
    fuses the generator into each of the fit's sums and recomputes it there
    (measured in ``bench/gaussian_throughput.py``: 2-4x on the CPU sample path).
    Fusion differs between the two forms, so their numbers may differ in the last
    bits (``bench/numbers_unchanged.py``); each is the same at every chunking and
    device count.
    """

    draw: Callable
    apply: Callable

    def __call__(self, key, state, theta):
        return self.apply(key, state, theta, self.draw(key, theta))


def ahead_replace_step(family_of: Callable, static_family: Family, sample_size: int, dtype, names):
    """The replace chain's step as an :class:`AheadStep` (``static_family`` has
    ``noise``/``with_noise``): the keys are :func:`replace_transition`'s."""

    def draw(key, theta):
        del theta
        k_sample, _ = jax.random.split(key)
        return static_family.noise(k_sample, sample_size, dtype)

    def apply(key, params, theta, noise):
        family = family_of(dict(zip(names, theta, strict=True)))
        _, k_fit = jax.random.split(key)
        return fit(family, k_fit, family.with_noise(params, noise))

    return AheadStep(draw, apply)


@functools.cache
def replace_step(family: Family, sample_size: int) -> Step:
    """``step(key, params) -> (params, info)`` of :func:`replace_transition`.

    Cached so that equal arguments return the same function (one compilation).
    """
    m = check_int(sample_size, "sample_size", 1)

    def step(key, params):
        return replace_transition(family, m, key, params)

    return step


@functools.cache
def stats_step(family: Family, sample_size: int) -> Step:
    """``step(key, params) -> (params, info)`` of :func:`stats_transition` (cached)."""
    m = check_int(sample_size, "sample_size", 1)
    if family.ops is None or family.ops.sample_stats is None:
        raise ValueError(f"family {family.name!r} has no DataOps.sample_stats (no exact path)")

    def step(key, params):
        return stats_transition(family, m, key, params)

    return step


@functools.cache
def params_record(record: Callable) -> Record:
    """``record(state, info)`` reading the state only: for a family's
    ``record(params)`` on a chain whose state is its params (cached)."""

    def rec(state, info):
        del info
        return record(state)

    return rec


def run_chain(key, step: Step, params0, num_generations: int, record: Record, info0=()):
    """Runs one chain and returns its record at generations 0..num_generations.

    This is the reference single-stream runner (vmap it over chain keys for a
    small batch); :func:`sim.parallel.simulate` runs the same steps with the same
    keys for many chains at once and reduces as it goes.

    Args:
      key: the chain's key (e.g. ``chain_key(root, i)``).
      step: ``step(key, state) -> (state, info)``.
      params0: generation 0's state (the real distribution).
      num_generations: number of fits (static).
      record: ``record(state, info) -> pytree of scalars``.
      info0: the info recorded with generation 0 (``()`` by default).

    Returns:
      The record pytree with a leading axis of length ``num_generations + 1``.
    """
    num_generations = check_int(num_generations, "num_generations", 0)

    def body(state, t):
        state, info = step(generation_key(key, t), state)
        return state, record(state, info)

    _, recs = jax.lax.scan(body, params0, jnp.arange(1, num_generations + 1))
    first = jax.tree.map(lambda x: x[None], record(params0, info0))
    return jax.tree.map(lambda a, b: jnp.concatenate([a, b]), first, recs)
