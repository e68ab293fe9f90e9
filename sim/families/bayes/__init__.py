"""The Bayesian family (conjugate Normal-Inverse-Gamma): the family, its record and its spec."""

from sim.families.bayes.family import (
    PREDICTIVES,
    BayesParams,
    Prior,
    bayes,
    bayes_family,
    check_prior,
    draw_parameters,
    empty_stats,
    posterior,
    posterior_moments,
    real_params,
    sample_joint,
    sample_stats_joint,
    sample_student_t,
)
from sim.families.bayes.record import BayesRecord, bayes_record
from sim.families.bayes.spec import SPEC  # noqa: E402  (registers the family)

__all__ = [
    "PREDICTIVES",
    "SPEC",
    "BayesParams",
    "BayesRecord",
    "Prior",
    "bayes",
    "bayes_family",
    "bayes_record",
    "check_prior",
    "draw_parameters",
    "empty_stats",
    "posterior",
    "posterior_moments",
    "real_params",
    "sample_joint",
    "sample_stats_joint",
    "sample_student_t",
]
