r"""The neural family: small flax language models trained with optax on their own text.

Data. A training set is ``n`` sequences of ``seq_len`` tokens (int32, shape
``(n, seq_len)``). Every position :math:`t` is predicted from the window of the
``context`` tokens before it, padded on the left with BOS, so a sequence contributes
exactly ``seq_len`` (window, next token) pairs.

Summary (:class:`NeuralStats`). Both models read only the window, and the training loss
is the full-batch cross-entropy

.. math::
    \mathcal L(w) = -\frac{1}{N} \sum_{c, y} N_{c y} \log q_w(y \mid c),

a function of the counts :math:`N_{cy}` of (window, next token) pairs only, so the
counts are a sufficient statistic of the fit: ``merge`` adds them (exact integers in
float), accumulating keeps one table per chain whatever the number of generations, and
``fit(key, data) == fit_stats(key, stats(data))`` exactly. The summary also carries a
histogram of the per-sequence mean log-likelihood under the true source (additive too),
which the record reports.

Fit. ``steps`` Adam steps (optax) on :math:`\mathcal L`, from weights drawn with the
fit's key (cold start) or, with ``warm=True``, from the previous generation's weights
(:attr:`~sim.families.base.DataOps.fit_stats_warm`; a fine-tune). The fitted params
hold the weights and the model's next-token table :math:`q(\cdot \mid c)` for every
window (softmax of the logits), which sampling and the record read.

Sampling. The real distribution is params of the same type whose table is the source's
(:func:`sim.families.neural.source.context_table`) and whose ``decoded`` flag is 0: real
text is drawn without a decoding rule. Fitted models (flag 1) decode with the
:class:`DecodeRule`: the repetition penalty (Keskar et al. 2019, CTRL, eq. 3: a token
already in the sequence has its logit divided by the penalty if positive, multiplied
if negative; here every logit is a log-probability, so it is multiplied), then
temperature, top-k and top-p by :func:`sim.sampling.apply_bias`, then either a draw
(ancestral sampling) or the most probable token (greedy; ties to the lower index).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sim.families.base import DataOps, Family
from sim.families.neural.models import model_fns
from sim.families.neural.source import (
    context_table,
    context_tokens,
    markov_source,
    num_contexts,
)
from sim.sampling import SamplingBias, apply_bias

NUM_BINS = 16  # per-sequence NLL bins: [0, 2H) in 14 equal bins, >= 2H, impossible


class NeuralParams(NamedTuple):
    r"""A language model: weights and its next-token table over BOS-padded windows."""

    weights: dict  # the flax weights (pure dict of arrays; the source's: an unused init)
    table: jax.Array  # shape=((V+1)**context, V), float: q(y | window)
    decoded: jax.Array  # shape=(), float: 1 for a fitted model (decoded), 0 for the source


class NeuralStats(NamedTuple):
    """Summary of a set of sequences (:class:`~sim.families.base.DataOps`)."""

    counts: jax.Array  # shape=((V+1)**context * V,), float: (window, next) pair counts
    hist: jax.Array  # shape=(NUM_BINS,), float: sequences per bin of mean NLL under the source


class NeuralInfo(NamedTuple):
    """Diagnostics of one fit (recorded, not carried)."""

    train_loss: jax.Array  # shape=(): L(w) after the last step (nats/token)
    counts: jax.Array  # the training counts (the record derives survival and n-grams)
    hist: jax.Array  # shape=(NUM_BINS,): the training set's NLL histogram


class DecodeRule(NamedTuple):
    """How a fitted model writes text: a repetition penalty, a :class:`SamplingBias`, greedy.

    ``bias.temperature`` and ``bias.top_p`` may be traced; ``greedy`` and
    ``bias.top_k`` are static; ``repetition_penalty`` is a Python float >= 1.
    """

    bias: SamplingBias = SamplingBias()
    greedy: bool = False
    repetition_penalty: float = 1.0


class Config(NamedTuple):
    """Static settings of a neural family (hashable)."""

    vocab_size: int
    order: int
    zipf: float
    support: int
    source_seed: int
    context: int
    seq_len: int
    model: str
    embed: int
    hidden: int
    heads: int
    layers: int
    steps: int
    warm: bool
    dtype: str


def bin_edges(entropy_rate: float) -> np.ndarray:
    """The 15 edges of the NLL histogram: 0, 2H/14, ..., 2H (nats/token)."""
    return np.linspace(0.0, 2.0 * max(entropy_rate, 1e-3), NUM_BINS - 1)


def decode_probs(rule: DecodeRule, probs, seen):
    """The decoding distribution of one next-token row ``probs`` (shape (V,)) given the
    tokens ``seen`` so far (bool (V,)): penalty, then :func:`sim.sampling.apply_bias`."""
    if rule.repetition_penalty != 1.0:
        logp = jnp.log(probs)
        logp = jnp.where(seen, logp * rule.repetition_penalty, logp)
        probs = jax.nn.softmax(jnp.where(jnp.isfinite(logp), logp, -jnp.inf))
        probs = jnp.where(jnp.isnan(probs), 0, probs)
    return apply_bias(rule.bias, probs)


def choose(rule: DecodeRule, key, probs):
    """A token drawn from ``probs`` (or its argmax under ``greedy``)."""
    if rule.greedy:
        return jnp.argmax(probs).astype(jnp.int32)
    logp = jnp.where(probs > 0, jnp.log(jnp.where(probs > 0, probs, 1)), -jnp.inf)
    return jax.random.categorical(key, logp).astype(jnp.int32)


def _sample_sequence(key, params: NeuralParams, rule: DecodeRule, seq_len, vocab, context):
    """One sequence: tokens (seq_len,) and the windows' row indices (seq_len,)."""
    b = vocab + 1
    rows = b**context
    idx0 = jnp.asarray(rows - 1, jnp.int32)  # all BOS
    keys = jax.random.split(key, seq_len)

    def body(carry, k):
        idx, seen = carry
        q = params.table[idx]
        dec = decode_probs(rule, q, seen)
        raw_tok = choose(DecodeRule(), k, q)
        tok = jnp.where(params.decoded > 0, choose(rule, k, dec), raw_tok)
        nxt = (idx * b + tok) % rows
        return (nxt, seen.at[tok].set(True)), (tok, idx)

    seen0 = jnp.zeros((vocab,), bool)
    _, (toks, idxs) = jax.lax.scan(body, (idx0, seen0), keys)
    return toks, idxs


