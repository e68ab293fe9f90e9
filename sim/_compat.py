"""Work-arounds for known JAX issues, applied once when ``sim`` is imported.

philox4x32 under sharding. ``jax.random`` with ``impl="philox4x32"`` uses the
``mulhi`` primitive, lowered to ``chlo.mulhi`` on recent jaxlibs. Any program
with sharding annotations (``jit`` with shardings, ``shard_map``) then fails
with "INTERNAL: Unable to convert MHLO to StableHLO" (seen on jax 0.10.2, CPU,
forced host devices). JAX keeps a pure-HLO lowering of the same integer
function (``lax._mulhi_impl``: widen, multiply, shift) for older jaxlibs; we
register it. ``mulhi`` is exact integer arithmetic, so the random bits are
unchanged (``tests/test_engine.py::test_mulhi_fallback_keeps_philox_bits`` checks them
against the native lowering);
single-device speed was unchanged within noise (217 vs 230 M normals/s).
"""

from __future__ import annotations


def _register_mulhi_fallback() -> bool:
    try:
        from jax._src.interpreters import mlir
        from jax._src.lax import lax as _lax

        impl = _lax._mulhi_impl
        prim = _lax.mulhi_p
    except (ImportError, AttributeError):  # older or newer JAX: leave it alone
        return False
    mlir.register_lowering(prim, mlir.lower_fun(impl, multiple_results=False))
    return True


MULHI_FALLBACK = _register_mulhi_fallback()
