r"""The Gaussian kernel density estimate (KDE) refitted to its own samples (THEORY.md K1).

A fit stores its training points :math:`x_1, \dots, x_N` and a bandwidth
:math:`h`; the fitted distribution is the mixture

.. math::
    \hat f(y) = \frac1N \sum_{i=1}^N \frac1h\,\varphi\!\left(\frac{y - x_i}{h}\right),

sampled by picking a stored point uniformly and adding :math:`h Z`,
:math:`Z \sim N(0, 1)`. Its mean is the points' mean and its variance is the
points' MLE variance plus :math:`h^2`. The bandwidth is

* ``rule="fixed"``: a given :math:`h` (``bandwidth``);
* ``rule="scott"``: :math:`h = s\,N^{-1/5}`;
* ``rule="silverman"``: :math:`h = (4/3)^{1/5} s\,N^{-1/5}`,

with :math:`s` the points' sample standard deviation (divisor :math:`N-1`), the
factors of ``scipy.stats.gaussian_kde`` in one dimension (so the bench's
baseline fits the same model). Silverman's other, robust rule
:math:`0.9\min(s, \mathrm{IQR}/1.34)N^{-1/5}` is not offered: it is not
proportional to :math:`s`, so the closed form of :mod:`theory.kde` would not
hold for it.

Layout. JAX needs static shapes, so params and summaries hold a buffer of
``capacity`` points of which the first ``count`` are stored (the rest are 0):
``capacity = M`` for the replace, fresh and anchored regimes, ``M G`` for
accumulate (every point so far: O(sum of M_t) memory per chain, which is what
accumulating means for a family without finite sufficient statistics). The
real distribution :math:`N(\mu_0, \sigma_0^2)` is the KDE of one point
:math:`\mu_0` with bandwidth :math:`\sigma_0` (:func:`real_params`), so the
chain's generation 0 samples it exactly. Summaries merge by writing the second
set's points after the first's; the capacity is sized so that it never binds
(a merge past it would keep the first ``capacity`` points).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from sim._reduce import pairwise_sum
from sim._static import is_static
from sim._static import label as _label
from sim._validate import check_float, check_int
from sim.families.base import DataOps, Family

RULES = ("fixed", "scott", "silverman")
# h = factor * s * N^(-1/5) (1-D scipy.stats.gaussian_kde: scott n^(-1/5), silverman (3n/4)^(-1/5))
RULE_FACTORS = {"scott": 1.0, "silverman": (4.0 / 3.0) ** 0.2}


class KDEParams(NamedTuple):
    r"""A fitted KDE: the first ``count`` entries of ``points`` with bandwidth ``h``."""

    points: jax.Array  # shape=(capacity,), float: stored points (0 beyond count)
    count: jax.Array  # shape=(), float: number of stored points N >= 1
    bandwidth: jax.Array  # shape=(), float: h > 0


class KDEStats(NamedTuple):
    """A training set as a buffer of points (:class:`~sim.families.base.DataOps`)."""

    points: jax.Array  # shape=(capacity,), float: the set's points first, then 0
    count: jax.Array  # shape=(), float: number of points in the set


def check_rule(rule) -> str:
    if rule not in RULES:
        raise ValueError(f"rule={rule!r} is not one of {RULES}")
    return rule


def real_params(capacity: int, mu0: float = 0.0, sigma0: float = 1.0, dtype=None) -> KDEParams:
    """The real distribution N(mu0, sigma0^2) as a KDE of one point (generation 0)."""
    capacity = check_int(capacity, "capacity", 1)
    mu0 = check_float(mu0, "mu0")
    sigma0 = check_float(sigma0, "sigma0", positive=True)
    dtype = dtype or jnp.result_type(float)
    points = jnp.zeros((capacity,), dtype).at[0].set(mu0)
    return KDEParams(points, jnp.ones((), dtype), jnp.asarray(sigma0, dtype))


def empty_stats(params: KDEParams) -> KDEStats:
    """The summary of no data (the identity of merge), at the params' capacity."""
    return KDEStats(jnp.zeros_like(params.points), jnp.zeros_like(params.count))


def merge_stats(a: KDEStats, b: KDEStats) -> KDEStats:
    """The pooled set: ``a``'s points, then ``b``'s (at ``a``'s capacity)."""
    cap = a.points.shape[-1]
    idx = jnp.arange(cap)
    na = a.count.astype(jnp.int32)
    nb = b.count.astype(jnp.int32)
    b_idx = jnp.clip(idx - na, 0, b.points.shape[-1] - 1)
    pts = jnp.where(idx < na, a.points, b.points[b_idx])
    pts = jnp.where(idx < na + nb, pts, 0)
    count = jnp.minimum(a.count + b.count, cap).astype(a.count.dtype)
    return KDEStats(pts, count)


