"""Uniforms, normals and exact log-gamma / log-chi-square draws (Marsaglia and Tsang).

``jax.random.gamma`` / ``loggamma`` run a rejection loop per element; under
``vmap`` inside a ``scan`` they measured 0.9-4 M variates/s on a 2-core CPU,
far too slow for the O(1) exact path. :func:`log_gamma` is Marsaglia and
Tsang's method with two candidates drawn at once from one block of bits and a
batched fallback loop for the rare lane that rejects both, so it stays exact.

References:
  G. Marsaglia and W. W. Tsang (2000). A simple method for generating gamma
  variables. ACM Transactions on Mathematical Software 26(3), 363-372.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from sim.random._bits import _UINT, _open_uniform


def uniform(key, dtype) -> jax.Array:
    """One U(0, 1) draw on the open interval (a scalar)."""
    width = jnp.finfo(dtype).bits
    return _open_uniform(jax.random.bits(key, (), dtype=_UINT[width]), dtype)


def normal(key, dtype) -> jax.Array:
    """One N(0, 1) draw: the inverse error function of a symmetric open uniform."""
    u = uniform(key, dtype)
    return np.asarray(math.sqrt(2.0), dtype) * jax.lax.erf_inv(2.0 * u - 1.0)


def uniforms_and_normals(key, num_uniform: int, num_normal: int, dtype):
    """``num_uniform`` U(0,1) and ``num_normal`` N(0,1) scalars; word j from ``fold_in(key, j)``.

    Scalar draws per word are deliberate: under ``vmap`` one ``bits(key, (4,))``
    per lane measured 30 ns per lane and its slicing another 50 ns, four scalar
    ``fold_in`` + ``bits`` about 16 ns (2-core CPU, philox4x32).
    """
    us = [uniform(jax.random.fold_in(key, j), dtype) for j in range(num_uniform)]
    zs = [normal(jax.random.fold_in(key, num_uniform + j), dtype) for j in range(num_normal)]
    return us, zs


def _mt_candidates(x, u, d, c):
    """Marsaglia-Tsang for shape d + 1/3 >= 1: (log value, accepted)."""
    cx = c * x
    log_v = 3.0 * jnp.log1p(cx)  # log of v = (1 + c x)^3
    v_minus_1 = cx * (3.0 + cx * (3.0 + cx))
    # Accept iff log u < x^2/2 + d - d v + d log v, written without cancellation.
    ok = (cx > -1.0) & (jnp.log(u) < 0.5 * x * x + d * (log_v - v_minus_1))
    return jnp.log(d) + log_v, ok


def _num_candidates(a: float) -> int:
    """Candidates so that all are rejected with probability < 1e-7.

    Marsaglia-Tsang rejects with probability below 0.05 / a for a >= 1
    (measured on 2^20 draws: 0.048 at a=1, 0.0069 at a=4.5, 0.0003 at a=100).
    """
    reject = min(0.05, 0.05 / a)
    return max(2, math.ceil(math.log(1e-7) / math.log(reject)))


def log_gamma(
    key, shape, dtype=jnp.float32, num_candidates: int | None = None, min_shape: float = 0.5
) -> jax.Array:
    r"""One exact draw of :math:`\log G`, :math:`G \sim \mathrm{Gamma}(\text{shape}, 1)`.

    Marsaglia-Tsang: K candidates (K from the shape, see
    :func:`_num_candidates`) are drawn at once and the first accepted one is
    returned. A lane that rejects all K (probability < 1e-7) keeps drawing
    until it accepts, so the draw is exact. Under ``vmap`` that loop sits
    behind a ``cond`` on *any* lane needing it (a ``custom_vmap`` rule): a
    plain batched ``while_loop`` would run its body for every lane in every
    generation where a single lane rejects, which measured about 17x the cost
    of a candidate.

    For shape < 1 uses :math:`G = G' U^{1/\text{shape}}` with
    :math:`G' \sim \mathrm{Gamma}(\text{shape}+1)`, in log space so that tiny
    values do not underflow.

    Args:
      key: a PRNG key (one chain's).
      shape: the gamma shape > 0: a static Python float, or a traced scalar
        (a sample size that changes per generation) of at least ``min_shape``.
      dtype: float32 or float64.
      num_candidates: overrides K (tests use 1 to exercise the fallback loop).
      min_shape: for a traced ``shape``, a lower bound that sets K (the
        draw is exact for any shape; K only sets how rarely the loop runs).
    """
    if isinstance(shape, (int, float, np.number)):
        if not shape > 0:
            raise ValueError(f"gamma shape={shape} must be > 0")
        boost = shape < 1.0
        a = shape + 1.0 if boost else shape
        k_cand = num_candidates or _num_candidates(a)
    else:  # traced (a per-lane shape): the same arithmetic, boost selected per lane
        boost = True
        lo = float(min_shape)
        k_cand = num_candidates or _num_candidates(lo + 1.0 if lo < 1.0 else lo)
    shape = jnp.asarray(shape, dtype)
    d = jnp.where(shape < 1.0, shape + 1.0, shape) - np.asarray(1.0 / 3.0, dtype)
    c = jax.lax.rsqrt(9.0 * d)

    def candidates(key, d, c):
        """The first accepted of K candidates, NaN if none is (one output only:
        a second, boolean output split XLA's fusion and recomputed the random
        bits per consumer, 4x slower)."""
        u, x = uniforms_and_normals(jax.random.fold_in(key, 0), k_cand, k_cand, dtype)
        value = jnp.full((), jnp.nan, dtype)
        for j in range(k_cand - 1, -1, -1):  # from the last, so the first accepted wins
            v_j, ok_j = _mt_candidates(x[j], u[j], d, c)
            value = jnp.where(ok_j, v_j, value)
        return value

    def finish(key, value, d, c):
        """Keeps drawing single candidates until one is accepted (value not NaN)."""
        k_loop = jax.random.fold_in(key, 1)

        def body(carry):
            _, _, i = carry
            uu, xx = uniforms_and_normals(jax.random.fold_in(k_loop, i), 1, 1, dtype)
            val, acc = _mt_candidates(xx[0], uu[0], d, c)
            return val, acc, i + 1

        init = (value, ~jnp.isnan(value), jnp.zeros((), jnp.int32))
        return jax.lax.while_loop(lambda cr: ~cr[1], body, init)[0]

    def boosted(key, value, shape):
        if not boost:
            return value
        log_u = jnp.log(uniform(jax.random.fold_in(key, 2), dtype))
        return value + jnp.where(shape < 1.0, log_u / shape, 0.0)

    # The shape's derived constants are explicit arguments (a traced shape may be
    # batched by an outer vmap, which a custom_vmap rule must see).
    @jax.custom_batching.custom_vmap
    def draw(key, d, c, shape):
        return boosted(key, finish(key, candidates(key, d, c), d, c), shape)

    @draw.def_vmap
    def _draw_batched(axis_size, in_batched, key, d, c, shape):
        del axis_size
        if not any(in_batched):
            return draw(key, d, c, shape), False
        axes = tuple(0 if b else None for b in in_batched)
        value = jax.vmap(candidates, in_axes=axes[:3])(key, d, c)
        value = jax.lax.cond(
            jnp.any(jnp.isnan(value)),
            lambda: jax.vmap(finish, in_axes=(axes[0], 0, axes[1], axes[2]))(key, value, d, c),
            lambda: value,
        )
        return jax.vmap(boosted, in_axes=(axes[0], 0, axes[3]))(key, value, shape), True

    return draw(key, d, c, shape)


def log_chi2(key, df: float, dtype=jnp.float32) -> jax.Array:
    r"""One exact draw of :math:`\log \chi^2_{\text{df}}` = log 2 + log Gamma(df/2)."""
    return np.asarray(math.log(2.0), dtype) + log_gamma(key, 0.5 * df, dtype)
