r"""What a neural chain records per generation.

With :math:`P` the source, :math:`\pi` the stationary law of its real windows (length
``context``, no BOS) and :math:`q_n` the model fitted at generation :math:`n`:

* ``kl``: :math:`\sum_c \pi(c)\, \mathrm{KL}(P(\cdot\mid c) \,\|\, q_n(\cdot\mid c))`,
  exact (contexts enumerated);
* ``real_ce``: cross-entropy of :math:`q_n` on a held-out real corpus (fixed at build,
  positions whose window has no BOS), nats/token; its expectation is exactly
  :math:`H + \mathrm{kl}` (each such window is stationary), ``perplexity`` = its exp;
* ``entropy_rate``: the model's own entropy rate
  :math:`-\sum_c \mu_n(c) \sum_y q_n(y\mid c)\log q_n(y\mid c)` with :math:`\mu_n` the
  stationary law of :math:`q_n` on windows, found by ``POWER_ITERATIONS`` power steps
  from :math:`\pi`; ``stationary_residual`` = :math:`\|\mu T_n - \mu\|_1` of the result;
* ``token_survival`` / ``bigram_survival``: by initial-frequency bucket (quartiles of
  the tokens ranked by :math:`\pi`'s unigram, of the source's possible bigrams ranked
  by probability; bucket 0 the rarest), the share present in fit :math:`n`'s training
  corpus (1 at generation 0, the real law);
* ``distinct``: distinct unigrams, bigrams and (context+1)-grams of that corpus (at
  generation 0: of a real corpus of the same size, drawn at build);
* ``nll_hist``: the share of that corpus's sequences per bin of their mean negative
  log-likelihood under the source (bins: :func:`sim.families.neural.family.bin_edges`;
  the last bin holds sequences with a transition the source forbids);
* ``train_loss``: the fit's final training cross-entropy.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sim.families.neural.family import Config, _windows_of, built, real_params
from sim.families.neural.source import markov_source, real_context_rows, stationary_windows

POWER_ITERATIONS = 100
NUM_BUCKETS = 4


class NeuralRecord(NamedTuple):
    """Per-chain, per-generation summaries of a neural chain (module docstring)."""

    real_ce: jax.Array  # shape=()
    perplexity: jax.Array  # shape=()
    kl: jax.Array  # shape=()
    entropy_rate: jax.Array  # shape=()
    stationary_residual: jax.Array  # shape=()
    train_loss: jax.Array  # shape=()
    token_survival: jax.Array  # shape=(NUM_BUCKETS,)
    bigram_survival: jax.Array  # shape=(NUM_BUCKETS,)
    distinct: jax.Array  # shape=(3,)
    nll_hist: jax.Array  # shape=(NUM_BINS,)
    train_size: jax.Array  # shape=(): sequences in this fit's training set


def buckets(weights: np.ndarray, num: int = NUM_BUCKETS) -> np.ndarray:
    """Bucket of each positive-weight item by quantile of its rank (0 = rarest), -1 if 0."""
    pos = np.flatnonzero(weights > 0)
    order = pos[np.argsort(weights[pos], kind="stable")]
    out = np.full(weights.shape, -1, np.int64)
    out[order] = np.minimum(np.arange(len(order)) * num // len(order), num - 1)
    return out


class RecordConstants(NamedTuple):
    """Host constants of the record (exposed for tests and the experiment)."""

    real_rows: np.ndarray  # rows of the real windows, base-V order
    pi: np.ndarray  # stationary law of real windows
    holdout: np.ndarray  # (rows * V,) held-out real pair counts (real windows only)
    token_bucket: np.ndarray  # (V,)
    bigram_bucket: np.ndarray  # (V * V,)
    real_corpus: np.ndarray  # tokens (sample_size, seq_len) of a real corpus (generation 0)
    holdout_tokens: np.ndarray  # tokens (holdout, seq_len) of the held-out corpus


@functools.cache
def record_constants(cfg: Config, sample_size: int, holdout: int) -> RecordConstants:
    """The record's constants: a held-out corpus of ``holdout`` real sequences and a real
    corpus of ``sample_size`` sequences, drawn from fixed keys (not the run's)."""
    from sim.families.neural.family import DecodeRule, neural_family

    src = markov_source(cfg.vocab_size, cfg.order, cfg.zipf, cfg.support, cfg.source_seed)
    v, k = cfg.vocab_size, cfg.context
    fam = neural_family(cfg, DecodeRule(), 0.0)
    p0 = real_params(cfg)
    key = jax.random.key(0x5EED, impl="threefry2x32")
    held = np.asarray(jax.jit(fam.sample, static_argnums=2)(key, p0, holdout))
    idx = np.asarray(_windows_of(jnp.asarray(held), v, k))
    flat = (idx * v + held)[:, k:].ravel()  # windows without BOS
    counts = np.bincount(flat, minlength=(v + 1) ** k * v).astype(np.float64)
    real = np.asarray(
        jax.jit(fam.sample, static_argnums=2)(jax.random.fold_in(key, 1), p0, sample_size)
    )
    bigram = stationary_windows(src, 2)  # order <= 2: the stationary law of (x_t, x_t+1)
    return RecordConstants(
        real_context_rows(v, k),
        stationary_windows(src, k),
        counts,
        buckets(src.unigram),
        buckets(bigram.reshape(-1)),
        real,
        held,
    )


def _corpus_summaries(counts, cfg: Config, c: RecordConstants, dt):
    v, k = cfg.vocab_size, cfg.context
    b = v + 1
    table = counts.reshape((b,) * k + (v,))
    uni = table.sum(tuple(range(k)))
    prev = table.sum(tuple(range(k - 1)))[:v] if k > 1 else table[:v]  # (prev token, next)

    def by_bucket(present, bucket):
        size = np.bincount(bucket[bucket >= 0], minlength=NUM_BUCKETS)
        b = jnp.asarray(np.where(bucket >= 0, bucket, 0))
        hits = (
            jnp.zeros((NUM_BUCKETS,), dt)
            .at[b]
            .add(jnp.where(jnp.asarray(bucket >= 0), present.astype(dt), 0))
        )
        return hits / jnp.asarray(np.maximum(size, 1), dt)

    tok_b, big_b = c.token_bucket, c.bigram_bucket
    tok_present, big_present = uni > 0, prev.reshape(-1) > 0
    grams = jnp.sum(counts.reshape(-1, v)[c.real_rows] > 0)
    distinct = jnp.stack([jnp.sum(tok_present), jnp.sum(big_present), grams]).astype(dt)
    return by_bucket(tok_present, tok_b), by_bucket(big_present, big_b), distinct


@functools.cache
def neural_record(cfg: Config, sample_size: int, holdout: int):
    """``record(state, info) -> NeuralRecord`` of a chain under a regime (cached)."""
    c = record_constants(cfg, sample_size, holdout)
    src_table = built(cfg).source_table
    v, k = cfg.vocab_size, cfg.context
    dt = jnp.dtype(cfg.dtype)
    p_real = src_table[c.real_rows]  # (V**k, V)
    with np.errstate(divide="ignore"):
        plogp = np.where(p_real > 0, p_real * np.log(np.where(p_real > 0, p_real, 1)), 0.0)
    hold = c.holdout.reshape(-1, v)[c.real_rows]
    hold_total = hold.sum()
    from sim.families.neural.family import DecodeRule, neural_family

    g0 = jax.tree.map(
        np.asarray,
        jax.jit(neural_family(cfg, DecodeRule(), 0.0).ops.stats)(jnp.asarray(c.real_corpus)),
    )

    def record(state, info):
        params = state.params
        q = params.table[c.real_rows]  # (V**k, V)
        logq = jnp.log(q)
        kl = jnp.sum(
            jnp.asarray(c.pi, dt)[:, None]
            * (jnp.asarray(plogp, dt) - jnp.where(p_real > 0, jnp.asarray(p_real, dt) * logq, 0))
        )
        ce = -jnp.sum(jnp.asarray(hold, dt) * jnp.where(hold > 0, logq, 0)) / hold_total
        # the model's chain on real windows: c = (x_1..x_k) -> (x_2..x_k, y)
        qk = q.reshape((v,) * k + (v,))

        def power(mu, _):
            nxt = jnp.einsum("a...,a...y->...y", mu, qk) if k > 1 else mu @ qk
            return nxt / jnp.sum(nxt), None

        mu0 = jnp.asarray(c.pi, dt).reshape((v,) * k)
        mu, _ = jax.lax.scan(power, mu0, None, length=POWER_ITERATIONS)
        mu_next, _ = power(mu, None)
        resid = jnp.sum(jnp.abs(mu_next - mu))
        qlogq = jnp.where(q > 0, q * logq, 0)
        h_model = -jnp.sum(mu.reshape(-1) * qlogq.sum(1))
        fitted = info.train_size > 0
        fit = info.fit
        counts = jnp.where(fitted, fit.counts, jnp.asarray(g0.counts, dt))
        hist = jnp.where(fitted, fit.hist, jnp.asarray(g0.hist, dt))
        tok_s, big_s, distinct = _corpus_summaries(counts, cfg, c, dt)
        one = jnp.ones((NUM_BUCKETS,), dt)
        return NeuralRecord(
            ce,
            jnp.exp(ce),
            kl,
            h_model,
            resid,
            jnp.asarray(fit.train_loss, dt),
            jnp.where(fitted, tok_s, one),
            jnp.where(fitted, big_s, one),
            distinct,
            hist / jnp.maximum(jnp.sum(hist), 1),
            jnp.asarray(info.train_size, dt),
        )

    return record
