r"""What a Gaussian-mixture chain records per generation.

Components are sorted by the first coordinate of their means before they are
recorded, so that "component 0" is the left-most one in every chain and at
every generation (EM's labels are arbitrary; the warm start keeps them from one
generation to the next, but two components may pass each other).

* ``l2_distance`` :math:`\|f_n - f_0\|_2` between the fitted and the real
  mixture density, in closed form (:func:`~sim.families.gmm.family.l2_distance`);
* ``weights`` (K,), ``means`` (K, d), ``variances`` (K, d) (the diagonals of
  the covariances), sorted as above;
* ``lost``: 1.0 if the smallest weight is below ``lost_weight``, else 0.0
  (its mean over chains: the fraction of chains that have lost a component);
* the whole mixture's mean :math:`\bar\mu = \sum_k \pi_k\mu_k` and covariance
  :math:`\Sigma_{tot} = \sum_k \pi_k \Sigma_k + \sum_k \pi_k (\mu_k - \bar\mu)(\mu_k - \bar\mu)^T`:
  ``log_det_cov`` :math:`\log\det\Sigma_{tot}` (with K = 1,
  :math:`\log\det\Sigma_n`: THEORY.md W2, G3 at d = 1), ``trace_cov``
  :math:`\operatorname{tr}\Sigma_{tot}` and ``mean_sq_error``
  :math:`\|\bar\mu - \bar\mu_0\|^2`. After any M-step (whatever K, and
  whether or not EM has converged) :math:`\bar\mu` and :math:`\Sigma_{tot}` are
  the sample mean and the MLE (divide-by-M) covariance of the training points,
  because :math:`\sum_k r_{ik} = 1` and :math:`\sum_i r_{ik}(x_i - \mu_k) = 0`;
  so unless a floor fires, :math:`E[\Sigma_{tot,n}] = ((M-1)/M)^n \Sigma_{tot,0}`
  and :math:`E\|\bar\mu_n - \bar\mu_0\|^2 = (\operatorname{tr}\Sigma_{tot,0}/M)
  \sum_{t<n} ((M-1)/M)^t` for any K (THEORY.md W1, which needs only the first
  two moments of the sampled law); the spec's theory columns.
* the fit's diagnostics (:class:`~sim.families.gmm.family.GmmInfo`; 0 at
  generation 0): ``em_iterations``, ``log_likelihood`` (mean per point), ``ll_change`` (its
  change in the last iteration: below ``tol`` unless the budget ran out),
  ``weight_floored`` and ``cov_floored`` (components at each floor);
* ``train_size`` under a regime (the points of the fit's training set).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from sim._validate import check_float
from sim.families.gmm.family import GmmInfo, GmmParams, l2_distance, real_params


class GmmRecord(NamedTuple):
    """Per-chain, per-generation summaries of a mixture chain (all float)."""

    l2_distance: jax.Array  # shape=(), ||f_n - f_0||_2
    weights: jax.Array  # shape=(K,), sorted by mean
    means: jax.Array  # shape=(K, d), sorted by mean
    variances: jax.Array  # shape=(K, d), diagonal of Sigma_k, sorted by mean
    lost: jax.Array  # shape=(), 1.0 if min weight < lost_weight
    log_det_cov: jax.Array  # shape=(), log det of the mixture's covariance
    trace_cov: jax.Array  # shape=(), its trace
    mean_sq_error: jax.Array  # shape=(), ||mixture mean - real mixture mean||^2
    em_iterations: jax.Array  # shape=()
    log_likelihood: jax.Array  # shape=(), mean per training point
    ll_change: jax.Array  # shape=(), the last EM iteration's change of log_likelihood
    weight_floored: jax.Array  # shape=()
    cov_floored: jax.Array  # shape=()


class GmmRegimeRecord(NamedTuple):
    """:class:`GmmRecord` and the training set's size (under a regime)."""

    l2_distance: jax.Array
    weights: jax.Array
    means: jax.Array
    variances: jax.Array
    lost: jax.Array
    log_det_cov: jax.Array
    trace_cov: jax.Array
    mean_sq_error: jax.Array
    em_iterations: jax.Array
    log_likelihood: jax.Array
    ll_change: jax.Array
    weight_floored: jax.Array
    cov_floored: jax.Array
    train_size: jax.Array


def mixture_moments(params: GmmParams):
    """The mixture's mean and covariance (the between-component part formed from the
    deviations, no cancellation: K = 1 gives its covariance exactly)."""
    w = params.weights
    mbar = jnp.einsum("k,kd->d", w, params.means)
    dev = params.means - mbar
    cov = jnp.einsum("k,kij->ij", w, params.covs) + jnp.einsum("k,ki,kj->ij", w, dev, dev)
    return mbar, cov


@functools.cache
def gmm_record(components: int, dim: int, separation: float, lost_weight: float):
    """Builds ``record(params, info) -> GmmRecord`` against the real mixture (cached)."""
    lost_weight = check_float(lost_weight, "lost_weight", positive=True)

    def record(params: GmmParams, info: GmmInfo) -> GmmRecord:
        dtype = params.weights.dtype
        real = real_params(components, dim, separation, dtype)
        order = jnp.argsort(params.means[:, 0])
        w, mu = params.weights[order], params.means[order]
        var = jnp.diagonal(params.covs, axis1=-2, axis2=-1)[order]
        mbar, cov = mixture_moments(params)
        mbar0, _ = mixture_moments(real)
        return GmmRecord(
            l2_distance(params, real),
            w,
            mu,
            var,
            (jnp.min(w) < lost_weight).astype(dtype),
            jnp.linalg.slogdet(cov)[1],
            jnp.trace(cov),
            jnp.sum(jnp.square(mbar - mbar0)),
            jnp.asarray(info.iterations).astype(dtype),
            jnp.asarray(info.log_likelihood).astype(dtype),
            jnp.asarray(info.ll_change).astype(dtype),
            jnp.asarray(info.weight_floored).astype(dtype),
            jnp.asarray(info.cov_floored).astype(dtype),
        )

    return record


@functools.cache
def regime_chain_record(record):
    """``record(state, info)`` under a regime: the fit's info is ``info.fit``."""

    def rec(state, info):
        r = record(state.params, info.fit)
        return GmmRegimeRecord(*r, jnp.asarray(info.train_size).astype(r[0].dtype))

    return rec
