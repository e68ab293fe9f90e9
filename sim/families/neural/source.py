r"""A synthetic language with a known law: a sparse, Zipfian Markov source of order 1 or 2.

Tokens are :math:`0, \dots, V-1`, ranked by a Zipf weight
:math:`u_i \propto (i + 1)^{-s}` (``zipf`` = :math:`s`). Each context
:math:`x = (x_1, \dots, x_o)` of the order-:math:`o` source has a sparse next-token
row

.. math::
    P(y \mid x) = \frac{u_y \, \mathbf 1[y \in S_x]}{\sum_{z \in S_x} u_z},
    \qquad S_x = \{(x_o + 1) \bmod V\} \cup \{0 : x_o = 0\} \cup E_x,

where :math:`E_x` is ``support - 1`` tokens drawn without replacement with
probabilities :math:`u` (from the PRNG key of ``seed``): each row is the Zipf law
restricted to a small support (duplicates merge, so a row has at most ``support`` + 1
tokens), so frequent tokens follow most contexts and rare tokens (and rare bigrams)
follow few. The successor :math:`x_o + 1` in every row makes the chain on contexts
reach the cycle :math:`0 \to 1 \to \dots \to V-1 \to 0` from every context (one
recurrent class), and :math:`0 \to 0` after a 0 makes it aperiodic, so the stationary
law is unique.

Exact quantities (float64, NumPy): the stationary law :math:`\pi` of the contexts (one
linear solve of :math:`\pi (T - I) = 0, \sum \pi = 1` on the :math:`V^o` contexts),
the unigram marginal, and the entropy rate

.. math::
    H = -\sum_x \pi(x) \sum_y P(y \mid x) \log P(y \mid x)
    \quad\text{(nats/token; Cover and Thomas, Elements of Information Theory, Thm 4.2.4).}

A real sequence starts stationary: its first :math:`o` tokens are drawn from
:math:`\pi`, then it follows :math:`P`. :func:`context_table` writes the source as the
next-token table of a model that reads a window of ``context`` >= :math:`o` tokens
padded on the left with a BOS symbol (index :math:`V`): row :math:`(\mathrm{BOS}^b, r)`
with :math:`|r| < o` is the stationary conditional
:math:`\pi_{|r|+1}(r, y) / \pi_{|r|}(r)` of the first coordinates; longer :math:`r`
use :math:`P(y \mid r_{-o:})`.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sim._validate import check_float, check_int

MAX_CONTEXTS = 1024  # V**order: the exact stationary law is one dense solve of this size


class MarkovSource(NamedTuple):
    r"""A Markov source and its exact law (host float64 arrays, a build-time constant)."""

    vocab_size: int  # V
    order: int  # o in {1, 2}
    transition: np.ndarray  # shape=(V**o, V), float64: P(y | x), x in base-V order
    stationary: np.ndarray  # shape=(V**o,), float64: pi(x)
    unigram: np.ndarray  # shape=(V,), float64: stationary token frequencies
    zipf_weights: np.ndarray  # shape=(V,), float64: u
    entropy_rate: float  # nats per token


def check_source_settings(vocab_size, order, zipf, support, seed):
    """The source's settings checked (one-line ValueErrors naming the bad one)."""
    v = check_int(vocab_size, "vocab_size", 2)
    o = check_int(order, "order", 1)
    if o > 2:
        raise ValueError(f"order={order!r} must be 1 or 2")
    if v**o > MAX_CONTEXTS:
        raise ValueError(f"vocab_size={v}: vocab_size**order = {v**o} exceeds {MAX_CONTEXTS}")
    s = check_float(zipf, "zipf", nonnegative=True)
    k = check_int(support, "support", 2)
    if k > v:
        raise ValueError(f"support={k} must be at most vocab_size={v}")
    seed = check_int(seed, "source_seed", 0)
    return v, o, s, k, seed


@functools.cache
def markov_source(vocab_size=16, order=2, zipf=1.1, support=4, seed=0) -> MarkovSource:
    """The seeded source (module docstring); cached, so one build per setting.

    Example:
      >>> src = markov_source(8, 1, 1.0, 3, 0)
      >>> bool(np.allclose(src.stationary @ src.transition, src.stationary))
      True
    """
    v, o, s, k, seed = check_source_settings(vocab_size, order, zipf, support, seed)
    u = (np.arange(1, v + 1, dtype=np.float64)) ** -s
    u /= u.sum()
    rows = v**o
    # E_x by the Gumbel-top-k trick (sampling without replacement with probabilities u):
    # float32 uniforms from the key, the rest in NumPy float64, so the source is the same
    # whether JAX runs with x64 or not
    uni = jax.random.uniform(
        jax.random.key(seed, impl="threefry2x32"), (rows, v), jnp.float32, 1e-7, 1.0
    )
    gumbel = np.log(u)[None, :] - np.log(-np.log(np.asarray(uni, np.float64)))
    chosen = np.argsort(-gumbel, axis=1, kind="stable")[:, : k - 1]
    mask = np.zeros((rows, v), bool)
    last = np.arange(rows) % v  # the context's last token x_o
    mask[last == 0, 0] = True
    mask[np.arange(rows), (last + 1) % v] = True
    np.put_along_axis(mask, chosen, True, axis=1)
    w = np.where(mask, u[None, :], 0.0)
    trans = w / w.sum(1, keepdims=True)
    pi = _stationary(trans, v, o)
    uni = pi.reshape((v,) * o).sum(tuple(range(o - 1))) if o > 1 else pi
    h = _entropy_rate(pi, trans)
    return MarkovSource(v, o, trans, pi, np.asarray(uni, np.float64), u, h)


