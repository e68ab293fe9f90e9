"""Static or traced settings: the family builders take either.

A builder such as :func:`sim.families.categorical.categorical_family` closes
over continuous settings (a temperature, a smoothing, a ridge penalty) that
may be Python numbers, known when the program is traced, or JAX values (a
per-lane scalar under ``vmap`` in a parameter sweep). With a Python number a
builder may take a shortcut (skip a temperature of exactly 1.0, skip noise of
exactly 0); with anything else it takes the general path, branch-free.
"""

from __future__ import annotations

import numbers

import numpy as np


def is_static(x) -> bool:
    """True for a Python or NumPy number (a 0-d NumPy array too); False for JAX values."""
    if isinstance(x, (numbers.Number, np.number, np.bool_)):
        return True
    return isinstance(x, np.ndarray) and x.ndim == 0


def is_static_equal(x, value) -> bool:
    """True only if ``x`` is a static number (:func:`is_static`) equal to ``value``."""
    return is_static(x) and bool(x == value)


def label(x) -> str:
    """``f"{x:g}"`` for a static number, ``"traced"`` for a JAX value (family names)."""
    return f"{float(x):g}" if is_static(x) else "traced"
