"""Model families: one module per family, each a factory returning a Family."""

from sim.families.base import Family
from sim.families.gaussian import GaussianParams, StandardizedSample, gaussian

__all__ = ["Family", "GaussianParams", "StandardizedSample", "gaussian"]
