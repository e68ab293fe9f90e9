r"""What is recorded per generation: small per-chain summaries, never raw data.

For the 1-D Gaussian (real distribution :math:`N(\mu_0, \sigma_0^2)`, tail
multiplier k, collapse threshold :math:`\varepsilon`):

* ``mean`` :math:`\mu_n` and ``log_var`` :math:`\log\sigma_n^2`;
* ``w2_squared`` :math:`W_2^2 = (\mu_n-\mu_0)^2 + (\sigma_n-\sigma_0)^2`;
* ``tail_own`` :math:`P_{fit}(|X-\mu_n| > k\sigma_0) = 2\Phi(-k\sigma_0/\sigma_n)`,
  the fit's mass beyond k real standard deviations from its own mean;
* ``tail_real`` :math:`P_{fit}(|X-\mu_0| > k\sigma_0)`, the same from the real mean;
* ``collapsed`` :math:`1[\sigma_n^2 < \varepsilon\sigma_0^2]`.

For the categorical chain (real distribution :math:`p_0` over K categories):
see :class:`CategoricalRecord`. For linear regression (true weights
:math:`w^*`): see :class:`RegressionRecord`.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erfc, ndtr

from sim._reduce import pairwise_sum
from sim._validate import check_float, check_int
from sim.families.categorical import CategoricalParams, Vocabulary
from sim.families.gaussian import GaussianParams


class GaussianRecord(NamedTuple):
    """Per-chain, per-generation summaries of a Gaussian chain (all float)."""

    mean: jax.Array  # shape=(), fitted mean
    log_var: jax.Array  # shape=(), fitted log-variance
    w2_squared: jax.Array  # shape=(), squared W2 distance to the real distribution
    tail_own: jax.Array  # shape=(), mass beyond k sigma0 from the fit's own mean
    tail_real: jax.Array  # shape=(), mass beyond k sigma0 from the real mean
    collapsed: jax.Array  # shape=(), 1.0 if sigma^2 < eps sigma0^2 else 0.0


@functools.cache
def gaussian_record(
    mu0: float = 0.0, sigma0: float = 1.0, tail_k: float = 3.0, collapse_eps: float = 1e-6
):
    """Builds ``record(params) -> GaussianRecord`` (cached per setting).

    Args:
      mu0, sigma0: the real distribution.
      tail_k: k, tails are measured beyond k * sigma0.
      collapse_eps: a chain counts as collapsed when sigma^2 < eps sigma0^2.
    """
    mu0 = check_float(mu0, "mu0")
    sigma0 = check_float(sigma0, "sigma0", positive=True)
    tail_k = check_float(tail_k, "tail_k", nonnegative=True)
    collapse_eps = check_float(collapse_eps, "collapse_eps", positive=True)
    log_threshold = math.log(collapse_eps) + 2.0 * math.log(sigma0)
    k_sigma = tail_k * sigma0

    def record(params: GaussianParams) -> GaussianRecord:
        dtype = params.log_var.dtype
        sigma = jnp.exp(0.5 * params.log_var)
        inv_sigma = jnp.exp(-0.5 * params.log_var)  # inf once sigma underflows
        d = params.mean - mu0
        w2 = jnp.square(d) + jnp.square(sigma - sigma0)
        tail_own = erfc(k_sigma * inv_sigma / math.sqrt(2.0))
        # Phi((-k sigma0 - d)/sigma) + Phi((d - k sigma0)/sigma); 0*inf guarded.
        lo = jnp.where(d + k_sigma == 0, 0.0, -(d + k_sigma) * inv_sigma)
        hi = jnp.where(d - k_sigma == 0, 0.0, (d - k_sigma) * inv_sigma)
        tail_real = ndtr(lo) + ndtr(hi)
        collapsed = (params.log_var < log_threshold).astype(dtype)
        return GaussianRecord(params.mean, params.log_var, w2, tail_own, tail_real, collapsed)

    return record


class CategoricalRecord(NamedTuple):
    r"""Per-chain, per-generation summaries of a categorical chain (all float).

    ``p`` is the fit, ``p0`` the real distribution; sums run over categories.
    """

    support: jax.Array  # shape=(), number of categories with p > 0
    entropy: jax.Array  # shape=(), -sum p log p (nats)
    heterozygosity: jax.Array  # shape=(), 1 - sum p^2: P(two draws differ)
    tv: jax.Array  # shape=(), total variation (1/2) sum |p - p0|
    kl: jax.Array  # shape=(), KL(p || p0) = sum p log(p / p0) (nats; inf off p0's support)
    tail_mass: jax.Array  # shape=(), mass on categories of initial rank > tail_rank
    mode_mass: jax.Array  # shape=(), max p: the head
    absorbed: jax.Array  # shape=(), 1.0 if p is a point mass
    survival: jax.Array  # shape=(B,), fraction of each rank bucket with p > 0


def default_bucket_edges(num_categories: int) -> tuple[int, ...]:
    """Rank buckets by decade: (1, 10, 100, ..., K) as upper rank bounds."""
    edges, e = [], 1
    while e < num_categories:
        edges.append(e)
        e *= 10
    return (*edges, num_categories)


def check_bucket_edges(edges, num_categories: int) -> tuple[int, ...]:
    """Increasing upper rank bounds ending at K (one-line ``ValueError`` otherwise)."""
    edges = tuple(int(e) for e in edges)
    if not edges or edges[-1] != num_categories:
        raise ValueError(f"bucket_edges={edges} must end at K={num_categories}")
    if edges[0] < 1 or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
        raise ValueError(f"bucket_edges={edges} must be strictly increasing from >= 1")
    return edges


@functools.cache
def categorical_record(vocabulary: Vocabulary, tail_rank: int, bucket_edges: tuple[int, ...]):
    """Builds ``record(params) -> CategoricalRecord`` (cached per setting).

    Args:
      vocabulary: the real distribution p0.
      tail_rank: the tail is every category of initial rank > ``tail_rank``.
      bucket_edges: upper rank bounds of the survival buckets, ending at K:
        bucket b holds ranks ``(edges[b-1], edges[b]]`` (``(0, edges[0]]`` first).
    """
    k = vocabulary.num_categories
    tail_rank = check_int(tail_rank, "tail_rank", 0)
    if tail_rank > k:
        raise ValueError(f"tail_rank={tail_rank} exceeds the number of categories K={k}")
    edges = check_bucket_edges(bucket_edges, k)
    order = np.argsort(-vocabulary.probs, kind="stable")
    identity = bool(np.all(order == np.arange(k)))  # Zipf and uniform come sorted
    p0_sorted = vocabulary.probs[order]
    log_p0 = np.log(np.where(p0_sorted > 0, p0_sorted, 1.0))
    # Bucket membership as a (K, B) 0/1 matrix: counting survivors is then one
    # matmul of 0/1 values, exact in any summation order (integers < 2^24),
    # where slicing the vector per bucket measured 3.5 ns per category per bucket.
    lows = (0, *edges[:-1])
    member = np.zeros((k, len(edges)), np.float32)
    for b, (lo, hi) in enumerate(zip(lows, edges, strict=True)):
        member[lo:hi, b] = 1.0
    sizes = np.diff((0, *edges)).astype(np.float64)

    def record(params: CategoricalParams) -> CategoricalRecord:
        p = params.probs
        dtype = p.dtype
        ps = p if identity else p[..., order]
        pos = ps > 0
        log_ps = jnp.log(jnp.where(pos, ps, 1))
        plogp = jnp.where(pos, ps * log_ps, 0)
        alive = jnp.dot(
            pos.astype(dtype), jnp.asarray(member, dtype), precision=jax.lax.Precision.HIGHEST
        )  # (B,) exact counts
        support = jnp.sum(alive, axis=-1)  # exact: a sum of small integers
        tail = pairwise_sum(ps[..., tail_rank:]) if tail_rank < k else jnp.zeros((), dtype)
        kl_terms = jnp.where(pos, ps * (log_ps - jnp.asarray(log_p0, dtype)), 0)
        if np.any(p0_sorted == 0):  # mass where p0 has none: KL is infinite
            kl_terms = jnp.where(pos & jnp.asarray(p0_sorted == 0), jnp.inf, kl_terms)
        return CategoricalRecord(
            support=support,
            entropy=-pairwise_sum(plogp),
            heterozygosity=1 - pairwise_sum(ps * ps),
            tv=0.5 * pairwise_sum(jnp.abs(ps - jnp.asarray(p0_sorted, dtype))),
            kl=pairwise_sum(kl_terms),
            tail_mass=tail,
            mode_mass=jnp.max(ps, axis=-1),
            absorbed=(support == 1).astype(dtype),
            survival=alive / jnp.asarray(sizes, dtype),
        )

    return record


class RegressionRecord(NamedTuple):
    r"""Per-chain, per-generation summaries of a regression chain (all float).

    ``test_error`` is the excess risk of the fit :math:`w` for an isotropic
    Gaussian test point, :math:`\mathbb{E}_x[(x^\top w - x^\top w^*)^2] =
    \lVert w - w^*\rVert^2` (the test MSE is :math:`\sigma^2` more), the
    quantity of :mod:`theory.regression`.
    """

    test_error: jax.Array  # shape=(), ||w - w*||^2
    weight_norm_sq: jax.Array  # shape=(), ||w||^2


@functools.cache
def regression_record(w_star: tuple[float, ...]):
    """Builds ``record(w) -> RegressionRecord`` for true weights ``w_star`` (cached).

    Args:
      w_star: the true weights as a tuple of floats (hashable; length d).
    """
    w_star = tuple(check_float(v, "w_star entry") for v in w_star)
    if not w_star:
        raise ValueError("w_star must have at least one entry")
    target = np.asarray(w_star, np.float64)

    def record(w: jax.Array) -> RegressionRecord:
        diff = w - jnp.asarray(target, w.dtype)
        return RegressionRecord(pairwise_sum(diff * diff), pairwise_sum(w * w))

    return record
