r"""The Poisson family: a rate fitted by the sample mean, data drawn as counts.

Each generation fits the MLE

.. math::
    \hat\lambda = \frac1M \sum_{i=1}^M x_i, \qquad x_i \sim \mathrm{Poisson}(\lambda),

so the chain's total :math:`S_n = M\lambda_n` is a Galton-Watson process with
Poisson(1) offspring: :math:`S_{n+1} \mid S_n \sim \mathrm{Poisson}(S_n)`, a
martingale absorbed at 0 (:mod:`theory.poisson`).

Data. ``sample(key, params, n)`` returns the ``n`` counts as floats: their total
:math:`T \sim \mathrm{Poisson}(n\lambda)` and, given it, the counts
:math:`\mathrm{Multinomial}(T, (1/n, \dots, 1/n))`, which is exactly the law of
``n`` independent Poisson counts. ``DataOps.sample_stats`` draws the summary
``(n, T)`` with the same key, so ``stats(sample(key, p, n)) ==
sample_stats(key, p, n)`` exactly.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from sim import random as _random
from sim._reduce import pairwise_sum
from sim._validate import check_float
from sim.families.base import DataOps, Family


class PoissonParams(NamedTuple):
    r"""A fitted Poisson model :math:`\mathrm{Poisson}(\lambda)`."""

    rate: jax.Array  # shape=(), float: lambda >= 0


class PoissonStats(NamedTuple):
    """Sufficient statistics of a training set of counts (:class:`~sim.families.base.DataOps`)."""

    count: jax.Array  # shape=(), float: number of draws
    total: jax.Array  # shape=(), float: their sum (integer-valued)


def real_params(lam0: float = 1.0, dtype=None) -> PoissonParams:
    """The real distribution Poisson(lam0) as generation-0 params."""
    lam0 = check_float(lam0, "lam0", nonnegative=True)
    return PoissonParams(jnp.asarray(lam0, dtype or jnp.result_type(float)))


def empty_stats(params: PoissonParams) -> PoissonStats:
    """The statistics of no data (the identity of :func:`merge_stats`)."""
    zero = jnp.zeros_like(params.rate)
    return PoissonStats(zero, zero)


def merge_stats(a: PoissonStats, b: PoissonStats) -> PoissonStats:
    """The statistics of the pooled sets."""
    return PoissonStats(a.count + b.count, a.total + b.total)


def count_stats(data: jax.Array, weights=None) -> PoissonStats:
    """Statistics of the counts ``data`` (shape ``(n,)``; 0/1 ``weights``)."""
    if weights is None:
        return PoissonStats(jnp.asarray(data.shape[-1], data.dtype), pairwise_sum(data))
    w = weights.astype(data.dtype)
    return PoissonStats(pairwise_sum(w), pairwise_sum(w * data))


def fit_stats(key, stats: PoissonStats) -> PoissonParams:
    """The MLE: total / count (0 for an empty set, which the regimes never fit)."""
    del key  # closed-form fit
    return PoissonParams(jnp.where(stats.count > 0, stats.total / jnp.maximum(stats.count, 1), 0))


def _total(key, params: PoissonParams, n):
    return _random.poisson(jax.random.fold_in(key, 0), n * params.rate, params.rate.dtype)


def sample_stats(key, params: PoissonParams, n) -> PoissonStats:
    """The statistics of ``n`` draws (``n`` may be traced): ``(n, Poisson(n lambda))``."""
    dtype = params.rate.dtype
    count = jnp.asarray(n, dtype)
    return PoissonStats(count, _total(key, params, count))


def sample(key, params: PoissonParams, n: int) -> jax.Array:
    """``n`` Poisson(lambda) counts as floats (see the module docstring)."""
    dtype = params.rate.dtype
    total = _total(key, params, jnp.asarray(n, dtype))
    probs = jnp.full((n,), 1.0 / n, dtype)
    counts = _random.multinomial(jax.random.fold_in(key, 1), total.astype(jnp.int32), probs)
    return counts.astype(dtype)


def poisson() -> Family:
    """The Poisson family (rate fitted by the sample mean, THEORY.md D5).

    Returns:
      A :class:`~sim.families.base.Family` whose params are
      :class:`PoissonParams`, whose data are float counts of shape ``(n,)`` and
      whose :class:`~sim.families.base.DataOps` summarise a set by
      :class:`PoissonStats`.

    Example:
      >>> import jax
      >>> fam = poisson()
      >>> x = fam.sample(jax.random.key(0), real_params(3.0), 50)
      >>> fitted = fam.fit(None, x)
    """
    return _FAMILY


def _fit(key, data: jax.Array) -> PoissonParams:
    return fit_stats(key, count_stats(data))


_FAMILY = Family(
    fit=_fit,
    sample=sample,
    name="poisson",
    ops=DataOps(
        stats=count_stats,
        merge=merge_stats,
        fit_stats=fit_stats,
        count=lambda s: s.count,
        empty=empty_stats,
        min_count=1,
        sample_stats=sample_stats,
        points=lambda data: data,
        point_stats=count_stats,
    ),
)
