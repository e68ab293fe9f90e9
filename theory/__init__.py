"""Closed-form theory of model collapse (exact results and approximations).

Submodules:
    gaussian: the recursively refitted 1-D Gaussian (THEORY.md G1-G10).
    categorical: the recursively refitted categorical distribution, i.e. the
        neutral Wright-Fisher model (THEORY.md D1-D5), plus the
        infinite-sample drift under temperature / top-k / top-p sampling.
    mixing: remedies for the Gaussian chain: fresh real data in every
        generation (F1), accumulating data (L3), a fixed real anchor set (F3)
        and growing sample-size schedules (G6).
    regression: OLS and ridge refitted to their own labels, replace and
        accumulate, fixed and fresh designs (L1, L2).
    poisson: the recursively refitted Poisson rate, a critical Galton-Watson
        process (THEORY.md D5): mean, variance, absorption at 0, survival.
    multivariate: the refitted d-dimensional full-covariance Gaussian (W1, W2).
    bayes: the conjugate Normal-Inverse-Gamma posterior refitted to draws of its
        predictive, refit from the prior and sequential updating.
    kde: the Gaussian kernel density estimate refitted to its own samples (K1):
        fixed and rule-of-thumb bandwidths, replace and accumulate.
"""

from theory import bayes, categorical, gaussian, kde, mixing, multivariate, poisson, regression

__all__ = [
    "bayes",
    "categorical",
    "gaussian",
    "kde",
    "mixing",
    "multivariate",
    "poisson",
    "regression",
]
