r"""The categorical family over K categories: the neutral Wright-Fisher chain.

Each generation fits the empirical frequencies of ``M`` tokens drawn from the
previous fit,

.. math::
    \hat p_i = \frac{X_i + \alpha}{M + K\alpha}, \qquad
    X \sim \mathrm{Multinomial}(M, T(p)),

with additive smoothing :math:`\alpha \ge 0` (0 = maximum likelihood) and a
sampler transform :math:`T` (temperature, top-k, top-p; :mod:`sim.sampling`).
With :math:`\alpha = 0` and no transform this is the neutral Wright-Fisher
model: a category that draws no token is extinct for good, and the chain is
absorbed in a point mass (THEORY.md D1-D5). Smoothing gives every category at
least :math:`\alpha/(M+K\alpha)`, so nothing goes extinct and the chain has a
stationary law instead of an absorbing state.

Data are *counts* (shape ``(K,)``, int32), drawn directly by conditional
binomial splits (:func:`sim.random.multinomial`): the M tokens themselves
are never materialised, so the cost is O(K) per chain and generation for any
M.

Generation 0 is the real distribution. Its data are drawn *without* the
sampler transform (people, not the model, wrote them); the params carry a
``real`` flag for that.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sim import random as _random
from sim._static import is_static
from sim._static import label as _label
from sim._validate import check_float, check_int
from sim.families.base import DataOps, Family
from sim.sampling import SamplingBias, apply_bias

PROB_SUM_RTOL = 1e-6


class CategoricalParams(NamedTuple):
    """A categorical distribution; ``real`` marks the real (generation-0) one."""

    probs: jax.Array  # shape=(K,), float, sums to 1
    real: jax.Array  # shape=(), bool: draw its data without the sampler transform


def check_probability_vector(probs, name: str = "probs") -> np.ndarray:
    """A float64 copy of ``probs`` after checking it is a probability vector.

    Raises ``ValueError`` naming the first bad entry: not 1-D with at least
    one entry, not finite, negative, or a sum farther than ``PROB_SUM_RTOL``
    from 1.
    """
    try:
        p = np.asarray(probs, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numeric vector; got {probs!r}") from err
    if p.ndim != 1 or p.size < 1:
        raise ValueError(f"{name} must be a non-empty 1-D vector; got shape {p.shape}")
    bad = ~np.isfinite(p)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name}[{i}]={float(p[i])!r} is not finite")
    if (p < 0).any():
        i = int(np.argmax(p < 0))
        raise ValueError(f"{name}[{i}]={float(p[i])!r} is negative")
    total = float(p.sum())
    if not abs(total - 1.0) <= PROB_SUM_RTOL:
        raise ValueError(f"{name} sums to {total!r}, not 1 (tolerance {PROB_SUM_RTOL:g})")
    return p / total


def zipf_probs(num_categories: int, beta: float) -> np.ndarray:
    r"""Zipf's law :math:`p_i \propto i^{-\beta}`, i = 1..K (float64)."""
    k = check_int(num_categories, "num_categories", 1)
    beta = check_float(beta, "beta", nonnegative=True)
    w = np.arange(1, k + 1, dtype=np.float64) ** -beta
    return w / w.sum()


@dataclasses.dataclass(frozen=True, eq=False)
class Vocabulary:
    """The real distribution over K categories, hashable by content.

    Build it with :meth:`uniform`, :meth:`zipf` or :meth:`from_probs`. Records
    and runners are cached per vocabulary, so equal vocabularies share
    compiled programs.
    """

    probs: np.ndarray  # shape=(K,), float64, validated
    name: str = "custom"

    def __post_init__(self):
        p = check_probability_vector(self.probs, "probs")
        p.setflags(write=False)
        object.__setattr__(self, "probs", p)
        object.__setattr__(self, "_digest", hashlib.sha1(p.tobytes()).hexdigest())

    def __hash__(self):
        return hash(self._digest)

    def __eq__(self, other):
        return isinstance(other, Vocabulary) and self._digest == other._digest

    @property
    def num_categories(self) -> int:
        return self.probs.shape[0]

    @property
    def ranks(self) -> np.ndarray:
        """Frequency rank of each category, 1 = most probable (ties: lower index first)."""
        order = np.argsort(-self.probs, kind="stable")
        ranks = np.empty(self.num_categories, np.int64)
        ranks[order] = np.arange(1, self.num_categories + 1)
        return ranks

    @classmethod
    def uniform(cls, num_categories: int) -> Vocabulary:
        k = check_int(num_categories, "num_categories", 1)
        return cls(np.full(k, 1.0 / k), f"uniform(K={k})")

    @classmethod
    def zipf(cls, num_categories: int, beta: float) -> Vocabulary:
        return cls(zipf_probs(num_categories, beta), f"zipf(K={num_categories},beta={beta:g})")

    @classmethod
    def from_probs(cls, probs, name: str = "custom") -> Vocabulary:
        return cls(check_probability_vector(probs), name)

    def params(self, dtype=None) -> CategoricalParams:
        """Generation-0 params (flagged ``real``)."""
        dtype = dtype or jnp.result_type(float)
        return CategoricalParams(jnp.asarray(self.probs, dtype), jnp.asarray(True))


NO_BIAS = SamplingBias()


