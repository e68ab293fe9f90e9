r"""Sampling bias: how a deployed model turns its fitted distribution into data.

A fitted categorical model :math:`p` is rarely sampled as it is. Deployed
language models sample with a temperature and a truncation, in this order
(the order of Hugging Face's logits warpers):

1. temperature :math:`\tau`: :math:`q_i \propto p_i^{1/\tau}` (computed in log
   space; a category with :math:`p_i = 0` stays at 0);
2. top-k: keep the :math:`k` most probable categories (ties go to the lower
   index), renormalise;
3. top-p (nucleus): sort descending (stable, ties to the lower index), keep a
   category iff the mass of the categories *before* it is below ``top_p``,
   so the kept set is the shortest prefix whose mass reaches ``top_p``;
   renormalise.

Each step is applied to the fitted model before the next generation's data
are drawn; the real data of generation 0 are drawn without it (people, not
the model, wrote them). :mod:`theory.categorical` implements the same rules
independently for the infinite-sample limit.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from sim._reduce import pairwise_sum


class SamplingBias(NamedTuple):
    """A sampler transform: temperature, then top-k, then top-p (None = off)."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None

    @property
    def is_identity(self) -> bool:
        return self.temperature == 1.0 and self.top_k is None and self.top_p is None

    def label(self) -> str:
        """A short label such as ``"tau=0.8,top_k=50"`` (``"none"`` for no bias)."""
        parts = []
        if self.temperature != 1.0:
            parts.append(f"tau={self.temperature:g}")
        if self.top_k is not None:
            parts.append(f"top_k={self.top_k}")
        if self.top_p is not None:
            parts.append(f"top_p={self.top_p:g}")
        return ",".join(parts) or "none"


@functools.cache
def sampling_bias(
    temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> SamplingBias:
    """A validated :class:`SamplingBias` (one-line ``ValueError`` naming a bad value)."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise ValueError(f"temperature={temperature!r}: must be a number > 0")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature={temperature!r}: must be finite and > 0")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k={top_k!r}: must be an integer >= 1 or None")
    if top_p is not None:
        if isinstance(top_p, bool) or not isinstance(top_p, (int, float)):
            raise ValueError(f"top_p={top_p!r}: must be a number in (0, 1] or None")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p={top_p!r}: must be in (0, 1] or None")
    return SamplingBias(float(temperature), top_k, None if top_p is None else float(top_p))


def _inclusive_cumsum(x: jax.Array) -> jax.Array:
    """Cumulative sum whose order of additions depends on the length only."""
    return jax.lax.associative_scan(jnp.add, x, axis=-1)


def _normalise(q: jax.Array) -> jax.Array:
    return q / pairwise_sum(q)[..., None]


def apply_bias(bias: SamplingBias, probs: jax.Array) -> jax.Array:
    """The sampling distribution of a fitted categorical ``probs`` (shape (K,)).

    The result is a probability vector of the same shape and dtype; categories
    with zero probability stay at zero.
    """
    q = probs
    k = probs.shape[-1]
    if bias.temperature != 1.0:
        logp = jnp.where(q > 0, jnp.log(jnp.where(q > 0, q, 1)), -jnp.inf)
        z = logp / bias.temperature
        z = z - jnp.max(z, axis=-1, keepdims=True)
        q = jnp.where(q > 0, jnp.exp(z), 0)
        q = _normalise(q)
    if bias.top_k is not None and bias.top_k < k:
        _, idx = jax.lax.top_k(q, bias.top_k)  # ties: lower index first
        keep = jnp.zeros(q.shape, bool).at[idx].set(True)
        q = jnp.where(keep, q, 0)
        q = _normalise(q)
    if bias.top_p is not None and bias.top_p < 1.0:
        order = jnp.argsort(-q, stable=True)
        sorted_q = q[order]
        csum = _inclusive_cumsum(sorted_q)
        before = jnp.concatenate([jnp.zeros_like(csum[..., :1]), csum[..., :-1]], -1)
        keep_sorted = before < bias.top_p
        keep = jnp.zeros(q.shape, bool).at[order].set(keep_sorted)
        q = jnp.where(keep, q, 0)
        q = _normalise(q)
    return q
