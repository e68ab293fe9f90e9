"""What a regression chain records per generation: see :class:`RegressionRecord`."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sim._reduce import pairwise_sum
from sim._validate import check_float


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
