"""The Poisson family: the family, its record and its spec."""

from sim.families.poisson.family import (
    PoissonParams,
    PoissonStats,
    count_stats,
    empty_stats,
    fit_stats,
    merge_stats,
    poisson,
    real_params,
    sample,
    sample_stats,
)
from sim.families.poisson.record import PoissonRecord, poisson_record
from sim.families.poisson.spec import SPEC  # noqa: E402  (registers the family)

__all__ = [
    "SPEC",
    "PoissonParams",
    "PoissonRecord",
    "PoissonStats",
    "count_stats",
    "empty_stats",
    "fit_stats",
    "merge_stats",
    "poisson",
    "poisson_record",
    "real_params",
    "sample",
    "sample_stats",
]
