"""The simulation engine: model families, chain steps, the parallel runner.

Imports of ``sim`` never import ``experiments``; ``theory`` never imports ``sim``.
"""

__version__ = "0.1.0"  # the package version (setup.cfg reads it)

from sim import _compat  # noqa: F401  (registers JAX work-arounds first)
