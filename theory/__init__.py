"""Closed-form theory of model collapse (exact results and approximations).

Submodules:
    gaussian: the recursively refitted 1-D Gaussian (THEORY.md G1-G10).
"""

from theory import gaussian

__all__ = ["gaussian"]
