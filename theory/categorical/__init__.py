r"""Exact and approximate theory for the recursively refitted categorical distribution.

Setting (THEORY.md, "Discrete distributions", D1-D5). Generation 0 is the
real distribution :math:`p_0` on :math:`K` categories. Fit :math:`n = 1, 2,
\dots` is the vector of empirical frequencies of :math:`M` = ``sample_size``
tokens drawn from fit :math:`n-1` (fit 1 uses real data). With :math:`X_n`
the count vector of fit :math:`n` (so fit :math:`n` is :math:`X_n / M`),

.. math::

    X_1 \sim \mathrm{Mult}(M, p_0), \qquad
    X_{n+1} \mid X_n \sim \mathrm{Mult}(M, X_n / M),

the neutral Wright-Fisher model of population genetics with :math:`M` gene
copies. One category's count is the binomial Wright-Fisher chain
:math:`X_{n+1} \mid X_n \sim \mathrm{Bin}(M, X_n/M)` on :math:`\{0..M\}`,
absorbed at 0 (the category is forgotten) and at :math:`M` (it is all that is
left). The frequency of every category is a bounded martingale, so the chain
ends, almost surely, in a one-point distribution ("model collapse").

Contents:

* :func:`expected_heterozygosity` (D1, exact, with optional additive
  smoothing);
* :func:`survival_probability`, :func:`expected_support_size` (D3, exact, by
  the banded Wright-Fisher transition matrix);
* :func:`fixation_probability` (D2, exact);
* :func:`mean_absorption_time` (D4, exact linear solve or Kimura/Littler
  diffusion approximation, with its measured error);
* the Poisson (critical Galton-Watson) limit of Suresh et al. (D5):
  :func:`suresh_g`, :func:`poisson_survival_probability`,
  :func:`poisson_survival_from_rate`, :func:`suresh_survival_bounds`,
  :func:`suresh_survival_bounds_from_rate`;
* the infinite-:math:`M` drift under biased sampling (temperature, top-k,
  top-p): :func:`deterministic_trajectory`, :func:`sampling_transform`,
  :func:`nucleus_fixed_point`.

Layout of this package (``from theory import categorical`` exposes every name):

* :mod:`theory.categorical.heterozygosity`: D1 and D2
  (``expected_heterozygosity``, ``fixation_probability``);
* :mod:`theory.categorical.wright_fisher`: the exact banded Wright-Fisher
  matrix, ``survival_probability`` and ``expected_support_size`` (D3);
* :mod:`theory.categorical.absorption`: ``mean_absorption_time`` (D4);
* :mod:`theory.categorical.branching`: the Poisson limit of Suresh et al.
  (D5): ``suresh_g``, ``poisson_survival_probability``,
  ``poisson_survival_from_rate``, ``suresh_survival_bounds``,
  ``suresh_survival_bounds_from_rate``;
* :mod:`theory.categorical.sampling`: the infinite-M drift under biased
  sampling (``sampling_transform``, ``deterministic_trajectory``,
  ``nucleus_fixed_point``);
* ``theory.categorical._numerics``: Loader's binomial form and loop helpers.

Conventions of this module (those of :mod:`theory.gaussian`):

* Pure ``jax.numpy``; no randomness. Arguments that only enter arithmetic
  (``p``, ``smoothing``, ``temperature``, ``top_k``, ``top_p``, ``count``,
  ``rate``, and ``n`` / ``sample_size`` of :func:`expected_heterozygosity`)
  may be traced by ``jax.jit`` / ``jax.vmap``. Arguments that set array sizes
  or loop lengths must be concrete (Python ints or concrete arrays) and each
  function says which; passing a tracer there raises ``ValueError``.
* Probability vectors lie on the last axis; leading axes are batch axes.
  Concrete probability vectors must have finite entries ``>= 0`` summing to 1
  within 1e-6; they are used as given (not renormalised).
* Uniform keywords: the Wright-Fisher functions (D1-D4:
  ``expected_heterozygosity``, ``survival_probability``,
  ``expected_support_size``, ``fixation_probability``,
  ``mean_absorption_time``) all take ``sample_size`` and ``p``
  (``fixation_probability`` validates ``sample_size`` and does not depend on
  it). The Poisson-limit (D5) and infinite-M sampling functions have no
  sample size by construction. Loop lengths (``n`` of the Wright-Fisher
  functions) must fit int32; the D5 functions have no loop (``g_k`` comes
  from :func:`theory.poisson.suresh_g`).
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

Numerics. Binomial and multinomial probabilities are evaluated in log space
with Loader's saddle-point form (:func:`_log_mult_pmf`, :func:`_log_binom`):
Stirling remainders (``theory.gaussian._stirling_rem``) plus the deviance
terms :math:`\mathrm{bd0}(y, \mu) = y\log(y/\mu) + \mu - y`, summed as a
series of non-negative terms in :math:`v = (y-\mu)/(y+\mu)` near
:math:`y = \mu`. Measured against 40-digit ``mpmath`` for M = 50, 1000,
5000 and 20000: log-probabilities within 3 standard deviations of the mean
are accurate to 5e-15 absolute (2.8e-14 out to 9 standard deviations),
where the textbook ``gammaln`` form loses 2e-13, 7e-12, 3e-11 and 1.8e-10.
(The multinomial matrix of :func:`mean_absorption_time` for three or more
categories uses ``gammaln``: its ``sample_size`` is small there.)

References:
    Fisher, R. A. (1930). *The Genetical Theory of Natural Selection*;
    Wright, S. (1931). Evolution in Mendelian populations. *Genetics* 16.

    Kimura, M. & Ohta, T. (1969). The average number of generations until
    fixation of a mutant gene in a finite population. *Genetics* 61, 763-771.

    Littler, R. A. (1975). Loss of variability at one locus in a finite
    population. *Math. Biosci.* 25, 151-163.

    Ewens, W. J. (2004). *Mathematical Population Genetics I*, 2nd ed.,
    Springer (the Wright-Fisher model and its diffusion approximation).

    Suresh, A. T., Thangaraj, A. & Khandavally, A. N. K. (2024). Rate of
    Model Collapse in Recursive Training. arXiv:2412.17646 (AISTATS 2025).

    Athreya, K. B. & Ney, P. E. (1972). *Branching Processes*, Springer
    (critical Galton-Watson survival, Kolmogorov's estimate).

    Hoeffding, W. (1956). On the distribution of the number of successes in
    independent trials. *Ann. Math. Statist.* 27, 713-721.

    Loader, C. (2000). Fast and accurate computation of binomial
    probabilities. Technical note.

    Holtzman, A. et al. (2020). The curious case of neural text degeneration.
    ICLR (nucleus sampling); Hugging Face ``transformers`` logits warpers
    (temperature, then top-k, then top-p).
"""

