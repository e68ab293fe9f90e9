"""The Gaussian-mixture family fitted by EM: the family, its record and its spec."""

from sim.families.gmm.family import (
    GmmInfo,
    GmmParams,
    GmmSample,
    GmmStats,
    as_sample,
    em,
    gmm,
    gmm_family,
    l2_distance,
    mixture_inner,
    real_params,
    sample,
    split_init,
)
from sim.families.gmm.record import GmmRecord, gmm_record, mixture_moments
from sim.families.gmm.spec import SPEC  # noqa: E402  (registers the family)

__all__ = [
    "SPEC",
    "GmmInfo",
    "GmmParams",
    "GmmRecord",
    "GmmSample",
    "GmmStats",
    "as_sample",
    "em",
    "gmm",
    "gmm_family",
    "gmm_record",
    "l2_distance",
    "mixture_inner",
    "mixture_moments",
    "real_params",
    "sample",
    "split_init",
]
