"""The categorical family (Wright-Fisher): the family, its record, its verifier and its spec."""

from sim.families.categorical.family import (
    NO_BIAS,
    CategoricalParams,
    Vocabulary,
    categorical,
    categorical_family,
    check_probability_vector,
    subsample_counts,
    thin_counts,
    zipf_probs,
)
from sim.families.categorical.record import (
    CategoricalRecord,
    categorical_record,
    check_bucket_edges,
    default_bucket_edges,
)
from sim.families.categorical.spec import SPEC, block_size  # noqa: E402  (registers the family)
from sim.families.categorical.verifier import categorical_verifier

__all__ = [
    "NO_BIAS",
    "SPEC",
    "CategoricalParams",
    "CategoricalRecord",
    "Vocabulary",
    "block_size",
    "categorical",
    "categorical_family",
    "categorical_record",
    "categorical_verifier",
    "check_bucket_edges",
    "check_probability_vector",
    "default_bucket_edges",
    "subsample_counts",
    "thin_counts",
    "zipf_probs",
]
