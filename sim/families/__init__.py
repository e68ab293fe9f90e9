"""Model families, one folder each, and the registry of their specs.

Each family is a subpackage ``sim/families/<name>/`` holding the family
(``fit``, ``sample``, ``DataOps``), its record, its verifiers and its
:class:`~sim.spec.FamilySpec`; its ``__init__`` imports the spec module, which
calls :func:`register`. The registry finds the subpackages itself, so adding
a family is adding its folder:

>>> from sim import families
>>> sorted(families.names())  # doctest: +SKIP
['categorical', 'gaussian', 'poisson', 'regression']
>>> spec = families.get("gaussian")
"""

from __future__ import annotations

import importlib
import pkgutil

from sim.families.base import DataOps, Family

_SPECS: dict = {}
_DISCOVERED = False


def register(spec):
    """Adds a :class:`~sim.spec.FamilySpec` to the registry (one name, one spec)."""
    old = _SPECS.get(spec.name)
    if old is not None and old is not spec:
        raise ValueError(f"a family named {spec.name!r} is already registered")
    _SPECS[spec.name] = spec
    return spec


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    for info in pkgutil.iter_modules(__path__):
        if info.ispkg:
            importlib.import_module(f"{__name__}.{info.name}")


def names() -> list[str]:
    """The registered families' names."""
    _discover()
    return sorted(_SPECS)


def get(name):
    """The spec registered as ``name`` (a spec is returned as it is)."""
    if not isinstance(name, str):
        return name
    _discover()
    if name not in _SPECS:
        raise ValueError(f"family={name!r} is not one of {sorted(_SPECS)}")
    return _SPECS[name]


def specs() -> dict:
    """``{name: spec}`` of every registered family."""
    _discover()
    return dict(_SPECS)


__all__ = ["DataOps", "Family", "get", "names", "register", "specs"]
