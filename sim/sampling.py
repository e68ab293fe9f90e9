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

Temperature and top-p may be JAX values (per-lane scalars of a parameter
sweep under ``vmap``; build the :class:`SamplingBias` directly, as
:func:`sampling_bias` validates Python numbers only); top-k is a static int
(it sets an array shape). A Python temperature of 1.0 or top-p of 1.0 (or
``None``) skips the step; a traced one always takes the general path and
returns the input unchanged where it is 1.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from sim._reduce import pairwise_sum
from sim._static import is_static, is_static_equal
from sim._static import label as _label


class SamplingBias(NamedTuple):
    """A sampler transform: temperature, then top-k, then top-p (None = off).

    ``temperature`` and ``top_p`` may be JAX scalars (then it is not hashable);
    ``top_k`` is a Python int or None.
    """

    temperature: float = 1.0  # Python float or traced scalar, > 0
    top_k: int | None = None  # static
    top_p: float | None = None  # Python float, traced scalar in (0, 1], or None

    @property
    def is_identity(self) -> bool:
        """True only if every step is statically off (a traced value never is)."""
        return is_static_equal(self.temperature, 1.0) and self.top_k is None and self.top_p is None

    def label(self) -> str:
        """A short label such as ``"tau=0.8,top_k=50"`` (``"none"`` for no bias).

        A traced value shows as ``traced`` (``"tau=traced"``).
        """
        parts = []
        if not is_static_equal(self.temperature, 1.0):
            parts.append(f"tau={_label(self.temperature)}")
        if self.top_k is not None:
            parts.append(f"top_k={self.top_k}")
        if self.top_p is not None:
            parts.append(f"top_p={_label(self.top_p)}")
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
    with zero probability stay at zero. ``bias.temperature`` and
    ``bias.top_p`` may be traced (they are cast to the dtype of ``probs``, as
    a Python number is); where a traced one equals 1 its step returns its
    input unchanged (a traced top-p of 1 keeps every category with nonzero
    probability, whatever the rounding of the cumulative sum).
    """
    q = probs
    k = probs.shape[-1]
    tau = bias.temperature
    if not is_static_equal(tau, 1.0):
        t = tau if is_static(tau) else jnp.asarray(tau, q.dtype)
        logp = jnp.where(q > 0, jnp.log(jnp.where(q > 0, q, 1)), -jnp.inf)
        z = logp / t
        z = z - jnp.max(z, axis=-1, keepdims=True)
        tempered = _normalise(jnp.where(q > 0, jnp.exp(z), 0))
        q = tempered if is_static(tau) else jnp.where(t == 1, q, tempered)
    if bias.top_k is not None and bias.top_k < k:
        _, idx = jax.lax.top_k(q, bias.top_k)  # ties: lower index first
        keep = jnp.zeros(q.shape, bool).at[idx].set(True)
        q = jnp.where(keep, q, 0)
        q = _normalise(q)
    top_p = bias.top_p
    if top_p is not None and not (is_static(top_p) and top_p >= 1.0):
        p = top_p if is_static(top_p) else jnp.asarray(top_p, q.dtype)
        order = jnp.argsort(-q, stable=True)
        sorted_q = q[order]
        csum = _inclusive_cumsum(sorted_q)
        before = jnp.concatenate([jnp.zeros_like(csum[..., :1]), csum[..., :-1]], -1)
        keep_sorted = before < p
        keep = jnp.zeros(q.shape, bool).at[order].set(keep_sorted)
        truncated = _normalise(jnp.where(keep, q, 0))
        q = truncated if is_static(top_p) else jnp.where(p >= 1, q, truncated)
    return q
