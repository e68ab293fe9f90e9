"""Exact binomial draws: inversion below a mean of 10, BTRS above, a gathered fallback.

``jax.random.binomial`` runs while loops per element (about 200 ns each here).

References:
  W. Hoermann (1993). The generation of binomial random variates. Journal of
  Statistical Computation and Simulation 46, 101-110.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sim.random._bits import _always, _as_key, _barrier, _open_uniform, _words

# ------------------------------------------------------------------------------------------
# Binomial and multinomial
#
# binomial(key, n, q): symmetry first (q > 1/2 -> n - Bin(n, 1 - q)), then by the mean
# mu = n q (q <= 1/2 from here on):
#   * mu < 10: inversion over j = 0..39 with a fixed, unrolled number of terms. The
#     distribution is truncated at 39: P(X > 39) <= P(Pois(10) > 39) = 7.3e-13 (for
#     j >= np + 1 the binomial tail is below the Poisson tail of the same mean,
#     Anderson and Samuels 1967), and n <= 39 is not truncated at all.
#   * mu >= 10: BTRS (Hoermann 1993), the transformed-rejection method of jax.random,
#     TensorFlow and PyTorch, with its log-acceptance rewritten with log1p: in float32
#     the largest error of log f(k)/f(m) over k within 3 sd of the mode is 8.7e-5 at
#     n = 1e5 (the textbook form: 6.7e-3, a 0.7 % error in the acceptance probability)
#     and 1.2e-3 at n = 2^24 (textbook: 1.4), the size of the effect of q's own
#     rounding.
# Every lane computes both and selects (no per-element control flow). Lanes that are
# not finished in the first pass (BTRS rejected every candidate, or a multinomial lane
# beyond its level's cheap inversion) are marked NaN and finished by a fallback that
# gathers them from the whole batch (custom_vmap folds vmap axes into rows), draws
# fresh candidates for them until all accept, and scatters the values back; it runs
# only when some lane needs it. Random words and the barrier that makes XLA write
# them once: see sim/random/_bits.py.
# ------------------------------------------------------------------------------------------

BTRS_MIN_MEAN = 10.0  # BTRS for n min(q, 1-q) >= 10 (its stated domain), inversion below
INVERSION_TERMS = 39  # P(Pois(10) > 39) = 7.3e-13
TRUNCATION = 1e-12  # bound on the truncated tail of every inversion
_BTRS_CANDIDATES = 3  # first-pass BTRS candidates (all rejected: < 2.5 %)
_ROUND_CANDIDATES = 4  # candidates per fallback round (all rejected: < 0.8 %)
_MAX_ROUNDS = 2000  # a lane still rejected after this many rounds stays NaN (never seen)
_TAG_FIRST, _TAG_ROUND = 1, 2  # counter word 2 of the Philox blocks (jax.random uses 0)
FIRST_PASS_TAG = _TAG_FIRST  # public name of the first pass's tag (counter_words)

# log k! - [(k + 1/2) log(k + 1) - (k + 1) + log(2 pi)/2], k = 0..9 (as in jax.random)
_STIRLING_TAIL = (
    0.0810614667953272,
    0.0413406959554092,
    0.0276779256849983,
    0.02079067210376509,
    0.0166446911898211,
    0.0138761288230707,
    0.0118967099458917,
    0.0104112652619720,
    0.00925546218271273,
    0.00833056343336287,
)


def _poisson_sf(j: int, mu: float) -> float:
    """P(Pois(mu) > j) on the host (float64), summed upward from j + 1."""
    if mu <= 0.0:
        return 0.0
    t = math.exp(-mu + (j + 1) * math.log(mu) - math.lgamma(j + 2))
    total, k = 0.0, j + 1
    while t > 1e-300 and k < j + 10_000:
        total += t
        k += 1
        t *= mu / k
    return total


@functools.cache
def inversion_max_mean(num_terms: int) -> float:
    """The largest mean for which inversion truncated at ``num_terms`` loses < 1e-12.

    Bisection on the Poisson tail, which bounds the binomial tail of the same mean
    (``num_terms >= mean + 1``): 0.293 (9 terms), 1.09 (14), 2.33 (19), 3.92 (24),
    5.77 (29), 10.10 (39).
    """
    lo, hi = 1e-9, float(num_terms)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _poisson_sf(num_terms, mid) < 0.999 * TRUNCATION else (lo, mid)
    return lo


# ----------------------------------------------------------------------------- samplers


def _inversion(word, n, r, num_terms: int):
    """Bin(n, q) truncated at ``num_terms`` by inversion; r = q / (1 - q), q <= 1/2.

    Weights w_j = C(n, j) r^j (w_0 = 1, unnormalised: the normalising (1 - q)^n and its
    rounding cancel). The top bit of ``word`` picks a side, the other bits give V,
    uniform on (0, 1/2) with relative precision near 0. Bottom side: X = #{j < J:
    w_0 + ... + w_j < V S}; top side: X = J - #{k < J: w_J + ... + w_{J-k} < V S}, S
    the total. Each tail is thus accumulated from its own end and compared at its
    own scale: tail probabilities far below float32's 6e-8 come out right. Exact for
    the truncated distribution up to rounding; w_j = 0 for j > n.
    """
    dtype = n.dtype
    width = jnp.iinfo(word.dtype).bits
    side = (word >> (width - 1)) != 0
    low = word & np.asarray((1 << (width - 1)) - 1, word.dtype)
    v = (low.astype(dtype) + 0.5) * np.asarray(2.0**-width, dtype)
    nr = n * r
    w = [jnp.ones_like(n)]
    for j in range(num_terms):
        w.append(w[-1] * ((nr - j * r) * (1.0 / (j + 1))))  # (n - j) r / (j + 1)
    total = w[0]
    for j in range(1, num_terms + 1):
        total = total + w[j]
    t = v * total
    acc = jnp.zeros_like(n)
    count = jnp.zeros_like(n)
    for k in range(num_terms):
        acc = acc + jnp.where(side, w[num_terms - k], w[k])
        count = count + (acc < t).astype(dtype)
    return jnp.where(side, num_terms - count, count)


def _stirling_tail(k):
    """log k! minus its Stirling approximation, k >= 0 integer-valued."""
    inv = 1.0 / (k + 1.0)
    inv2 = inv * inv
    out = (1.0 / 12 - (1.0 / 360 - (1.0 / 1260) * inv2) * inv2) * inv
    for i, val in enumerate(_STIRLING_TAIL):
        out = jnp.where(k == i, val, out)
    return out


def _setup(n, q):
    """Per-lane constants of a pass (q <= 1/2): BTRS's, sanitised on inversion lanes."""
    mid = n * q < BTRS_MIN_MEAN
    nb = jnp.where(mid, 1000.0, n)
    qb = jnp.where(mid, 0.5, q)
    spq = jnp.sqrt(nb * qb * (1.0 - qb))
    b = 1.15 + 2.53 * spq
    c = nb * qb + 0.5
    ci = jnp.floor(c)
    m = jnp.floor((nb + 1.0) * qb)
    return dict(
        mid=mid,
        n_inv=jnp.where(mid, n, 0.0),
        r_inv=jnp.where(mid, q / (1.0 - q), 0.0),
        n=nb,
        a=-0.0873 + 0.0248 * b + 0.01 * qb,
        b=b,
        ci=ci,
        cf=c - ci,
        vr=0.92 - 4.2 / b,
        alpha=(2.83 + 5.1 / b) * spq,
        m=m,
        r=qb / (1.0 - qb),
        h=_stirling_tail(m) + _stirling_tail(nb - m),
    )


