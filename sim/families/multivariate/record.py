r"""What a multivariate Gaussian chain records per generation (real distribution N(0, I_d)).

With :math:`\Sigma_n = e^{\text{log\_det}/d} L L^T` and :math:`s_i` the
singular values of :math:`e^{\text{log\_det}/(2d)} L` (so :math:`s_i^2` are
the eigenvalues of :math:`\Sigma_n` and :math:`s_i` those of
:math:`\Sigma_n^{1/2}`):

* ``log_det`` :math:`\log\det\Sigma_n` (THEORY.md W2);
* ``trace`` :math:`\operatorname{tr}\Sigma_n` (W1);
* ``mean_sq_error`` :math:`\|\mu_n - \mu_0\|^2` (W1), :math:`\mu_0 = 0`;
* ``eigenvalues`` of :math:`\Sigma_n`, ascending, shape ``(d,)``;
* ``w2_squared`` :math:`W_2^2(N(\mu_n, \Sigma_n), N(0, I)) = \|\mu_n\|^2 +
  \operatorname{tr}\Sigma_n + d - 2\operatorname{tr}\Sigma_n^{1/2} =
  \|\mu_n\|^2 + \sum_i (s_i - 1)^2` (the sum of squares: no cancellation).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from sim.families.multivariate.family import MultivariateParams


class MultivariateRecord(NamedTuple):
    """Per-chain, per-generation summaries of a multivariate chain (all float)."""

    log_det: jax.Array  # shape=(), log det Sigma_n
    trace: jax.Array  # shape=(), tr Sigma_n
    mean_sq_error: jax.Array  # shape=(), ||mu_n - mu_0||^2
    eigenvalues: jax.Array  # shape=(d,), eigenvalues of Sigma_n, ascending
    w2_squared: jax.Array  # shape=(), W2^2 to N(0, I_d)


def multivariate_record(params: MultivariateParams) -> MultivariateRecord:
    """``record(params) -> MultivariateRecord`` against the real N(0, I_d)."""
    d = params.mean.shape[-1]
    sv = jnp.linalg.svd(params.chol, compute_uv=False)  # descending
    root_eig = jnp.exp(0.5 * params.log_det / d) * sv[::-1]  # of Sigma^{1/2}, ascending
    eig = jnp.square(root_eig)
    mse = jnp.sum(jnp.square(params.mean))
    trace = jnp.exp(params.log_det / d) * jnp.sum(jnp.square(params.chol))
    w2 = mse + jnp.sum(jnp.square(root_eig - 1.0))
    return MultivariateRecord(params.log_det, trace, mse, eig, w2)
