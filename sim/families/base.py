"""The model-family abstraction shared by every family.

A family is a pair of pure functions closed over static settings, in the
shape of optax's ``GradientTransformation``:

* ``fit(key, data) -> params`` fits a model to one training set (the key is
  unused by closed-form fits but keeps stochastic fits, e.g. EM or SGD,
  in the same signature);
* ``sample(key, params, n) -> data`` draws ``n`` (a static Python int)
  training points from a fitted model.

Both are written for a single chain; the engine batches them with ``vmap``.
Nothing here holds arrays or state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

Params = Any
Data = Any


class Family(NamedTuple):
    """A model family: pure ``fit`` and ``sample`` functions.

    Attributes:
      fit: ``(key, data) -> params``.
      sample: ``(key, params, n) -> data`` with ``n`` static.
      name: a short label used in reports and manifests.
    """

    fit: Callable[[Any, Data], Params]
    sample: Callable[[Any, Params, int], Data]
    name: str = "family"
