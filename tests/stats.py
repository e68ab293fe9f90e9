"""Helpers for statistical tests: z-scores against a stated false-failure rate."""

from __future__ import annotations

import numpy as np
from scipy import stats

# Per test function: the probability that a correct implementation fails it.
FALSE_FAILURE_RATE = 1e-4


def z_crit(num_comparisons: int, alpha: float = FALSE_FAILURE_RATE) -> float:
    """Two-sided Bonferroni threshold for ``num_comparisons`` z-scores."""
    return float(stats.norm.isf(alpha / (2 * max(num_comparisons, 1))))


def z_crit_one_sided(num_comparisons: int, alpha: float = FALSE_FAILURE_RATE) -> float:
    """One-sided Bonferroni threshold, for inequalities (bounds) rather than equalities."""
    return float(stats.norm.isf(alpha / max(num_comparisons, 1)))


def z_scores(empirical, se, theory) -> np.ndarray:
    empirical, se, theory = (np.asarray(x, np.float64) for x in (empirical, se, theory))
    return (empirical - theory) / se


def assert_agree(empirical, se, theory, what: str, alpha: float = FALSE_FAILURE_RATE):
    """All z-scores within the Bonferroni threshold; returns the z-scores."""
    z = np.atleast_1d(z_scores(empirical, se, theory))
    crit = z_crit(z.size, alpha)
    assert np.all(np.isfinite(z)), f"{what}: non-finite z {z}"
    assert np.all(np.abs(z) <= crit), f"{what}: |z| = {np.abs(z).max():.2f} > {crit:.2f}; z={z}"
    return z


def assert_rejects(empirical, se, wrong_theory, what: str, alpha: float = FALSE_FAILURE_RATE):
    """The same test rejects a deliberately wrong formula (some |z| over the threshold)."""
    z = np.atleast_1d(z_scores(empirical, se, wrong_theory))
    crit = z_crit(z.size, alpha)
    assert np.any(np.abs(z) > crit), f"{what}: wrong formula not rejected, z={z}"


def binomial_se(p, n):
    p = np.asarray(p, np.float64)
    return np.sqrt(np.maximum(p * (1 - p), 1e-300) / n)
