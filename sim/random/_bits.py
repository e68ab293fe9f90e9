"""Raw random words: open uniforms from bits, Philox words by counter, fusion barriers.

Random words come from the Philox block function directly when the key is philox4x32
(word j of a lane is a block with counter (lane, round * num + j, tag, salt) under the
chain's key, the salt being the multinomial's chunk index, so that no key is derived
per chunk or lane; jax.random.bits spends a block per word too, but measured 20 %
slower for one word per lane and several times slower for a (words, lanes) shape),
from jax.random.bits of fold_in-derived keys for other PRNGs. They are a function of
(key, salt, lane, round) only, hence independent of the batch.

XLA on CPU recomputes cheap producers (the ~100 integer ops of a Philox block) inside
every consumer fusion; a BTRS candidate splits into several fusions, so unfinished
draws and random words are produced inside a lax.cond on a runtime predicate that is
always true (_barrier): the result is written once (optimization_barrier is dropped
on CPU). That cut the run time and the compile time of a pass by about half.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

try:  # the raw Philox block function (four 32-bit words per evaluation)
    from jax._src.random.philox4x32 import philox4x32_p as _PHILOX
except ImportError:  # pragma: no cover - other JAX versions: jax.random.bits of fold_in keys
    _PHILOX = None

_UINT = {32: jnp.uint32, 64: jnp.uint64}


def _open_uniform(bits: jax.Array, dtype) -> jax.Array:
    """Maps unsigned integer bits to uniforms on the open interval (0, 1)."""
    nmant = jnp.finfo(dtype).nmant
    width = jnp.iinfo(bits.dtype).bits
    mant = (bits >> (width - nmant)).astype(dtype)
    return (mant + 0.5) * np.asarray(2.0**-nmant, dtype)


def _as_key(key):
    """A typed key array (raw uint32 keys are wrapped with the default PRNG)."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    return jax.random.wrap_key_data(key)


def _is_philox(keys) -> bool:
    return _PHILOX is not None and str(jax.random.key_impl(keys)) == "philox4x32"


def _words(keys, salt, lane, counter, tag: int, num: int, width: int):
    """Random words, shape ``lane.shape + (num,)``; ``keys`` and ``salt`` (uint32) span
    lane's leading axes.

    Philox keys: word j of a lane is word 0 of the block ``(lane, counter * num + j,
    tag, salt)`` of the key (64-bit words: words 0 and 1). Other PRNGs:
    ``jax.random.bits`` of the key folded with salt, tag, lane and counter.
    """
    shape = lane.shape + (num,)
    udt = _UINT[width]
    lane = lane.astype(jnp.uint32)
    salt = salt.astype(jnp.uint32)
    if _is_philox(keys):
        extra = (1,) * (len(shape) - keys.ndim)
        kd = jax.random.key_data(keys)
        kd = kd.reshape(keys.shape + extra + (2,))
        k0 = jnp.broadcast_to(kd[..., 0], shape)
        k1 = jnp.broadcast_to(kd[..., 1], shape)
        x0 = jnp.broadcast_to(lane[..., None], shape)
        x1 = jnp.asarray(counter, jnp.uint32) * np.uint32(num) + jax.lax.broadcasted_iota(
            jnp.uint32, shape, len(shape) - 1
        )
        x2 = jnp.full(shape, tag, jnp.uint32)
        x3 = jnp.broadcast_to(salt.reshape(salt.shape + extra), shape)
        out = _PHILOX.bind(k0, k1, x0, x1, x2, x3)
        if width == 32:
            return out[0]
        return (out[0].astype(udt) << 32) | out[1].astype(udt)

    def one(k, s, i):
        for data in (s, tag, i, counter):
            k = jax.random.fold_in(k, data)
        return jax.random.bits(k, (num,), udt)

    f = one
    for axis in reversed(range(lane.ndim)):  # the innermost vmap maps the last axis
        batched = 0 if axis < keys.ndim else None
        f = jax.vmap(f, (batched, batched, 0))
    return f(keys, salt, lane)


counter_words = _words  # public name: profiling stand-ins draw the sampler's own words


def _always(keys):
    """A runtime predicate that is always true and that XLA cannot fold."""
    return (jax.random.key_data(keys).reshape(-1)[0] | 1) != 0


def _barrier(pred, make):
    """``make()`` inside a ``lax.cond`` on ``pred`` (always true): see the header."""
    shapes = jax.eval_shape(make)
    return jax.lax.cond(
        pred, make, lambda: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    )
