r"""What a Bayesian chain records per generation: posterior moments of the fitted NIG.

* ``mean``: the posterior mean :math:`\mu_n` of :math:`\mu`;
* ``var_mean``: the posterior mean of :math:`\sigma^2`, :math:`\beta_n/(\alpha_n-1)`
  (the real variance at generation 0), and ``log_var_mean`` its logarithm;
* ``pred_var``: the variance of the one-point predictive,
  :math:`(1 + 1/\kappa_n)\beta_n/(\alpha_n-1)`;
* ``error_sq``: :math:`(\mu_n - m)^2` for the real mean :math:`m`.

A NUTS fit (:class:`~sim.families.bayes.nuts.NutsParams`) records the same fields
from its draws' averages (``pred_var`` = E[sigma^2] + Var(mu)).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from sim._validate import check_float
from sim.families.bayes.family import BayesParams, posterior_moments
from sim.families.bayes.nuts import NutsParams


class BayesRecord(NamedTuple):
    """Per-chain, per-generation summaries of a Bayesian chain (all float)."""

    mean: jax.Array  # shape=(), posterior mean of mu
    var_mean: jax.Array  # shape=(), posterior mean of sigma^2
    log_var_mean: jax.Array  # shape=(), its log
    pred_var: jax.Array  # shape=(), variance of the one-point predictive
    error_sq: jax.Array  # shape=(), (mean - real_mean)^2


@functools.cache
def bayes_record(real_mean: float = 0.0):
    """Builds ``record(params) -> BayesRecord`` for the real mean ``real_mean`` (cached)."""
    real_mean = check_float(real_mean, "real_mean")

    def record(params: BayesParams) -> BayesRecord:
        if isinstance(params, NutsParams):
            var_mean = params.var_mean
            log_var_mean, pred_var = jnp.log(var_mean), var_mean + params.mean_var
        else:
            var_mean, log_var_mean, pred_var = posterior_moments(params)
        return BayesRecord(
            params.mean, var_mean, log_var_mean, pred_var, jnp.square(params.mean - real_mean)
        )

    return record