def categorical(smoothing: float = 0.0, bias: SamplingBias = NO_BIAS, dtype=None) -> Family:
    """The categorical family with additive ``smoothing`` and a sampler transform.

    Cached, so equal settings give the same functions (one compilation). A
    validating wrapper of :func:`categorical_family`.

    Args:
      smoothing: alpha >= 0 added to every count before normalising.
      bias: the sampler transform applied to a fitted model before drawing
        (not to the real distribution).
      dtype: the float type of fitted probabilities (default: JAX's default
        float); it must match the chain's generation-0 params.

    Returns:
      A :class:`~sim.families.base.Family` whose params are
      :class:`CategoricalParams` and whose data are counts, shape ``(K,)``.
    """
    alpha = check_float(smoothing, "smoothing", nonnegative=True)
    if not isinstance(bias, SamplingBias):
        raise ValueError(f"bias must be a SamplingBias; got {bias!r}")
    return _categorical(alpha, bias, jnp.dtype(dtype or jnp.result_type(float)).name)


@functools.cache
def _categorical(alpha: float, bias: SamplingBias, dtype: str) -> Family:
    return categorical_family(alpha, bias, dtype)


def categorical_family(smoothing, bias: SamplingBias = NO_BIAS, dtype=None) -> Family:
    """The family of :func:`categorical`, uncached, for static or traced settings.

    ``smoothing`` and the bias's ``temperature`` and ``top_p`` may be traced
    (per-lane scalars of a parameter sweep under ``vmap``; build the bias as
    ``SamplingBias(temperature, top_k, top_p)``). Static values are not
    validated here (:func:`categorical` does). A Python smoothing of 0 skips
    the smoothing, as a Python temperature of 1 skips the temperature; a
    traced value always takes the general path, which gives the same numbers
    at those values. With a traced smoothing ``ops.min_count`` is traced
    (0 where smoothing > 0, else 1), so the family is not hashable.
    """
    if not isinstance(bias, SamplingBias):
        raise ValueError(f"bias must be a SamplingBias; got {bias!r}")
    dtype = jnp.dtype(dtype or jnp.result_type(float)).name
    static_alpha = is_static(smoothing)
    alpha = smoothing if static_alpha else jnp.asarray(smoothing, dtype)

    def fit(key, counts: jax.Array) -> CategoricalParams:
        del key  # closed-form fit
        k = counts.shape[-1]
        x = counts.astype(dtype)
        total = jnp.sum(counts, axis=-1, keepdims=True).astype(x.dtype)  # exact integer sum
        if not static_alpha or alpha:
            probs = (x + alpha) / (total + k * alpha)
        else:
            probs = x / total
        return CategoricalParams(probs, jnp.zeros(counts.shape[:-1], bool))

    def sample(key, params: CategoricalParams, n) -> jax.Array:
        q = params.probs
        if not bias.is_identity:
            q = jnp.where(params.real, q, apply_bias(bias, q))
        return _random.multinomial(key, n, q)

    if static_alpha:
        # With smoothing an empty set fits the uniform distribution.
        min_count = 0 if alpha else 1
    else:
        min_count = jnp.where(alpha > 0, 0, 1)
    ops = DataOps(
        stats=lambda counts, weights=None: counts,  # weights: never passed (no points)
        merge=jnp.add,
        fit_stats=fit,
        count=lambda counts: jnp.sum(counts, axis=-1),
        empty=lambda params: jnp.zeros(params.probs.shape, jnp.int32),
        min_count=min_count,
        sample_stats=sample,  # counts are the statistics; ``n`` may be traced
        subsample=subsample_counts,
        thin=thin_counts,
    )
    name = f"categorical(alpha={_label(alpha)},{bias.label()},{dtype})"
    return Family(fit, sample, name, ops)


def subsample_counts(key, counts: jax.Array, size: int, capacity: int) -> jax.Array:
    """Counts of ``size`` tokens drawn without replacement from a pool of ``counts``.

    Exact (a multivariate hypergeometric draw): the pool's tokens are laid out
    in category order at positions ``0..N-1`` (``N = sum(counts) <= capacity``),
    ``size`` distinct positions are chosen uniformly (the smallest of
    ``capacity`` uniform keys, those at positions ``>= N`` excluded) and mapped
    back to categories. Costs O(capacity) per draw, so accumulate-subsample on
    counts grows with the pool (the regime's own history), not with K alone.
    A pool smaller than ``size`` is returned whole.
    """
    total = jnp.sum(counts)
    pos = jnp.arange(capacity, dtype=jnp.int32)
    u = jax.random.uniform(key, (capacity,), jnp.float32)  # top_k on float64: 7x slower
    _, idx = jax.lax.top_k(-jnp.where(pos < total, u, 2.0), size)
    cat = jnp.searchsorted(jnp.cumsum(counts), idx, side="right")
    return jnp.zeros_like(counts).at[cat].add((idx < total).astype(counts.dtype), mode="drop")


def thin_counts(key, counts: jax.Array, accept) -> jax.Array:
    """Keeps each token of category i with probability ``accept(i)`` (binomial thinning)."""
    q = accept(jnp.arange(counts.shape[-1]))
    dtype = jnp.promote_types(jnp.result_type(q), jnp.float32)
    return _random.binomial(key, counts.astype(dtype), q.astype(dtype)).astype(counts.dtype)