def point_mean_var(points: jax.Array, count: jax.Array):
    """Mean and MLE variance (divisor N) of the first ``count`` points (fixed-order sums)."""
    mask = (jnp.arange(points.shape[-1]) < count).astype(points.dtype)
    n = jnp.maximum(count, 1)
    mean = pairwise_sum(mask * points) / n
    var = pairwise_sum(mask * jnp.square(points - mean)) / n
    return mean, var


def _make_stats(capacity: int):
    def stats(data: jax.Array, weights=None) -> KDEStats:
        n = data.shape[-1]
        if n > capacity:
            raise ValueError(f"{n} points exceed the KDE's capacity={capacity}")
        if weights is None:
            pts, count = data, jnp.asarray(n, data.dtype)
        else:
            keep = weights.astype(bool)
            order = jnp.argsort(~keep, stable=True)  # kept points first, in their order
            count = pairwise_sum(keep.astype(data.dtype))
            pts = jnp.where(jnp.arange(n) < count, data[order], 0)
        return KDEStats(jnp.pad(pts, (0, capacity - n)), count)

    return stats


def _make_fit_stats(rule: str, bandwidth):
    factor = RULE_FACTORS.get(rule)

    def fit_stats(key, stats: KDEStats) -> KDEParams:
        del key  # closed-form fit
        dtype = stats.points.dtype
        if factor is None:
            h = jnp.asarray(bandwidth, dtype) + jnp.zeros((), dtype)
        else:
            n = stats.count
            _, var = point_mean_var(stats.points, n)
            sd = jnp.sqrt(var * n / jnp.maximum(n - 1, 1))
            h = factor * sd * jnp.power(jnp.maximum(n, 1), -0.2)
        return KDEParams(stats.points, stats.count, h)

    return fit_stats


def sample(key, params: KDEParams, n: int) -> jax.Array:
    """``n`` draws: a stored point picked uniformly, plus ``h Z``."""
    dtype = params.points.dtype
    u = jax.random.uniform(jax.random.fold_in(key, 0), (n,), dtype)
    count = params.count.astype(jnp.int32)
    idx = jnp.minimum(jnp.floor(u * params.count).astype(jnp.int32), count - 1)
    z = jax.random.normal(jax.random.fold_in(key, 1), (n,), dtype)
    return params.points[idx] + params.bandwidth * z


@functools.cache
def kde(capacity: int, rule: str = "fixed", bandwidth: float = 0.5) -> Family:
    """The 1-D Gaussian KDE family (cached, validated).

    Args:
      capacity: the most points a fit stores (M for replace; M G for accumulate).
      rule: ``"fixed"``, ``"scott"`` or ``"silverman"`` (module docstring).
      bandwidth: h > 0 for ``rule="fixed"`` (unused by the other rules).

    Returns:
      A :class:`~sim.families.base.Family` whose params are :class:`KDEParams`,
      whose data are float arrays of shape ``(n,)`` and whose
      :class:`~sim.families.base.DataOps` summarise a set by :class:`KDEStats`.

    Example:
      >>> import jax
      >>> fam = kde(20, "scott")
      >>> x = fam.sample(jax.random.key(0), real_params(20), 20)
      >>> fitted = fam.fit(None, x)
      >>> int(fitted.count)
      20
    """
    capacity = check_int(capacity, "capacity", 1)
    check_rule(rule)
    bandwidth = check_float(bandwidth, "bandwidth", positive=True)
    return kde_family(capacity, rule, bandwidth)


def kde_family(capacity: int, rule: str, bandwidth) -> Family:
    """:func:`kde`, uncached; ``bandwidth`` may be traced (a per-lane h of a sweep)."""
    if is_static(bandwidth) and not (math.isfinite(bandwidth) and bandwidth > 0):
        raise ValueError(f"bandwidth={bandwidth!r} must be a finite number > 0")
    stats = _make_stats(capacity)
    fit_stats = _make_fit_stats(rule, bandwidth)

    def fit(key, data: jax.Array) -> KDEParams:
        return fit_stats(key, stats(data))

    ops = DataOps(
        stats=stats,
        merge=merge_stats,
        fit_stats=fit_stats,
        count=lambda s: s.count,
        empty=empty_stats,
        min_count=2,
        points=lambda data: data,
        point_stats=stats,
    )
    name = f"kde-{rule}" + (f"(h={_label(bandwidth)})" if rule == "fixed" else "")
    return Family(fit=fit, sample=sample, name=name, ops=ops)
