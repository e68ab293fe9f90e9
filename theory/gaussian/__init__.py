r"""Closed-form theory for the recursively refitted 1-D Gaussian.

Setting (Shumailov et al. 2024; Suresh et al. 2024). Generation 0 is the real
distribution :math:`N(\mu_0, \sigma_0^2)`. Fit :math:`n = 1, 2, \dots` fits a
mean and a variance to :math:`M` = ``sample_size`` samples drawn from fit
:math:`n-1` (fit 1 uses real data). Notation used throughout:

.. math::

    c = M \ (\text{"mle"}) \text{ or } M - 1 \ (\text{"unbiased"}), \qquad
    \nu = M - 1, \qquad h = \nu / 2, \qquad r = \nu / c,

    c_4(M) = \sqrt{\tfrac{2}{M-1}}\,
        \frac{\Gamma(M/2)}{\Gamma((M-1)/2)}, \qquad a = c_4(M) \sqrt{r}.

The fitted parameters form an exact Markov chain (catalogue entry G1):

.. math::

    \sigma_n^2 = \sigma_0^2 \prod_{t=1}^{n} G_t, \quad
    G_t \overset{iid}{\sim} \chi^2_\nu / c, \qquad
    \mu_{t+1} = \mu_t + \sigma_t Z_t / \sqrt{M}, \quad Z_t \sim N(0, 1),

with every :math:`Z_t` independent of every :math:`G_s` (sample mean and
sample variance of a Gaussian sample are independent). All results below are
functions of this chain; the identifiers G2..G10 refer to the project's theory
catalogue (``THEORY.md``).

Layout of this package (``from theory import gaussian`` exposes every name):

* :mod:`theory.gaussian.moments`: G2-G6 and the G9 bound (``expected_variance``,
  ``expected_std``, ``variance_cv2``, ``std_cv2``, ``log_variance_mean``,
  ``log_variance_var``, ``mean_variance``, ``expected_w2_squared``,
  ``markov_tail_bound``);
* :mod:`theory.gaussian.law`: the law of :math:`\log\sigma_n^2` (G10, G7a):
  ``log_variance_cdf``, ``log_variance_quantile``, ``collapse_probability``,
  ``median_tail_mass`` and the saddlepoint machinery;
* :mod:`theory.gaussian.tails`: ``expected_tail_mass`` (G7b), the grid
  recursion for the perpetuity;
* ``theory.gaussian._numerics``: constants and special-function helpers.

Conventions of this module:

* Pure ``jax.numpy``; no randomness, no ``jax.jit`` inside. Every function is
  traceable by ``jax.jit`` / ``jax.vmap`` and differentiable by ``jax.grad``
  in its float arguments (``sigma0``, ``eps``, ``k``, ``x``, ``q``).
  ``n`` and ``sample_size`` are integer-valued; derivatives with respect to
  them are not meaningful.
* Array arguments broadcast against each other.
* ``estimator`` is a static Python string, ``"mle"`` or ``"unbiased"``.
* Uniform keywords: every function takes ``estimator`` and ``sigma0``, so a
  script can call all of them with the same keywords. Where the quantity does
  not depend on one (``variance_cv2``, ``std_cv2`` and ``log_variance_var``
  on either; ``collapse_probability``, ``median_tail_mass`` and
  ``expected_tail_mass`` on ``sigma0``; ``markov_tail_bound`` on
  ``estimator``) it is still validated and only takes part in the broadcast
  shape.
* Float64 without ``jax_enable_x64``: concrete calls answer in float64 (NumPy
  arrays); traced calls under a user's ``jit``/``grad``/``vmap`` compute in the
  tracer's dtype. The rule, once: :mod:`theory._precision`.
* Arguments (``theory._validate``, one rule for every theory module): Python
  numbers, lists and tuples, NumPy and JAX arrays are accepted;
  integer-valued arguments must hold integers of magnitude at most ``2**53``
  (``2.5`` and ``10**20`` are refused by name); shapes that do not broadcast
  are refused in one line naming both arguments and the shape. Concrete
  inputs are validated (``ValueError`` naming the argument and the first bad
  value); traced inputs are not checked.

References:
    Shumailov, I. et al. (2024). AI models collapse when trained on
    recursively generated data. *Nature* 631, 755-759; preprint "The Curse of
    Recursion", arXiv:2305.17493.

    Suresh, A. T. et al. (2024). Rate of Model Collapse in Recursive
    Training. arXiv:2412.17646.

    Lugannani, R. & Rice, S. (1980). Saddle point approximation for the
    distribution of the sum of independent random variables. *Adv. Appl.
    Prob.* 12, 475-490.

    Daniels, H. E. (1987). Tail probability approximations. *Int. Stat.
    Review* 55, 37-48.

    Minka, T. (2000). Estimating a Dirichlet distribution (appendix: inverse
    digamma).

    Kesten, H. (1973). Random difference equations and renewal theory for
    products of random matrices. *Acta Math.* 131; Vervaat, W. (1979). On a
    stochastic difference equation and a representation of non-negative
    infinitely divisible random variables. *Adv. Appl. Prob.* 11, 750-783.

    Navot, I. (1961). An extension of the Euler-Maclaurin summation formula
    to functions with a branch singularity. *J. Math. and Phys.* 40, 271-276.
"""

from theory.gaussian._numerics import (  # noqa: F401  (private names other modules import)
    _B,
    CDF_METHODS,
    ESTIMATORS,
    _log_c4_h,
    _params,
    _stirling_rem,
)
from theory.gaussian.law import (
    collapse_probability,
    log_variance_cdf,
    log_variance_quantile,
    median_tail_mass,
)
from theory.gaussian.moments import (
    expected_std,
    expected_variance,
    expected_w2_squared,
    log_variance_mean,
    log_variance_var,
    markov_tail_bound,
    mean_variance,
    std_cv2,
    variance_cv2,
)
from theory.gaussian.tails import expected_tail_mass

__all__ = [
    "ESTIMATORS",
    "CDF_METHODS",
    "expected_variance",
    "expected_std",
    "variance_cv2",
    "std_cv2",
    "log_variance_mean",
    "log_variance_var",
    "log_variance_cdf",
    "log_variance_quantile",
    "collapse_probability",
    "median_tail_mass",
    "expected_tail_mass",
    "mean_variance",
    "expected_w2_squared",
    "markov_tail_bound",
]