def _btrs_candidate(s, u, v):
    """One BTRS candidate from uniforms u, v: the value, or NaN if it is rejected.

    log f(k)/f(m) is written as -(m + 1/2) log1p(d/(m+1)) - (n - m + 1/2)
    log1p(-d/(n-m+1)) + d log(r (n-k+1)/(k+1)) + Stirling tails, d = k - m: every term
    is O(|d|) with relative rounding error, where the textbook form subtracts terms of
    size n. k is floor(x + c_frac) + c_int so that c = nq + 1/2 keeps its 1/2 in float32.
    """
    n, m, a, b = s["n"], s["m"], s["a"], s["b"]
    us_ = u - 0.5
    us = 0.5 - jnp.abs(us_)
    k = jnp.floor((2.0 * a / us + b) * us_ + s["cf"]) + s["ci"]
    kc = jnp.clip(k, 0.0, n)
    d = kc - m
    lhs = jnp.log(v * s["alpha"] / (a / (us * us) + b))
    rhs = (
        -(m + 0.5) * jnp.log1p(d / (m + 1.0))
        - (n - m + 0.5) * jnp.log1p(-d / (n - m + 1.0))
        + d * jnp.log(s["r"] * (n - kc + 1.0) / (kc + 1.0))
        + s["h"]
        - _stirling_tail(kc)
        - _stirling_tail(n - kc)
    )
    ok = (k >= 0) & (k <= n) & (((us >= 0.07) & (v <= s["vr"])) | (lhs <= rhs))
    return jnp.where(ok, kc, jnp.nan)


def _draw(words, s, num_candidates: int):
    """Inversion (mean < 10) or the first accepted of ``num_candidates`` BTRS candidates
    (NaN if all are rejected). words: (..., 2 num_candidates); s from _setup."""
    dtype = s["n"].dtype
    x_inv = _inversion(words[..., 0], s["n_inv"], s["r_inv"], INVERSION_TERMS)
    out = None
    for i in range(num_candidates - 1, -1, -1):  # from the last: the first accepted wins
        k = _btrs_candidate(
            s, _open_uniform(words[..., 2 * i], dtype), _open_uniform(words[..., 2 * i + 1], dtype)
        )
        out = k if out is None else jnp.where(jnp.isnan(k), out, k)
    return jnp.where(s["mid"], x_inv, out)