from theory.categorical.absorption import (
    ABSORPTION_METHODS,
    MAX_EXACT_STATES,
    mean_absorption_time,
)
from theory.categorical.branching import (
    poisson_survival_from_rate,
    poisson_survival_probability,
    suresh_g,
    suresh_survival_bounds,
    suresh_survival_bounds_from_rate,
)
from theory.categorical.heterozygosity import expected_heterozygosity, fixation_probability
from theory.categorical.sampling import (
    NucleusFixedPoint,
    deterministic_trajectory,
    nucleus_fixed_point,
    sampling_transform,
)
from theory.categorical.wright_fisher import (  # noqa: F401  (_band_layout: used by tests)
    _band_layout,
    expected_support_size,
    survival_probability,
)

__all__ = [
    "ABSORPTION_METHODS",
    "MAX_EXACT_STATES",
    "expected_heterozygosity",
    "survival_probability",
    "expected_support_size",
    "fixation_probability",
    "mean_absorption_time",
    "suresh_g",
    "poisson_survival_probability",
    "poisson_survival_from_rate",
    "suresh_survival_bounds",
    "suresh_survival_bounds_from_rate",
    "sampling_transform",
    "deterministic_trajectory",
    "NucleusFixedPoint",
    "nucleus_fixed_point",
]