def context_transition_matrix(trans: np.ndarray, v: int, o: int) -> np.ndarray:
    """The (V**o, V**o) matrix of the chain on contexts: x -> (x_2..x_o, y) w.p. P(y|x)."""
    rows = v**o
    t = np.zeros((rows, rows))
    nxt = (np.arange(rows)[:, None] * v) % rows + np.arange(v)[None, :]
    np.add.at(t, (np.repeat(np.arange(rows), v), nxt.ravel()), trans.ravel())
    return t


def _stationary(trans, v, o):
    t = context_transition_matrix(trans, v, o)
    n = t.shape[0]
    a = t.T - np.eye(n)
    a[-1, :] = 1.0
    b = np.zeros(n)
    b[-1] = 1.0
    pi = np.linalg.solve(a, b)
    pi = np.where(np.abs(pi) < 1e-300, 0.0, pi)
    return np.clip(pi, 0.0, None) / np.clip(pi, 0.0, None).sum()


def _entropy_rate(pi, trans):
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(trans > 0, trans * np.log(np.where(trans > 0, trans, 1.0)), 0.0)
    return float(-(pi * plogp.sum(1)).sum())


def num_contexts(vocab_size: int, context: int) -> int:
    """Rows of a model's next-token table: (V + 1)**context windows over tokens and BOS."""
    return (vocab_size + 1) ** context


def context_tokens(vocab_size: int, context: int) -> np.ndarray:
    """Every window, shape ((V+1)**context, context), int32, base-(V+1) order (BOS = V)."""
    b = vocab_size + 1
    idx = np.arange(b**context)
    digits = [(idx // b ** (context - 1 - j)) % b for j in range(context)]
    return np.stack(digits, 1).astype(np.int32)


def real_context_rows(vocab_size: int, context: int) -> np.ndarray:
    """Indices of the windows without BOS, in base-V order of their tokens."""
    b = vocab_size + 1
    toks = np.stack(np.meshgrid(*[np.arange(vocab_size)] * context, indexing="ij"), -1).reshape(
        -1, context
    )
    return (toks * b ** np.arange(context - 1, -1, -1)).sum(1).astype(np.int64)


def context_table(src: MarkovSource, context: int) -> np.ndarray:
    """The source as a ((V+1)**context, V) next-token table over BOS-padded windows.

    Windows with BOS after a token never occur; their rows are uniform.
    """
    v, o = src.vocab_size, src.order
    if context < o:
        raise ValueError(f"context={context} must be at least the source's order={o}")
    pi = src.stationary.reshape((v,) * o)
    marg = [np.ones(())] + [pi.sum(tuple(range(j, o))) for j in range(1, o)] + [pi]
    toks = context_tokens(v, context)
    out = np.full((toks.shape[0], v), 1.0 / v)
    for i, w in enumerate(toks):
        bos = int(np.sum(np.cumprod(w == v)))
        real = w[bos:]
        if np.any(real == v):
            continue
        if len(real) >= o:
            x = int(np.ravel_multi_index(tuple(real[len(real) - o :]), (v,) * o))
            out[i] = src.transition[x]
        else:
            j = len(real)
            joint = marg[j + 1][tuple(real)]
            out[i] = joint / joint.sum()
    return out


def stationary_windows(src: MarkovSource, context: int) -> np.ndarray:
    """The stationary law of the real windows (no BOS) of length ``context``, base-V order."""
    v, o = src.vocab_size, src.order
    law = src.stationary.reshape((v,) * o)
    for _ in range(context - o):
        last = np.ravel_multi_index(
            tuple(np.indices(law.shape)[-o:].reshape(o, -1)), (v,) * o
        ).reshape(law.shape)
        law = law[..., None] * src.transition[last]
    return law.reshape(-1)


def absence_probabilities(
    table: np.ndarray, vocab_size: int, context: int, seq_len: int, pairs
) -> np.ndarray:
    r"""P(a sequence of ``seq_len`` tokens drawn from ``table`` never shows a pattern), exact.

    A sequence is the chain on BOS-padded windows started at all-BOS: window :math:`c`
    emits :math:`y` w.p. ``table[c, y]`` and moves to the shifted window. For each pattern
    ``(a, y)`` in ``pairs`` (``a = -1``: the token :math:`y` anywhere; ``a >= 0``: the
    bigram :math:`(a, y)`), the transitions that emit it are removed and the remaining
    (sub-stochastic) mass after ``seq_len`` steps is the probability of avoiding it:
    :math:`\mathbf e_{\mathrm{BOS}}^\top (T - R_{ay})^{L} \mathbf 1`. A corpus of :math:`M`
    independent sequences misses it with probability the M-th power.

    Returns:
      float64 array of shape ``(len(pairs),)``.
    """
    v, b = vocab_size, vocab_size + 1
    rows = b**context
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    nxt = (np.arange(rows)[:, None] * b + np.arange(v)[None, :]) % rows  # (rows, V)
    last = np.arange(rows) % b  # last token of each window (V = BOS)
    # mask[f, c, y] = 1 if the transition (c, y) is allowed for pattern f
    allowed = np.ones((len(pairs), rows, v))
    for f, (a, y) in enumerate(pairs):
        allowed[f, :, y] = 0.0 if a < 0 else (last != a).astype(float)
    mass = np.zeros((len(pairs), rows))
    mass[:, rows - 1] = 1.0
    flat = nxt.ravel()
    for _ in range(seq_len):
        moved = (mass[:, :, None] * table[None] * allowed).reshape(len(pairs), -1)
        new = np.zeros_like(mass)
        for f in range(len(pairs)):
            new[f] = np.bincount(flat, weights=moved[f], minlength=rows)
        mass = new
    return mass.sum(1)