def _fold_q(n, q):
    """(flip, q'): q' = min(q, 1 - q), and n - x undoes the flip."""
    flip = q > 0.5
    return flip, jnp.where(flip, 1.0 - q, q)


# ----------------------------------------------------------------------- batched passes


def _first_pass(keys, salt, n, q, plan):
    """First pass over rows: keys and salt (C,), n and q (C, S); NaN where unfinished.

    plan = ("btrs", R): inversion or R BTRS candidates per lane; ("inversion", J):
    inversion over J terms, NaN where that would truncate more than 1e-12.
    """
    kind, param = plan
    width = jnp.finfo(n.dtype).bits
    rows, size = n.shape
    live = _always(keys)
    lane = lambda: jnp.broadcast_to(jnp.arange(size, dtype=jnp.uint32), (rows, size))
    if kind == "btrs":
        s = _barrier(live, lambda: _setup(n, _fold_q(n, q)[1]))
        w = _barrier(live, lambda: _words(keys, salt, lane(), 0, _TAG_FIRST, 2 * param, width))

        def first():
            x = _draw(w, s, param)
            return jnp.where(q > 0.5, n - x, x)

    else:

        def first():
            flip, qq = _fold_q(n, q)
            w = _words(keys, salt, lane(), 0, _TAG_FIRST, 1, width)[..., 0]
            x = _inversion(w, n, qq / (1.0 - qq), param)
            x = jnp.where((n > param) & (n * qq >= inversion_max_mean(param)), jnp.nan, x)
            return jnp.where(flip, n - x, x)

    return _barrier(live, first)


def _lane_rounds(keys, salt, lane, n, q, val):
    """Fills the NaN entries of ``val`` (lanes of any shape, their own keys and lane
    indices): rounds of _draw with fresh words until every lane is accepted.

    The words of round i+1 are drawn at the end of round i, behind a _barrier that
    also skips them once all lanes are done.
    """
    width = jnp.finfo(n.dtype).bits
    flip, qq = _fold_q(n, q)
    s = _setup(n, qq)
    gen = lambda i: _words(keys, salt, lane, i, _TAG_ROUND, 2 * _ROUND_CANDIDATES, width)

    def body(c):
        i, val, w = c
        x = _draw(w, s, _ROUND_CANDIDATES)
        val = jnp.where(jnp.isnan(val), jnp.where(flip, n - x, x), val)
        w = _barrier(jnp.any(jnp.isnan(val)), lambda: gen(i + 1))
        return i + 1, val, w

    def cond(c):
        return jnp.any(jnp.isnan(c[1])) & (c[0] < _MAX_ROUNDS)

    init = (jnp.uint32(0), val, _barrier(jnp.any(jnp.isnan(val)), lambda: gen(jnp.uint32(0))))
    return jax.lax.while_loop(cond, body, init)[1]


