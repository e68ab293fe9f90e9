"""Input checks shared by the ``theory`` modules, and the one argument rule.

The argument rule (every public function of every ``theory`` module, applied
by the :func:`closed_form` decorator before the function runs):

* Numeric arguments may be Python numbers, lists or tuples of numbers (nested
  to any depth, rectangular), NumPy arrays and scalars, or JAX arrays (traced or
  concrete). Lists and tuples are converted with ``np.asarray``. Booleans,
  complex numbers, strings, ``None`` where a number is required, ragged lists
  and other objects are refused.
* Integer-valued arguments (``n``, ``sample_size``, ``dim``, ``count`` ...)
  must hold integer values (``10`` and ``10.0`` are accepted, ``2.5`` is
  refused by name) of magnitude at most ``2**53``, the range in which float64
  represents every integer exactly; a larger Python int (``10**20``) is
  refused with its value. A real-valued argument given as a Python int beyond
  the int64 range is converted to a Python float (refused if it overflows).
* Arguments whose shapes must broadcast together (the function's Returns
  section says which) are checked first: a mismatch is one ``ValueError``
  naming the argument, its shape and the shape of the arguments before it.
* Every refusal is a ``ValueError`` whose one-line message names the argument
  and the first offending value: ``"<name> must <requirement>; got <value>"``.

Every value check looks at *concrete* values only: when a value is a JAX tracer
(the function is being traced by ``jax.jit``, ``jax.grad`` or ``jax.vmap``) the
check is skipped silently, so the checks cost nothing inside compiled code
(shapes are static and are still checked). A bad input therefore never turns
into a silent NaN or a deep JAX error.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from theory import _precision

__all__ = [
    "INT_LIMIT",
    "closed_form",
    "as_numeric",
    "check_broadcast",
    "result_dtype",
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
    "check_at_most",
    "check_unit_interval",
    "check_half_open_unit",
    "check_probability_vector",
]


INT_LIMIT = 2**53  # largest magnitude of an integer-valued argument (exact in float64)


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


def _not_integer(a: np.ndarray) -> np.ndarray:
    """Mask of values that are not finite integers of magnitude <= INT_LIMIT."""
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(a) | (a != np.round(a)) | (np.abs(a) > INT_LIMIT)


def check_sample_size(sample_size, name: str = "sample_size") -> None:
    """Raise unless every sample size is an integer value >= 2 (at most 2**53)."""
    arr = _as_array(name, sample_size)
    if arr is None:
        return
    a = arr.astype(np.float64)
    with np.errstate(invalid="ignore"):
        bad = _not_integer(a) | ~(a >= 2)
    _raise_first(name, arr, bad, "an integer >= 2")


def check_n(n, name: str = "n") -> None:
    """Raise unless every generation count is a non-negative integer value (at most 2**53)."""
    arr = _as_array(name, n)
    if arr is None:
        return
    a = arr.astype(np.float64)
    with np.errstate(invalid="ignore"):
        bad = _not_integer(a) | (a < 0)
    _raise_first(name, arr, bad, "a non-negative integer (number of fits) at most 2**53")


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
        bad = _not_integer(a) | (a < minimum)
    _raise_first(name, arr, bad, f"an integer >= {minimum} (at most 2**53)")


def check_at_most(name: str, x, limit: int, why: str = "") -> None:
    """Raise unless every value is <= ``limit`` (e.g. a loop length that must fit int32)."""
    arr = _as_array(name, x)
    if arr is None:
        return
    a = arr.astype(np.float64)
    with np.errstate(invalid="ignore"):
        bad = a > limit
    _raise_first(name, arr, bad, f"at most {limit}" + (f" {why}" if why else ""))


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


# ---------------------------------------------------------------------------
# The argument rule: conversion, broadcasting, and the public-function wrapper.
# ---------------------------------------------------------------------------


def _refuse(name: str, requirement: str, value: str):
    raise ValueError(f"{name} must be {requirement}; got {value}")


def _check_object_array(name: str, arr: np.ndarray, integer: bool) -> np.ndarray:
    """An object array (Python ints beyond int64, or non-numbers): convert or refuse."""
    for v in arr.reshape(-1):
        if isinstance(v, (bool, np.bool_)):
            _refuse(name, "numeric (not boolean)", repr(v))
        if isinstance(v, (int, np.integer)):
            if integer and abs(int(v)) > INT_LIMIT:
                _refuse(name, f"an integer of magnitude at most 2**53 = {INT_LIMIT}", str(int(v)))
        elif not isinstance(v, (float, np.floating)):
            _refuse(name, "numeric", repr(v))
    try:
        return arr.astype(np.float64)
    except OverflowError:
        big = next(v for v in arr.reshape(-1) if isinstance(v, int) and abs(v) > 2**1023)
        _refuse(name, "a finite number", str(big))


def as_numeric(name: str, x, integer: bool = False):
    """Apply the argument rule to one numeric argument; return the value to compute with.

    Python numbers, NumPy and JAX values are returned as given (so Python
    scalars keep JAX's weak typing); lists and tuples come back as NumPy
    arrays (or JAX arrays when they hold tracers). ``None`` is returned as is:
    the function decides whether it is allowed.
    """
    if x is None or isinstance(x, jax.core.Tracer):
        return x
    if isinstance(x, (bool, np.bool_)):
        _refuse(name, "numeric (not boolean)", repr(x))
    if isinstance(x, int):
        if integer and abs(x) > INT_LIMIT:
            _refuse(name, f"an integer of magnitude at most 2**53 = {INT_LIMIT}", str(x))
        if not -(2**63) <= x < 2**63:
            try:
                return float(x)
            except OverflowError:
                _refuse(name, "a finite number", str(x))
        return x
    if isinstance(x, float):
        return x
    if isinstance(x, jax.Array):
        arr = x
    elif isinstance(x, (list, tuple)):
        if _precision.has_tracer(x):
            return jnp.asarray(x)
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError):
            _refuse(name, "a number or a rectangular array of numbers", _short(x))
    elif isinstance(x, (np.ndarray, np.generic)):
        arr = x
    else:
        _refuse(name, "numeric", _short(x))
    kind = np.dtype(arr.dtype).kind
    if kind == "O":
        return _check_object_array(name, np.asarray(arr), integer)
    if kind == "b":
        _refuse(name, "numeric (not boolean)", f"an array of dtype {arr.dtype}")
    if kind == "c":
        first = np.asarray(arr).reshape(-1)
        _refuse(name, "real", repr(complex(first[0])) if first.size else f"dtype {arr.dtype}")
    if kind not in "iuf":
        _refuse(name, "numeric", _short(x))
    if integer and kind in "iu" and not isinstance(arr, jax.core.Tracer):
        a = np.asarray(arr)
        big = np.abs(a.astype(np.float64)) > INT_LIMIT
        if np.any(big):
            _refuse(name, f"an integer of magnitude at most 2**53 = {INT_LIMIT}", str(a[big][0]))
    return arr


def _short(x) -> str:
    text = repr(x)
    return text if len(text) <= 80 else text[:77] + "..."


def _shape(x) -> tuple:
    return tuple(getattr(x, "shape", np.shape(x)))


def check_broadcast(*items) -> None:
    """Raise unless the shapes broadcast; ``items`` are ``(label, value, core)`` triples.

    ``core`` trailing axes of a value (categories, a spectrum, a schedule) are
    not broadcast; values of lower rank than ``core`` and ``None`` are skipped
    (the function's own check reports them). The message names the first
    argument that does not broadcast with those before it, and both shapes.
    """
    acc: tuple = ()
    names: list[str] = []
    for label, value, core in items:
        if value is None:
            continue
        shape = _shape(value)
        if len(shape) < core:
            continue
        batch = shape[: len(shape) - core]
        try:
            new = np.broadcast_shapes(acc, batch)
        except ValueError:
            what = f"leading axes (all but the last {core})" if core else "a shape"
            raise ValueError(
                f"{label} must have {what} broadcasting with {' and '.join(names)} "
                f"(broadcast shape {acc}); got shape {shape}"
            ) from None
        acc = new
        names.append(label)


def result_dtype(*xs):
    """JAX's promotion of the inputs with Python ``float`` (lists and tuples via NumPy)."""
    scalars = (jax.Array, np.ndarray, np.generic, int, float, bool)
    return jnp.result_type(float, *(x if isinstance(x, scalars) else np.asarray(x) for x in xs))


def closed_form(*, integers: Sequence[str] = (), reals: Sequence[str] = (), broadcast=()):
    """Decorator for a public theory function: the argument rule, then float64 (``_precision``).

    Args:
        integers: names of integer-valued numeric arguments.
        reals: names of real-valued numeric arguments.
        broadcast: groups of arguments whose shapes must broadcast together;
            each entry a name, or ``(name, core)`` with ``core`` trailing axes
            that do not take part (e.g. ``("p", 1)`` for categories).
    """
    groups = [[(g, 0) if isinstance(g, str) else tuple(g) for g in group] for group in broadcast]

    def deco(fn):
        sig = inspect.signature(fn)
        for name in (*integers, *reals):
            if name not in sig.parameters:
                raise TypeError(f"{fn.__name__} has no argument {name!r}")
        body = _precision.in_float64(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            bound = sig.bind(*args, **kwargs)
            values = bound.arguments
            for name in integers:
                if name in values:
                    values[name] = as_numeric(name, values[name], integer=True)
            for name in reals:
                if name in values:
                    values[name] = as_numeric(name, values[name])
            for group in groups:
                check_broadcast(*((n, values.get(n), core) for n, core in group))
            return body(*bound.args, **bound.kwargs)

        wrapper.__signature__ = sig
        wrapper.theory_arguments = {
            "integers": tuple(integers),
            "reals": tuple(reals),
            "broadcast": tuple(tuple(g) for g in groups),
        }
        return wrapper

    return deco
