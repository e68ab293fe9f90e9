"""Tolerances for exact tests, derived from error models instead of round numbers.

An exact test compares a float64 closed form with an independent reference.
Its tolerance is the sum of two bounds:

* the reference's own error (quadrature's error estimate, the rounding of a
  high-precision value to float64, a truncated series), and
* the closed form's rounding error: a few units in the last place times the
  condition number of the evaluation (how much the rounding of the
  intermediate terms is amplified, e.g. by a cancellation).

A tolerance written as ``rtol=1e-9`` without such a derivation can sit inside
the reference's error and fail on another machine's libm (issue 16: a
quadrature density whose log cancels terms of size 3e3 carries 5e-13 relative
error, amplified 2000x by ``E[G]/E[sqrt G]^2 - 1 = 5e-4``).
"""

from __future__ import annotations

import numpy as np

# Unit roundoff of float64 (half an ulp of 1).
U64 = float(np.finfo(np.float64).eps) / 2

# Rounding errors allowed per evaluation of a closed form: each elementary
# operation (and each libm call, correctly rounded to within 1 ulp) adds at
# most one unit roundoff; a few dozen operations with care give this margin.
ULPS = 32


def closed_form_rtol(cond=1.0, ulps: int = ULPS):
    """Relative error bound ``ulps * u * cond`` of a float64 evaluation."""
    return ulps * U64 * np.asarray(cond, np.float64)


def expm1_cond(x):
    """Relative condition number of ``expm1`` at ``x``: ``|x e^x / (e^x - 1)|`` (1 at 0)."""
    x = np.asarray(x, np.float64)
    safe = np.where(x == 0, 1.0, x)
    return np.where(x == 0, 1.0, np.abs(safe * np.exp(safe) / np.expm1(safe)))


def assert_within(actual, desired, bound, what: str):
    """``|actual - desired| <= bound`` elementwise, reporting the worst ratio."""
    actual, desired, bound = (np.asarray(v, np.float64) for v in (actual, desired, bound))
    err = np.abs(actual - desired)
    assert np.all(np.isfinite(actual)), f"{what}: non-finite value {actual}"
    ok = err <= bound
    if not np.all(ok):
        ratio = np.max(np.where(bound > 0, err / np.where(bound > 0, bound, 1), np.inf))
        raise AssertionError(
            f"{what}: |error| up to {err.max():.3e} exceeds its derived bound "
            f"(worst error/bound = {ratio:.2f});\nactual={actual}\ndesired={desired}\nbound={bound}"
        )


def assert_outside(wrong, desired, bound, what: str):
    """A deliberately wrong value is rejected: ``|wrong - desired| > bound`` elementwise.

    Shows that a derived tolerance keeps its power: e.g. the closed form at
    the neighbouring sample size, or with the other estimator, falls outside.
    """
    wrong, desired, bound = (np.asarray(v, np.float64) for v in (wrong, desired, bound))
    err = np.abs(wrong - desired)
    assert np.all(err > bound), (
        f"{what}: wrong formula not rejected (|error|/bound down to "
        f"{np.min(err / np.where(bound > 0, bound, 1e-300)):.2f})"
    )


def mp_rounding(value_mp):
    """Absolute error of rounding an mpmath value (computed at >= 30 digits) to float64."""
    return U64 * abs(float(value_mp))
