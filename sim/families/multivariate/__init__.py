"""The multivariate (full-covariance) Gaussian family: the family, its record and its spec."""

from sim.families.multivariate.family import (
    ESTIMATOR_DDOF,
    MultivariateParams,
    MultivariateSample,
    MultivariateStats,
    as_sample,
    empty_stats,
    merge_stats,
    multivariate,
    multivariate_family,
    real_params,
    sample_stats,
)
from sim.families.multivariate.record import MultivariateRecord, multivariate_record
from sim.families.multivariate.spec import SPEC  # noqa: E402  (registers the family)

__all__ = [
    "ESTIMATOR_DDOF",
    "SPEC",
    "MultivariateParams",
    "MultivariateRecord",
    "MultivariateSample",
    "MultivariateStats",
    "as_sample",
    "empty_stats",
    "merge_stats",
    "multivariate",
    "multivariate_family",
    "multivariate_record",
    "real_params",
    "sample_stats",
]
