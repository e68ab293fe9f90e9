"""The linear-regression family: the family, its record and its spec."""

from sim.families.regression.family import (
    DESIGNS,
    RegressionData,
    RegressionStats,
    check_sizes,
    empty_stats,
    family_design,
    merge_stats,
    min_norm_solve,
    point_stats,
    regression,
    regression_family,
    regression_stats,
)
from sim.families.regression.record import RegressionRecord, regression_record
from sim.families.regression.spec import (  # noqa: E402  (registers the family)
    SPEC,
    check_w_star,
    default_w_star,
)

__all__ = [
    "DESIGNS",
    "SPEC",
    "RegressionData",
    "RegressionRecord",
    "RegressionStats",
    "check_sizes",
    "check_w_star",
    "default_w_star",
    "empty_stats",
    "family_design",
    "merge_stats",
    "min_norm_solve",
    "point_stats",
    "regression",
    "regression_family",
    "regression_record",
    "regression_stats",
]
