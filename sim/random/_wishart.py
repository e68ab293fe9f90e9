r"""Wishart draws by the Bartlett decomposition, kept as a triangular factor.

For :math:`S \sim \mathrm{Wishart}_d(\nu, I)` (the scatter matrix
:math:`\sum_i (z_i - \bar z)(z_i - \bar z)^T` of :math:`M = \nu + 1` standard
normal points in :math:`d` dimensions), Bartlett (1933):

.. math::
    S = A A^T, \qquad A_{ii} = \sqrt{\chi^2_{\nu - i + 1}}\ (i = 1..d), \qquad
    A_{ij} \sim N(0, 1)\ (i > j), \qquad A_{ij} = 0\ (i < j),

all independent. So :math:`\log\det S = \sum_i \log\chi^2_{\nu-i+1}`, drawn
here directly in logs (:func:`sim.random.log_gamma`), and the factor costs
O(d^2) draws whatever :math:`\nu`.

References:
  M. S. Bartlett (1933). On the theory of statistical regression. Proc. Roy.
  Soc. Edinburgh 53, 260-283. Anderson (2003), *An Introduction to Multivariate
  Statistical Analysis*, 3rd ed., Theorem 7.2.3.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sim.random._gamma import log_gamma


class BartlettFactor(NamedTuple):
    r"""A Wishart draw :math:`S = A A^T` as its Bartlett factor."""

    lower: jax.Array  # shape=(d, d), lower-triangular A, diagonal exp(log_diag)
    log_diag: jax.Array  # shape=(d,), log A_ii = log(chi2_{df-i+1}) / 2 (-inf where df-i+1 <= 0)


def bartlett(key, df, dim: int, dtype=jnp.float32) -> BartlettFactor:
    r"""One draw of the Bartlett factor of :math:`\mathrm{Wishart}_{d}(\text{df}, I)`.

    Args:
      key: a PRNG key (one chain's).
      df: degrees of freedom :math:`\nu` (``M - 1`` for the scatter of M
        points): a Python number ``>= dim``, or a traced scalar (a sample-size
        schedule); where ``df - i + 1 <= 0`` (a singular scatter) the diagonal
        entry is 0 and its log ``-inf``.
      dim: d, static.
      dtype: float32 or float64.

    Returns:
      A :class:`BartlettFactor`; ``lower @ lower.T`` has the Wishart law.

    Example:
      >>> import jax
      >>> a = bartlett(jax.random.key(0), 19, 3)
      >>> a.lower.shape
      (3, 3)
    """
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"dim={dim!r} must be a Python integer >= 1")
    dim = int(dim)
    static = isinstance(df, (int, float, np.number))
    if static and not df >= dim:
        raise ValueError(f"df={df} must be >= dim={dim} (the scatter is singular otherwise)")
    dfs = jnp.asarray(df, dtype) - jnp.arange(dim, dtype=dtype)  # nu - i + 1, i = 1..d
    ok = dfs > 0
    shapes = 0.5 * jnp.where(ok, dfs, 1.0)
    min_shape = 0.5 * (float(df) - dim + 1) if static else 0.5
    keys = jax.vmap(lambda j: jax.random.fold_in(jax.random.fold_in(key, 0), j))(jnp.arange(dim))
    log_g = jax.vmap(lambda k, a: log_gamma(k, a, dtype, min_shape=min_shape))(keys, shapes)
    log_diag = jnp.where(ok, 0.5 * (log_g + np.asarray(math.log(2.0), dtype)), -jnp.inf)
    normals = jax.random.normal(jax.random.fold_in(key, 1), (dim, dim), dtype)
    lower = jnp.tril(normals, -1) + jnp.diag(jnp.exp(log_diag))
    return BartlettFactor(lower, log_diag)
