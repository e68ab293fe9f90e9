"""The 1-D Gaussian family: the family, its record, its verifier and its spec."""

from sim.families.gaussian.family import (
    ESTIMATOR_DDOF,
    GaussianParams,
    GaussianStats,
    StandardizedSample,
    as_sample,
    empty_stats,
    gaussian,
    gaussian_family,
    merge_stats,
    real_params,
    sample_stats,
)
from sim.families.gaussian.record import GaussianRecord, gaussian_record
from sim.families.gaussian.spec import SPEC  # noqa: E402  (registers the family)
from sim.families.gaussian.verifier import gaussian_verifier

__all__ = [
    "ESTIMATOR_DDOF",
    "GaussianParams",
    "GaussianRecord",
    "GaussianStats",
    "SPEC",
    "StandardizedSample",
    "as_sample",
    "empty_stats",
    "gaussian",
    "gaussian_family",
    "gaussian_record",
    "gaussian_verifier",
    "merge_stats",
    "real_params",
    "sample_stats",
]
