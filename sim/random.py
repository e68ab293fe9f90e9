r"""Random variates the engine needs beyond ``jax.random``, built from raw bits.

``jax.random.gamma`` / ``loggamma`` run a rejection loop per element; under
``vmap`` inside a ``scan`` they measured 0.9-4 M variates/s on a 2-core CPU,
far too slow for the O(1) exact path. :func:`log_gamma` is Marsaglia and
Tsang's method with two candidates drawn at once from one block of bits and a
batched fallback loop for the rare lane that rejects both, so it stays exact.

:func:`binomial` and :func:`multinomial` (counts of M tokens over K categories,
by conditional binomial splits down a binary tree) are exact too: inversion
for means below 10, Hoermann's BTRS above, the few lanes that need more work
finished by a gathered fallback (see the section "Binomial and multinomial").
``jax.random.binomial`` runs while loops per element (about 200 ns each here).

All functions take a single key and return one chain's draws; batch with
``vmap``. Every draw depends only on its key, never on the batch it sits in.

References:
  G. Marsaglia and W. W. Tsang (2000). A simple method for generating gamma
  variables. ACM Transactions on Mathematical Software 26(3), 363-372.
  W. Hoermann (1993). The generation of binomial random variates. Journal of
  Statistical Computation and Simulation 46, 101-110.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

_UINT = {32: jnp.uint32, 64: jnp.uint64}


def _open_uniform(bits: jax.Array, dtype) -> jax.Array:
    """Maps unsigned integer bits to uniforms on the open interval (0, 1)."""
    nmant = jnp.finfo(dtype).nmant
    width = jnp.iinfo(bits.dtype).bits
    mant = (bits >> (width - nmant)).astype(dtype)
    return (mant + 0.5) * np.asarray(2.0**-nmant, dtype)


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
# only when some lane needs it.
#
# Random words come from the Philox block function directly when the key is philox4x32
# (word j of a lane is a block with counter (lane, round * num + j, tag, salt) under the
# chain's key, the salt being the multinomial's chunk index, so that no key is derived
# per chunk or lane; jax.random.bits spends a block per word too, but measured 20 %
# slower for one word per lane and several times slower for a (words, lanes) shape),
# from jax.random.bits of fold_in-derived keys for other PRNGs. They are a function of
# (key, salt, lane, round) only, hence independent of the batch.
#
# XLA on CPU recomputes cheap producers (the ~100 integer ops of a Philox block) inside
# every consumer fusion; a BTRS candidate splits into several fusions, so unfinished
# draws and random words are produced inside a lax.cond on a runtime predicate that is
# always true (_barrier): the result is written once (optimization_barrier is dropped
# on CPU). That cut the run time and the compile time of a pass by about half.
# ------------------------------------------------------------------------------------------

try:  # the raw Philox block function (four 32-bit words per evaluation)
    from jax._src.random.philox4x32 import philox4x32_p as _PHILOX
except ImportError:  # pragma: no cover - other JAX versions: jax.random.bits of fold_in keys
    _PHILOX = None

BTRS_MIN_MEAN = 10.0  # BTRS for n min(q, 1-q) >= 10 (its stated domain), inversion below
INVERSION_TERMS = 39  # P(Pois(10) > 39) = 7.3e-13
TRUNCATION = 1e-12  # bound on the truncated tail of every inversion
_SPARSE_TERMS = (9, 14, 19, 24, 29, 39)  # inversion lengths of the multinomial's deep levels
_BTRS_CANDIDATES = 3  # first-pass BTRS candidates (all rejected: < 2.5 %)
_ROUND_CANDIDATES = 4  # candidates per fallback round (all rejected: < 0.8 %)
_MAX_ROUNDS = 2000  # a lane still rejected after this many rounds stays NaN (never seen)
_DENSE_MEAN = 30.0  # multinomial levels whose mean node count reaches this use BTRS passes
_TAG_FIRST, _TAG_ROUND = 1, 2  # counter word 2 of the Philox blocks (jax.random uses 0)

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


def _always(keys):
    """A runtime predicate that is always true and that XLA cannot fold."""
    return (jax.random.key_data(keys).reshape(-1)[0] | 1) != 0


def _barrier(pred, make):
    """``make()`` inside a ``lax.cond`` on ``pred`` (always true): see the header."""
    shapes = jax.eval_shape(make)
    return jax.lax.cond(
        pred, make, lambda: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    )


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


def multinomial(key, total, probs, *, chunk: int | None = None) -> jax.Array:
    r"""Exact :math:`\mathrm{Multinomial}(\text{total}, \text{probs})` counts (one chain's).

    Args:
      key: a PRNG key.
      total: the number of tokens, a Python int (level plans then use it) or a traced
        integer scalar (plans then assume ``total = K``; only speed depends on it).
      probs: shape ``(K,)``, non-negative with a positive sum (normalised here; zeros
        allowed). Its float dtype is the working precision (counts up to 2**24 in
        float32).
      chunk: nodes per step of the tree walk (default from K; a tuning knob).

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
    branches = [functools.partial(_one_row, _first_pass_fn(plan)) for plan in plans]
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
        x = _one_row(_finish_fn, key, salt, n, q, x)
        children = jnp.stack([x, n - x], axis=-1).reshape(-1)
        return jax.lax.dynamic_update_slice(counts, children, (write,))

    counts = jnp.zeros((offset[-1] + 2 * width + 2,), dtype).at[0].set(jnp.asarray(total, dtype))
    counts = jax.lax.fori_loop(0, table.shape[1], body, counts)
    return counts[offset[depth] : offset[depth] + k].astype(jnp.int32)
