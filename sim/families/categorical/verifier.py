"""Verifiers for tokens: which synthetic tokens a filter keeps (:mod:`sim.regimes`)."""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

from sim._validate import check_float
from sim.regimes import Verifier


@functools.cache
def _likely(vocabulary, min_prob: float):
    table = np.asarray(vocabulary.probs) >= min_prob
    return lambda i: jnp.asarray(table)[i]


def categorical_verifier(
    vocabulary, min_prob: float, *, accept_good: float = 1.0, accept_bad: float = 0.0
) -> Verifier:
    """A likelihood-threshold verifier for tokens: good iff p0(token) >= ``min_prob``."""
    min_prob = check_float(min_prob, "min_prob", nonnegative=True)
    good = _likely(vocabulary, min_prob)
    return Verifier(good, accept_good, accept_bad, f"p0>={min_prob:g}")
