"""Float64 answers from the closed forms whatever ``jax_enable_x64`` says.

JAX computes in float32 unless ``jax_enable_x64`` is set, and a paper's script
that calls ``theory.gaussian.expected_std(60, 17, estimator="mle")`` in a plain
Python session would silently get a float32 answer (5e-5 relative error there).
Every public function of the ``theory`` modules is wrapped by
:func:`in_float64`, which behaves as follows.

* x64 already on (``jax.config.update("jax_enable_x64", True)``, the tests, the
  experiments): the function runs as written; nothing changes.
* x64 off and every argument concrete (Python numbers, lists, NumPy arrays,
  concrete JAX arrays): the function runs inside ``jax.enable_x64(True)`` (a
  thread-local context manager) and ``jax.ensure_compile_time_eval()`` (so
  that, even when the call sits inside a user's ``jax.jit``, it is evaluated
  now on these concrete values instead of being staged into the user's float32
  program), and its outputs come back as NumPy arrays. The numbers are exactly
  those of an x64 session. NumPy rather than JAX arrays: a float64 JAX array
  outside x64 mode is truncated to float32 by the next ``jnp`` operation, a
  NumPy array keeps its precision in NumPy, SciPy and matplotlib. The dtype
  rule is the x64 one: the promotion of the inputs with Python ``float``, so
  Python numbers, lists, integer arrays and float64 NumPy arrays give float64,
  while an explicitly float32 array (including a ``jnp`` array made without
  x64, which is float32) gives float32.
* x64 off and some argument traced (the call is inside the user's
  ``jax.jit`` / ``jax.grad`` / ``jax.vmap`` with a traced argument): the
  function is traced as written, in the tracer's dtype (float32), and returns
  tracers: it stays usable under ``jit``, ``grad`` and ``vmap``, with float32
  accuracy. For float64 under a transformation, enable x64 in the program.

Calls between theory functions (one public function calling another) run in
the caller's mode: only the outermost call switches.
"""

from __future__ import annotations

import functools
import threading

import jax
import numpy as np

__all__ = ["in_float64", "has_tracer"]

_STATE = threading.local()


def has_tracer(*trees) -> bool:
    """True when any leaf of the given pytrees is a JAX tracer."""
    for tree in trees:
        for leaf in jax.tree_util.tree_leaves(tree):
            if isinstance(leaf, jax.core.Tracer):
                return True
    return False


def _to_numpy(x):
    return np.asarray(x) if isinstance(x, jax.Array) else x


def in_float64(fn):
    """Wrap a public closed form so that concrete calls compute in float64 (module docstring)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if getattr(_STATE, "depth", 0):  # called from another theory function
            return fn(*args, **kwargs)
        _STATE.depth = 1
        try:
            if jax.config.jax_enable_x64 or has_tracer(args, kwargs):
                return fn(*args, **kwargs)
            with jax.enable_x64(True), jax.ensure_compile_time_eval():
                out = fn(*args, **kwargs)
                return jax.tree_util.tree_map(_to_numpy, out)
        finally:
            _STATE.depth = 0

    return wrapper
