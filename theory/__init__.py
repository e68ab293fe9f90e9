"""Closed-form theory of model collapse (exact results and approximations).

Submodules:
    gaussian: the recursively refitted 1-D Gaussian (THEORY.md G1-G10).
    categorical: the recursively refitted categorical distribution, i.e. the
        neutral Wright-Fisher model (THEORY.md D1-D5), plus the
        infinite-sample drift under temperature / top-k / top-p sampling.
"""

from theory import categorical, gaussian

__all__ = ["categorical", "gaussian"]
