"""Input checks shared by the ``theory`` modules.

Every check looks at *concrete* values only: when a value is a JAX tracer (the
function is being traced by ``jax.jit``, ``jax.grad`` or ``jax.vmap``) the check
is skipped silently, so the checks cost nothing inside compiled code. A failed
check raises ``ValueError`` with a one-line message that names the argument and
the first offending value, so a bad input never turns into a silent NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np

__all__ = [
    "is_concrete",
    "check_choice",
    "check_sample_size",
    "check_n",
    "check_positive",
    "check_nonnegative",
    "check_finite_nonnegative",
    "check_open_unit",
    "check_not_nan",
    "check_integer",
    "check_unit_interval",
    "check_half_open_unit",
    "check_probability_vector",
]


def is_concrete(x) -> bool:
    """True when ``x`` holds values (not a tracer inside jit/grad/vmap)."""
    return not isinstance(x, jax.core.Tracer)


def _format(value, dtype) -> str:
    if np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.bool_):
        return str(int(value))
    return repr(float(value))


def _raise_first(name: str, arr: np.ndarray, bad: np.ndarray, requirement: str) -> None:
    if np.any(bad):
        first = arr[bad].reshape(-1)[0]
        raise ValueError(f"{name} must be {requirement}; got {_format(first, arr.dtype)}")


def _as_array(name: str, x) -> np.ndarray | None:
    if not is_concrete(x):
        return None
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as err:  # e.g. a string where a number belongs
        raise ValueError(f"{name} must be numeric; got {x!r}") from err
    if not (np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)):
        raise ValueError(f"{name} must be numeric; got {x!r}")
    return arr


def check_choice(name: str, value, allowed: Sequence[str]) -> None:
    """Raise unless ``value`` is one of the strings in ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {options}; got {value!r}")


def check_sample_size(sample_size, name: str = "sample_size") -> None:
    """Raise unless every sample size is finite and >= 2."""
    arr = _as_array(name, sample_size)
    if arr is None:
        return
    a = arr.astype(np.float64)
    _raise_first(name, arr, ~np.isfinite(a) | (a < 2), "a finite number >= 2")


def check_n(n, name: str = "n") -> None:
    """Raise unless every generation count is a finite non-negative integer value."""
    arr = _as_array(name, n)
    if arr is None:
        return
    a = arr.astype(np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(a) | (a < 0) | (a != np.round(a))
    _raise_first(name, arr, bad, "a non-negative integer (number of fits)")


def check_positive(name: str, x, allow_inf: bool = False) -> None:
    """Raise unless every value is > 0 (and finite unless ``allow_inf``)."""
    arr = _as_array(name, x)
    if arr is None:
        return
    a = arr.astype(np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~(a > 0) if allow_inf else ~((a > 0) & np.isfinite(a))
    _raise_first(name, arr, bad, "> 0" if allow_inf else "a finite number > 0")


def check_nonnegative(name: str, x) -> None:
    """Raise unless every value is >= 0 (NaN is rejected)."""
    arr = _as_array(name, x)
    if arr is None:
        return
    a = arr.astype(np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~(a >= 0)
    _raise_first(name, arr, bad, ">= 0")


def check_finite_nonnegative(name: str, x) -> None:
    """Raise unless every value is finite and >= 0 (NaN and infinities are rejected)."""
    arr = _as_array(name, x)
    if arr is None:
        return
    a = arr.astype(np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~((a >= 0) & np.isfinite(a))
    _raise_first(name, arr, bad, "a finite number >= 0")


def check_open_unit(name: str, x) -> None:
    """Raise unless every value lies strictly inside (0, 1)."""
    arr = _as_array(name, x)
    if arr is None:
        return
    a = arr.astype(np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~((a > 0) & (a < 1))
    _raise_first(name, arr, bad, "strictly between 0 and 1")


def check_not_nan(name: str, x) -> None:
    """Raise if any value is NaN (infinities are allowed)."""
    arr = _as_array(name, x)
    if arr is None:
        return
    a = arr.astype(np.float64)
    _raise_first(name, arr, np.isnan(a), "a number (not NaN)")


def check_integer(name: str, x, minimum: int) -> None:
    """Raise unless every value is a finite integer value >= ``minimum``."""
    arr = _as_array(name, x)
    if arr is None:
        return
    a = arr.astype(np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(a) | (a < minimum) | (a != np.round(a))
    _raise_first(name, arr, bad, f"an integer >= {minimum}")


def check_unit_interval(name: str, x) -> None:
    """Raise unless every value lies in the closed interval [0, 1] (NaN is rejected)."""
    arr = _as_array(name, x)
    if arr is None:
        return
    a = arr.astype(np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~((a >= 0) & (a <= 1))
    _raise_first(name, arr, bad, "between 0 and 1")


def check_half_open_unit(name: str, x) -> None:
    """Raise unless every value lies in (0, 1]."""
    arr = _as_array(name, x)
    if arr is None:
        return
    a = arr.astype(np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~((a > 0) & (a <= 1))
    _raise_first(name, arr, bad, "in (0, 1]")


def check_probability_vector(name: str, p, tol: float = 1e-6) -> None:
    """Raise unless ``p`` holds probability vectors along its last axis.

    Every entry must be finite and >= 0 and every vector must sum to 1 within
    ``tol`` (relative to 1). A scalar or an empty last axis is rejected.
    """
    arr = _as_array(name, p)
    if arr is None:
        return
    if arr.ndim == 0 or arr.shape[-1] == 0:
        raise ValueError(
            f"{name} must be a probability vector (categories on the last axis); "
            f"got shape {arr.shape}"
        )
    a = arr.astype(np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(a) & (a >= 0))
    _raise_first(name, arr, bad, "a probability vector (entries finite and >= 0)")
    total = a.sum(axis=-1)
    off = np.abs(total - 1.0) > tol
    if np.any(off):
        first = total[off].reshape(-1)[0]
        raise ValueError(
            f"{name} must sum to 1 along its last axis (within {tol:g}); got sum {float(first)!r}"
        )
