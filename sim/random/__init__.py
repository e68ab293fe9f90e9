r"""Random variates the engine needs beyond ``jax.random``, built from raw bits.

``jax.random.gamma`` / ``loggamma`` run a rejection loop per element; under
``vmap`` inside a ``scan`` they measured 0.9-4 M variates/s on a 2-core CPU,
far too slow for the O(1) exact path. :func:`log_gamma` is Marsaglia and
Tsang's method with two candidates drawn at once from one block of bits and a
batched fallback loop for the rare lane that rejects both, so it stays exact.

:func:`binomial` and :func:`multinomial` (counts of M tokens over K categories,
by conditional binomial splits down a binary tree) are exact too: inversion
for means below 10, Hoermann's BTRS above, the few lanes that need more work
finished by a gathered fallback (see the section header in ``_binomial.py``).
``jax.random.binomial`` runs while loops per element (about 200 ns each here).

All functions take a single key and return one chain's draws; batch with
``vmap``. Every draw depends only on its key, never on the batch it sits in.

Layout (import from ``sim.random``; the modules are implementation):

* ``_bits``: open uniforms from bits, Philox words addressed by counter
  (lane, round, tag, salt), the ``lax.cond`` barrier that makes XLA write
  words once;
* ``_gamma``: :func:`uniform`, :func:`normal`, :func:`uniforms_and_normals`,
  :func:`log_gamma` (Marsaglia-Tsang) and :func:`log_chi2`;
* ``_binomial``: :func:`binomial` (inversion, BTRS, the gathered fallback);
* ``_poisson``: :func:`poisson` (the gamma-binomial reduction);
* ``_multinomial``: :func:`multinomial` (binomial splits down a tree; its
  ``passes`` argument, :class:`BinomialPasses`, lets a profile swap the binomial
  passes for stand-ins built with :func:`counter_words` and :func:`batch_rows`).

A new sampler (Bartlett's Wishart draws, Dirichlet draws) is a new module
beside these, built on ``_bits`` and ``_gamma``, and re-exported here.

References:
  G. Marsaglia and W. W. Tsang (2000). A simple method for generating gamma
  variables. ACM Transactions on Mathematical Software 26(3), 363-372.
  W. Hoermann (1993). The generation of binomial random variates. Journal of
  Statistical Computation and Simulation 46, 101-110.
"""

# The `_x as _x` imports re-export private names that tests read from ``sim.random``.
from sim.random._binomial import (
    BTRS_MIN_MEAN,
    FIRST_PASS_TAG,
    INVERSION_TERMS,
    TRUNCATION,
    BinomialPasses,
    batch_rows,
    binomial,
    binomial_passes,
    inversion_max_mean,
)
from sim.random._binomial import _finish_fn as _finish_fn
from sim.random._binomial import _first_pass_fn as _first_pass_fn
from sim.random._binomial import _inversion as _inversion
from sim.random._bits import counter_words
from sim.random._gamma import log_chi2, log_gamma, normal, uniform, uniforms_and_normals
from sim.random._multinomial import multinomial
from sim.random._poisson import poisson
from sim.random._wishart import BartlettFactor, bartlett

__all__ = [
    "BTRS_MIN_MEAN",
    "FIRST_PASS_TAG",
    "INVERSION_TERMS",
    "TRUNCATION",
    "BartlettFactor",
    "BinomialPasses",
    "bartlett",
    "batch_rows",
    "binomial",
    "binomial_passes",
    "counter_words",
    "inversion_max_mean",
    "log_chi2",
    "poisson",
    "log_gamma",
    "multinomial",
    "normal",
    "uniform",
    "uniforms_and_normals",
]