def _windows_of(tokens, vocab, context):
    """Row index of each position's window (BOS-padded), shape tokens.shape."""
    b = vocab + 1
    n, length = tokens.shape
    padded = jnp.concatenate([jnp.full((n, context), vocab, jnp.int32), tokens], 1)
    idx = jnp.zeros((n, length), jnp.int32)
    for j in range(context):
        idx = idx * b + padded[:, j : j + length]
    return idx


class _Built(NamedTuple):
    cfg: Config
    source_table: np.ndarray  # ((V+1)**k, V) float64
    windows: np.ndarray  # ((V+1)**k, k) int32
    edges: np.ndarray  # (NUM_BINS - 1,)
    init: object
    apply: object
    num_params: int


@functools.cache
def built(cfg: Config) -> _Built:
    """The source's table, the windows and the model's pure functions of a config."""
    src = markov_source(cfg.vocab_size, cfg.order, cfg.zipf, cfg.support, cfg.source_seed)
    init, apply, n = model_fns(
        cfg.model,
        cfg.vocab_size,
        cfg.context,
        cfg.embed,
        cfg.hidden,
        cfg.heads,
        cfg.layers,
        cfg.dtype,
    )
    return _Built(
        cfg,
        context_table(src, cfg.context),
        context_tokens(cfg.vocab_size, cfg.context),
        bin_edges(src.entropy_rate),
        init,
        apply,
        n,
    )


def real_params(cfg: Config) -> NeuralParams:
    """The source as generation-0 params (weights: an init from key 0, used only by a
    warm start of fit 1)."""
    b = built(cfg)
    dt = jnp.dtype(cfg.dtype)
    weights = b.init(jax.random.key(0, impl="threefry2x32"))
    return NeuralParams(weights, jnp.asarray(b.source_table, dt), jnp.zeros((), dt))


