"""The Gaussian kernel density estimate family: the family, its record and its spec."""

from sim.families.kde.family import (
    RULE_FACTORS,
    RULES,
    KDEParams,
    KDEStats,
    empty_stats,
    kde,
    kde_family,
    merge_stats,
    point_mean_var,
    real_params,
    sample,
)
from sim.families.kde.record import HELDOUT_SEED, KDERecord, heldout_sample, kde_record
from sim.families.kde.spec import SPEC  # noqa: E402  (registers the family)

__all__ = [
    "HELDOUT_SEED",
    "RULES",
    "RULE_FACTORS",
    "SPEC",
    "KDEParams",
    "KDERecord",
    "KDEStats",
    "empty_stats",
    "heldout_sample",
    "kde",
    "kde_family",
    "kde_record",
    "merge_stats",
    "point_mean_var",
    "real_params",
    "sample",
]
