r"""Alternative Gaussian fits, timed beside the engine's by the profile section.

Nothing here is used by ``sim``; these exist to measure concrete suggestions.

The engine's fit (:func:`sim.families.gaussian.gaussian`) is two-pass: a
fixed-order pairwise sum for :math:`\bar z`, then another for
:math:`\sum (z_i - \bar z)^2`. Because the second pass needs :math:`\bar z`
first, XLA on CPU fuses the random-number generator into several consumers
and recomputes it (seen in the optimised HLO).

* :func:`chan_mean_m2` is a *one-pass* fixed-order pairwise tree that carries
  (count, mean, M2) and merges the two halves at every level with Chan, Golub
  and LeVeque's update :math:`M_2 = M_{2a} + M_{2b} + \delta^2 n_a n_b / n`.
  It is as accurate as the two-pass form (no cancellation: every term is a sum
  of squares) and, like :func:`sim._reduce.pairwise_sum`, its order of
  operations depends on M only, so a chain's value does not depend on its batch.
* ``"jnp"`` is the two-pass fit with ``jnp.mean`` / ``jnp.sum``: fast but its
  last bits depend on the batch shape (DESIGN.md), shown as an upper bound.
* ``"sum"`` keeps the normals and a trivial ``jnp.sum`` of them: the cost of the
  random numbers alone inside the same vmap/scan.

References:
  T. F. Chan, G. H. Golub and R. J. LeVeque (1979). Updating formulae and a
  pairwise algorithm for computing sample variances. STAN-CS-79-773.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from sim.chain import replace_step
from sim.families.base import Family
from sim.families.gaussian import GaussianParams, StandardizedSample, gaussian

FITS = ("engine", "chan", "jnp", "sum")


def _merge(x, y):
    """Chan's merge of (count, mean, M2) triples; counts are static ints, M2 may be None (0)."""
    (na, ma, qa), (nb, mb, qb) = x, y
    n = na + nb
    d = mb - ma
    mean = ma + d * (nb / n)
    q = d * d * (na * nb / n)
    if qa is not None:
        q = q + qa
    if qb is not None:
        q = q + qb
    return n, mean, q


def chan_mean_m2(z: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean and sum of squared deviations of the last axis in one fixed pairwise tree."""
    count, mean, m2 = 1, z, None
    extra = None  # the odd leftovers, merged in a fixed order
    while mean.shape[-1] > 1:
        n = mean.shape[-1]
        h = n // 2
        if n % 2:
            last = (count, mean[..., 2 * h], None if m2 is None else m2[..., 2 * h])
            extra = last if extra is None else _merge(extra, last)
        lo = (count, mean[..., :h], None if m2 is None else m2[..., :h])
        hi = (count, mean[..., h : 2 * h], None if m2 is None else m2[..., h : 2 * h])
        count, mean, m2 = _merge(lo, hi)
    total = (count, mean[..., 0], None if m2 is None else m2[..., 0])
    if extra is not None:
        total = _merge(total, extra)
    _, mean, m2 = total
    return mean, (jnp.zeros_like(mean) if m2 is None else m2)


def _jnp_mean_m2(z):
    zbar = jnp.mean(z)
    return zbar, jnp.sum(jnp.square(z - zbar))


@functools.cache
def gaussian_family(estimator: str = "mle", fit: str = "engine") -> Family:
    """The engine's Gaussian family with its fit's two sums replaced.

    ``fit="engine"`` is :func:`sim.families.gaussian.gaussian` itself; the
    others keep its sampler and its mapping back from standardised
    coordinates, and change only how the mean and M2 of ``z`` are summed.
    """
    if fit not in FITS:
        raise ValueError(f"fit={fit!r} is not one of {FITS}")
    engine = gaussian(estimator)
    if fit == "engine":
        return engine
    reduce = {"chan": chan_mean_m2, "jnp": _jnp_mean_m2}.get(fit)

    def fit_fn(key, data: StandardizedSample) -> GaussianParams:
        del key
        z = data.z
        m = z.shape[-1]
        if reduce is None:  # "sum": consume the normals with one cheap reduce
            return GaussianParams(data.loc + jnp.sum(z), 2.0 * data.log_scale)
        c = m if estimator == "mle" else m - 1
        zbar, ss = reduce(z)
        mean = data.loc + jnp.exp(data.log_scale) * zbar
        log_var = 2.0 * data.log_scale + jnp.log(ss / c)
        return GaussianParams(mean, log_var)

    return Family(fit=fit_fn, sample=engine.sample, name=f"gaussian-{estimator}-{fit}")


def gaussian_step(sample_size: int, estimator: str = "mle", fit: str = "engine"):
    """The ``sample``-path step (:func:`sim.chain.replace_step`) with the given fit."""
    return replace_step(gaussian_family(estimator, fit), sample_size)


def pipelined_scan(step_family: Family, sample_size: int, num_generations: int, params0):
    """A bare ``scan(vmap(...))`` runner that draws generation t+1's normals in step t.

    The standardised normals ``z`` of the Gaussian family do not depend on the
    params, so they can be drawn one generation ahead and carried: the carry is
    materialised, XLA cannot fuse the generator into the fit's several sums,
    and the normals are computed once. Keys, normals and the fit are the
    engine's (:func:`sim.chain.replace_step`); only where the draw sits moves.

    Returns ``run(root, chain_ids) -> final params`` (jitted).
    """
    from sim.chain import chain_key, generation_key

    m, g = int(sample_size), int(num_generations)

    def draw(key):
        k_sample, _ = jax.random.split(key)  # the split replace_step does
        return step_family.sample(k_sample, params0, m).z

    def fit(params, z):
        data = StandardizedSample(params.mean, 0.5 * params.log_var, z)
        return step_family.fit(None, data)

    @jax.jit
    def run(root, chain_ids):
        keys = jax.vmap(chain_key, in_axes=(None, 0))(root, chain_ids)
        state = jax.tree.map(lambda x: jnp.broadcast_to(x, chain_ids.shape), params0)

        def draw_all(t):
            gkeys = jax.vmap(generation_key, in_axes=(0, None))(keys, t)
            return jax.vmap(draw)(gkeys)

        def body(carry, t):
            state, z = carry
            return (jax.vmap(fit)(state, z), draw_all(t + 1)), None

        ts = jnp.arange(1, g + 1, dtype=jnp.int32)
        (state, _), _ = jax.lax.scan(body, (state, draw_all(jnp.int32(1))), ts)
        return state

    return run