def _finish(keys, salt, n, q, x, group: int = 8):
    """Replaces the NaN lanes of x (C, S) by exact Bin(n, q) draws (the fallback).

    Each pass gathers up to P = total / 256 (at least 64) unfinished lanes from all
    rows, at most one per group of ``group`` consecutive lanes (group flags, then the
    first P flagged groups: a top_k for P <= 1024, about 0.3 ns per lane, a cumsum
    for larger P; then an argmax inside each group), runs _lane_rounds on them and
    scatters the values back; passes repeat until no lane is left. Lane (c, s) draws
    from (keys[c], salt[c], s) only, whatever the pass it falls in.
    """
    rows, size = n.shape
    total = rows * size
    num_groups = -(-total // group)
    pad = num_groups * group - total
    lanes = min(max(64, 1 << max(0, round(math.log2(max(total, 1) / 256)))), num_groups)

    def first_groups(flags):
        if lanes <= 1024:
            return jax.lax.top_k(flags.astype(jnp.float32), lanes)[1]
        return jnp.nonzero(flags, size=lanes, fill_value=0)[0]

    def fix():
        flat = lambda a: jnp.concatenate([a.reshape(-1), jnp.zeros((pad,), a.dtype)])
        nf, qf = flat(n), flat(q)

        def one_pass(c):
            xf, todo = c
            grid = todo.reshape(num_groups, group)
            gidx = first_groups(jnp.any(grid, axis=1))
            sub = grid[gidx]
            within = jnp.argmax(sub, axis=1)
            sel = jnp.take_along_axis(sub, within[:, None], axis=1)[:, 0]
            idx = gidx * group + within
            row = jnp.minimum(idx // size, rows - 1)
            val = jnp.where(sel, jnp.nan, 0.0).astype(xf.dtype)
            val = _lane_rounds(keys[row], salt[row], idx % size, nf[idx], qf[idx], val)
            where = jnp.where(sel, idx, num_groups * group)
            return xf.at[where].set(val, mode="drop"), todo.at[where].set(False, mode="drop")

        xf = flat(x)
        xf = jax.lax.while_loop(lambda c: jnp.any(c[1]), one_pass, (xf, jnp.isnan(xf)))[0]
        return xf[:total].reshape(rows, size)

    return jax.lax.cond(jnp.any(jnp.isnan(x)), fix, lambda: x)


def _fold_vmap(impl):
    """``impl(keys (C,), *arrays (C, ...))`` under ``custom_vmap``: a vmapped call folds
    the vmap axis into C, so that the cond and the gathers of _finish see all lanes of
    the batch (a plain vmap would turn its cond into a select that always runs)."""

    @jax.custom_batching.custom_vmap
    def rows(keys, *arrays):
        return impl(keys, *arrays)

    @rows.def_vmap
    def _rule(axis_size, in_batched, keys, *arrays):
        args = [
            a if b else jnp.broadcast_to(a, (axis_size,) + a.shape)
            for a, b in zip((keys,) + arrays, in_batched, strict=True)
        ]
        lead = args[1].shape[:2]
        out = rows(*(a.reshape((lead[0] * lead[1],) + a.shape[2:]) for a in args))
        return out.reshape(lead + out.shape[1:]), True

    return rows


@functools.cache
def _first_pass_fn(plan):
    return _fold_vmap(functools.partial(_first_pass, plan=plan))


_finish_fn = _fold_vmap(_finish)

batch_rows = _fold_vmap  # public name: a rows function that sees the whole vmap batch


class BinomialPasses(NamedTuple):
    """The batched binomial passes that :func:`multinomial` runs at each tree level.

    A seam for profiling (``bench/multinomial_speed.py`` swaps in deterministic
    stand-ins to time the tree walk apart from the draws); the default,
    :func:`binomial_passes`, is the exact sampler. Both are *rows functions*
    (wrap one with :func:`batch_rows` so that a vmap folds into its rows).
    """

    first_pass: Callable  # plan -> f(keys (C,), salt (C,), n (C, S), q (C, S)): NaN = unfinished
    finish: Callable  # f(keys, salt, n, q, x (C, S)) -> x with every NaN lane drawn


def binomial_passes() -> BinomialPasses:
    """The exact passes: inversion or BTRS first (by plan), then the gathered fallback."""
    return BinomialPasses(_first_pass_fn, _finish_fn)


def binomial(key, n, q, *, num_candidates: int | None = None) -> jax.Array:
    r"""Exact :math:`\mathrm{Binomial}(n, q)` draws, elementwise (one chain's; vmap to batch).

    Args:
      key: a PRNG key.
      n: trial counts, a float array (integer-valued, ``0 <= n <= 2**24`` in float32).
      q: success probabilities in ``[0, 1]``, a float array of the same shape.
      num_candidates: BTRS candidates per lane in the first pass (default 3: all
        rejected for 0.2-2.5 % of the BTRS lanes); tests use 1 to send 12-30 % of them
        through the fallback.

    Returns:
      Float draws of the dtype of ``n`` and ``q`` (at least float32; NaN where ``n`` or
      ``q`` is NaN or ``n < 0``). ``n = 0`` or ``q = 0`` give 0, ``q = 1`` gives
      ``n``, exactly.

    Inversion below a mean of 10 (truncated at 39, tail < 1e-12), BTRS above; lanes
    whose candidates are all rejected are gathered from the whole vmap batch and
    finished by the fallback (see the section header in the source).
    """
    key = _as_key(key)
    n, q = jnp.broadcast_arrays(jnp.asarray(n), jnp.asarray(q))
    dtype = jnp.promote_types(jnp.result_type(n.dtype, q.dtype, float), jnp.float32)
    n, q = n.astype(dtype), q.astype(dtype)
    shape = n.shape
    size = math.prod(shape)
    if size == 0:
        return jnp.zeros(shape, dtype)
    bad = jnp.isnan(q) | ~(n >= 0) | jnp.isinf(n)
    n = jnp.where(bad, 0.0, n).reshape(1, size)
    q = jnp.clip(jnp.where(bad, 0.0, q), 0.0, 1.0).reshape(1, size)
    keys, salt = key[None], jnp.zeros((1,), jnp.uint32)
    plan = ("btrs", num_candidates or _BTRS_CANDIDATES)
    x = _finish_fn(keys, salt, n, q, _first_pass_fn(plan)(keys, salt, n, q))
    return jnp.where(bad, jnp.nan, x.reshape(shape))
