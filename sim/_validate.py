"""Input checks shared by the engine: fail early, name the bad value."""

from __future__ import annotations

import math
from collections.abc import Iterable

ESTIMATORS = ("mle", "unbiased")


def check_estimator(estimator: str, name: str = "estimator") -> str:
    if estimator not in ESTIMATORS:
        raise ValueError(f"{name}={estimator!r} is not one of {ESTIMATORS}")
    return estimator


def check_int(value, name: str, minimum: int) -> int:
    """A Python integer >= minimum (bools and non-integral floats refused)."""
    if isinstance(value, bool) or not float(value).is_integer():
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name}={value} must be an integer >= {minimum}")
    return value


def check_float(value, name: str, *, positive: bool = False, nonnegative: bool = False) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}={value} must be finite")
    if positive and value <= 0:
        raise ValueError(f"{name}={value} must be > 0")
    if nonnegative and value < 0:
        raise ValueError(f"{name}={value} must be >= 0")
    return value


def check_generations(values: Iterable[int], num_generations: int, name: str) -> tuple[int, ...]:
    out = sorted({check_int(v, name, 0) for v in values})
    for v in out:
        if v > num_generations:
            raise ValueError(f"{name} contains {v} > num_generations={num_generations}")
    return tuple(out)
