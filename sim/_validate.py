"""Input checks shared by the engine: fail early, name the bad value."""

from __future__ import annotations

import math
from collections.abc import Iterable

ESTIMATORS = ("mle", "unbiased")


def check_estimator(estimator: str, name: str = "estimator") -> str:
    if estimator not in ESTIMATORS:
        raise ValueError(f"{name}={estimator!r} is not one of {ESTIMATORS}")
    return estimator


# Counts the engine indexes with int32 (chains, generations, samples).
MAX_COUNT = 2**31 - 1


def check_int(value, name: str, minimum: int, maximum: int = MAX_COUNT) -> int:
    """A Python integer in ``[minimum, maximum]``.

    Integers, NumPy integers and integral floats are accepted; bools, strings,
    non-integral or non-finite numbers and values out of range are refused with
    a message naming the value (counts are int32 inside the engine).
    """
    ok = not isinstance(value, (bool, str, bytes))
    try:
        ok = ok and float(value).is_integer()
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name}={value} must be an integer >= {minimum}")
    if value > maximum:
        raise ValueError(f"{name}={value} must be at most {maximum}")
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
