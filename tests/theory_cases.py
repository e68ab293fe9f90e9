"""One valid call of every public function of every ``theory`` module (shared by the API tests).

``CASES[module][function] = kwargs``: small, fast arguments, all keywords, so
that the uniform-keyword, float64-without-x64 and bad-input tests can call every
function the same way. ``COMMON`` holds each module's uniform keywords
(accepted by every function listed in ``COMMON_FUNCTIONS``).
"""

from __future__ import annotations

import numpy as np

from theory import categorical, gaussian, mixing, poisson, regression

MODULES = {
    "gaussian": gaussian,
    "categorical": categorical,
    "mixing": mixing,
    "regression": regression,
    "poisson": poisson,
}

P3 = [0.5, 0.3, 0.2]

CASES = {
    "gaussian": {
        "expected_variance": dict(n=3, sample_size=10),
        "expected_std": dict(n=3, sample_size=10),
        "variance_cv2": dict(n=3, sample_size=10),
        "std_cv2": dict(n=3, sample_size=10),
        "log_variance_mean": dict(n=3, sample_size=10),
        "log_variance_var": dict(n=3, sample_size=10),
        "mean_variance": dict(n=3, sample_size=10),
        "expected_w2_squared": dict(n=3, sample_size=10),
        "markov_tail_bound": dict(n=3, sample_size=10, eps=0.5),
        "log_variance_cdf": dict(x=-0.5, n=3, sample_size=10),
        "log_variance_quantile": dict(q=0.3, n=3, sample_size=10),
        "collapse_probability": dict(n=3, sample_size=10, eps=0.5),
        "median_tail_mass": dict(n=3, sample_size=10, k=1.5),
        "expected_tail_mass": dict(n=3, sample_size=10, k=1.5, grid_size=256),
    },
    "categorical": {
        "expected_heterozygosity": dict(n=3, sample_size=10, p=P3),
        "survival_probability": dict(n=3, sample_size=10, p=0.2),
        "expected_support_size": dict(n=3, sample_size=10, p=P3),
        "fixation_probability": dict(p=P3),
        "mean_absorption_time": dict(sample_size=10, p=P3),
        "suresh_g": dict(k=3),
        "poisson_survival_probability": dict(n=3, count=2),
        "poisson_survival_from_rate": dict(n=3, rate=1.5),
        "suresh_survival_bounds": dict(n=3, count=2),
        "suresh_survival_bounds_from_rate": dict(n=3, rate=1.5),
        "sampling_transform": dict(p=P3, temperature=0.7),
        "deterministic_trajectory": dict(n=3, p=P3, temperature=0.7),
        "nucleus_fixed_point": dict(p=P3, top_p=0.7),
    },
    "mixing": {
        "fresh_fraction_variance": dict(n=3, sample_size=10, alpha=0.2),
        "fresh_fraction_fixed_point": dict(sample_size=10, alpha=0.2),
        "accumulate_mean_variance": dict(n=3, sample_size=10),
        "accumulate_moments": dict(n=3, sample_size=10),
        "anchored_mean": dict(n=3, sample_size=10, lam=0.5),
        "schedule_w2": dict(n=2, sample_sizes=[5, 6]),
        "power_schedule": dict(n=4, m0=10, power=1.5),
    },
    "regression": {
        "test_error": dict(n=3, dim=2, num_samples=7, noise=1.0),
        "ridge_test_error": dict(
            n=3, eigenvalues=[1.0, 2.0], signal=[1.0, 0.5], noise=1.0, ridge=0.1
        ),
        "ridge_spectrum": dict(design=(np.eye(3)[:, :2] * 2.0).tolist(), w_star=[1.0, 0.0]),
    },
    "poisson": {
        "expected_rate": dict(n=3, sample_size=5, lam0=0.4),
        "rate_variance": dict(n=3, sample_size=5, lam0=0.4),
        "zero_probability": dict(n=3, sample_size=5, lam0=0.4),
        "survival_probability": dict(n=3, sample_size=5, lam0=0.4),
        "survival_asymptote": dict(n=3, sample_size=5, lam0=0.4),
        "suresh_g": dict(k=3),
    },
}

# Each module's uniform keywords (non-default values) and the functions that take them;
# the functions left out build inputs (a schedule, a spectrum) or belong to the
# infinite-M / Poisson limits where the keyword has no meaning (poisson.suresh_g is
# the chain-free sequence g_k).
COMMON = {
    "gaussian": dict(estimator="mle", sigma0=2.0),
    "categorical": dict(sample_size=10),
    "mixing": dict(estimator="unbiased", sigma0=2.0),
    "regression": dict(regime="accumulate", design="fixed"),
    "poisson": dict(sample_size=7, lam0=1.5),
}
COMMON_FUNCTIONS = {
    "gaussian": tuple(CASES["gaussian"]),
    "categorical": (
        "expected_heterozygosity",
        "survival_probability",
        "expected_support_size",
        "fixation_probability",
        "mean_absorption_time",
    ),
    "mixing": tuple(f for f in CASES["mixing"] if f != "power_schedule"),
    "regression": ("test_error", "ridge_test_error"),
    "poisson": tuple(f for f in CASES["poisson"] if f != "suresh_g"),
}


def public_functions(module):
    """Names of the public functions of a theory module (its ``__all__`` minus types and constants)."""
    out = []
    for name in module.__all__:
        obj = getattr(module, name)
        if callable(obj) and not isinstance(obj, type):
            out.append(name)
    return out


def leaves(out):
    """The arrays of a result (a single array, a tuple or a NamedTuple) as float64 NumPy arrays."""
    if isinstance(out, tuple):
        return [np.asarray(x, np.float64) for x in out]
    return [np.asarray(out, np.float64)]