def neural_family(cfg: Config, rule: DecodeRule, learning_rate) -> Family:
    """The neural family at a config, a decoding rule and an Adam learning rate.

    ``learning_rate`` and the rule's temperature and top-p may be traced (per-lane
    values of a sweep): build it inside the trace; :func:`sim.families.neural.spec`
    does. See the module docstring for the data, summary, fit and sampling.

    Example:
      >>> cfg = Config(5, 1, 1.0, 3, 0, 1, 6, "mlp", 4, 8, 1, 1, 3, False, "float32")
      >>> fam = neural_family(cfg, DecodeRule(), 0.05)
      >>> x = fam.sample(jax.random.key(0), real_params(cfg), 4)
      >>> x.shape
      (4, 6)
    """
    b = built(cfg)
    v, k, length = cfg.vocab_size, cfg.context, cfg.seq_len
    dt = jnp.dtype(cfg.dtype)
    rows = num_contexts(v, k)
    log_src = np.where(
        b.source_table > 0, np.log(np.where(b.source_table > 0, b.source_table, 1)), -np.inf
    )

    def sample(key, params, n):
        keys = jax.random.split(key, n)
        toks, _ = jax.vmap(lambda kk: _sample_sequence(kk, params, rule, length, v, k))(keys)
        return toks

    def stats(data, weights=None):
        idx = _windows_of(data, v, k)
        flat = idx * v + data
        w = jnp.ones(data.shape[:1], dt) if weights is None else weights.astype(dt)
        counts = (
            jnp.zeros((rows * v,), dt)
            .at[flat.ravel()]
            .add(jnp.broadcast_to(w[:, None], flat.shape).ravel())
        )
        ll = jnp.asarray(log_src, dt).ravel()[flat]  # (n, L), -inf where impossible
        nll = -jnp.mean(ll, axis=1)
        bins = jnp.where(
            jnp.isfinite(nll),
            jnp.searchsorted(jnp.asarray(b.edges, dt), nll, side="right"),
            NUM_BINS - 1,
        )
        bins = jnp.clip(bins, 1, NUM_BINS - 1) - 1  # nll >= 0: bins 0..13, >= 2H: 14, inf: 15
        bins = jnp.where(jnp.isfinite(nll), bins, NUM_BINS - 1)
        hist = jnp.zeros((NUM_BINS,), dt).at[bins].add(w)
        return NeuralStats(counts, hist)

    def merge(a, c):
        return NeuralStats(a.counts + c.counts, a.hist + c.hist)

    def empty(params):
        return NeuralStats(jnp.zeros((rows * v,), dt), jnp.zeros((NUM_BINS,), dt))

    def count(s):
        return jnp.sum(s.hist)

    windows = jnp.asarray(b.windows)
    tx = optax.adam(learning_rate)

    def train(weights, s):
        counts = s.counts.reshape(rows, v)
        total = jnp.maximum(jnp.sum(counts), 1)

        def loss_fn(w):
            logq = jax.nn.log_softmax(b.apply(w, windows), axis=-1)
            return -jnp.sum(counts * logq) / total

        def body(carry, _):
            w, opt = carry
            loss, g = jax.value_and_grad(loss_fn)(w)
            upd, opt = tx.update(g, opt, w)
            return (optax.apply_updates(w, upd), opt), loss

        (w, _), _ = jax.lax.scan(body, (weights, tx.init(weights)), None, length=cfg.steps)
        logq = jax.nn.log_softmax(b.apply(w, windows), axis=-1)
        final = -jnp.sum(counts * logq) / total
        params = NeuralParams(w, jnp.exp(logq).astype(dt), jnp.ones((), dt))
        return params, NeuralInfo(final, s.counts, s.hist)

    def fit_stats_info(key, s):
        return train(b.init(key), s)

    def fit_stats_warm(key, s, previous):
        del key  # the previous weights are the start
        return train(previous.weights, s)

    def fit_stats(key, s):
        return fit_stats_info(key, s)[0]

    def fit_info(key, data):
        return fit_stats_info(key, stats(data))

    ops = DataOps(
        stats=stats,
        merge=merge,
        fit_stats=fit_stats,
        count=count,
        empty=empty,
        min_count=1,
        points=lambda data: data,
        point_stats=stats,
        fit_stats_info=fit_stats_info,
        fit_stats_warm=fit_stats_warm if cfg.warm else None,
    )
    return Family(
        fit=lambda key, data: fit_info(key, data)[0],
        sample=sample,
        name="neural",
        ops=ops,
        fit_info=fit_info,
    )
