"""The simulation engine: model families, chain steps, the parallel runner.

Imports of ``sim`` never import ``experiments``; ``theory`` never imports ``sim``.
"""

from sim import _compat  # noqa: F401  (registers JAX work-arounds first)
