r"""The same Normal-Inverse-Gamma model fitted by numpyro's NUTS, inside the engine.

The model (that of :mod:`sim.families.bayes.family`)

.. math::
    \sigma^2 \sim \mathrm{IG}(\alpha_0, \beta_0),\quad
    \mu \mid \sigma^2 \sim N(\mu_0, \sigma^2/\kappa_0),\quad
    x_i \mid \mu, \sigma^2 \sim N(\mu, \sigma^2)

is sampled by the No-U-Turn sampler of numpyro's functional API
(:func:`numpyro.infer.hmc.hmc` with ``algo="NUTS"``: step-size and diagonal mass
adaptation during warm-up) in the unconstrained coordinates
:math:`z = (\mu, \log\sigma^2)`. The likelihood is written through the training
set's sufficient statistics :math:`(n, \bar x, S)` (a Gaussian likelihood depends on
the data only through them), so the fit takes the same
:class:`~sim.families.gaussian.GaussianStats` as the conjugate fit and every data
regime works. Everything is a pure function of a key and the data: it is jitted,
vmapped over chains and scanned over generations like any other fit (the spec's
``fit="nuts"``); a few NUTS chains per fit are vmapped inside it.

:func:`nuts_samples` returns the draws (for the posterior moments and numpyro's
effective sample size, :func:`posterior_moments`); :func:`nuts_family` is the
family whose fit runs NUTS and keeps the posterior moments plus one posterior draw
:math:`(\mu, \sigma^2)`, picked uniformly from the pooled draws by the fit's key:
the sample step draws the next M points from that draw (the joint predictive).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sim.families.base import DataOps, Family
from sim.families.bayes.family import Prior, check_prior, empty_stats
from sim.families.gaussian.family import (
    GaussianParams,
    GaussianStats,
    StandardizedSample,
    _point_stats,
    _points,
    _standardized_stats,
    merge_stats,
)
from sim.families.gaussian.family import sample_stats as gaussian_sample_stats


class NutsParams(NamedTuple):
    """A posterior fitted by NUTS: its moments and one posterior draw (for sampling)."""

    mean: jax.Array  # shape=(), float: posterior mean of mu (NUTS average)
    mean_var: jax.Array  # shape=(), float: posterior variance of mu
    var_mean: jax.Array  # shape=(), float: posterior mean of sigma^2
    draw_mean: jax.Array  # shape=(), float: one posterior draw of mu
    draw_log_var: jax.Array  # shape=(), float: its log sigma^2
    accept: jax.Array  # shape=(), float: mean acceptance probability of the sampling phase


def real_nuts_params(real_mean: float = 0.0, real_sd: float = 1.0, dtype=None) -> NutsParams:
    """The real distribution N(real_mean, real_sd^2) as generation-0 params."""
    dtype = dtype or jnp.result_type(float)
    c = lambda v: jnp.asarray(v, dtype)  # noqa: E731
    var = real_sd * real_sd
    return NutsParams(c(real_mean), c(0.0), c(var), c(real_mean), c(2 * math.log(real_sd)), c(1))


def log_density(prior: Prior, stats: GaussianStats):
    """``logp(z)``, z = (mu, log sigma^2): the NIG log posterior density, up to a constant,
    with the log-Jacobian of sigma^2 = exp(z[1])."""
    import numpyro.distributions as dist

    dtype = stats.mean.dtype
    mu0, k0, a0, b0 = (jnp.asarray(v, dtype) for v in prior)
    n, xbar, s = stats.count, stats.mean, jnp.exp(stats.log_m2)

    def logp(z):
        mu, lv = z[0], z[1]
        var = jnp.exp(lv)
        lp = dist.InverseGamma(a0, b0).log_prob(var) + lv
        lp = lp + dist.Normal(mu0, jnp.sqrt(var / k0)).log_prob(mu)
        lik = -0.5 * n * (math.log(2 * math.pi) + lv) - 0.5 * (s + n * (xbar - mu) ** 2) / var
        return lp + lik

    return logp


def nuts_samples(
    key, stats: GaussianStats, prior: Prior, num_warmup: int, num_samples: int, num_chains: int
):
    """NUTS draws of ``(mu, log sigma^2)``: shape ``(num_chains, num_samples, 2)``, and the
    mean acceptance probability per chain (shape ``(num_chains,)``). Pure: jit and vmap it.

    Each chain starts at ``(xbar, log((beta0 + S/2)/(alpha0 + n/2)))`` jittered by
    Uniform(-1, 1) in both coordinates, then ``num_warmup`` adaptation steps.
    """
    from numpyro.infer.hmc import hmc

    logp = log_density(prior, stats)
    init_kernel, sample_kernel = hmc(potential_fn=lambda z: -logp(z), algo="NUTS")
    dtype = stats.mean.dtype
    a0, b0 = (jnp.asarray(v, dtype) for v in prior[2:])
    centre = jnp.stack(
        [stats.mean, jnp.log(b0 + 0.5 * jnp.exp(stats.log_m2)) - jnp.log(a0 + 0.5 * stats.count)]
    )

    def one_chain(k):
        k_init, k_run = jax.random.split(k)
        z0 = centre + jax.random.uniform(k_init, (2,), dtype, -1.0, 1.0)
        raw = jax.random.key_data(k_run)
        raw = raw if raw.shape == (2,) else raw[:2]
        state = init_kernel(z0, num_warmup=num_warmup, rng_key=raw)

        def body(st, _):
            st = sample_kernel(st)
            return st, (st.z, st.accept_prob)

        _, (zs, acc) = jax.lax.scan(body, state, None, length=num_warmup + num_samples)
        return zs[num_warmup:], acc[num_warmup:].mean()

    return jax.vmap(one_chain)(jax.random.split(key, num_chains))


def posterior_moments(draws: np.ndarray, accept=None):
    """``{quantity: (mean, sd, ess, se)}`` for mu, sigma2 and log_sigma2 from NUTS ``draws``
    (shape ``(chains, samples, 2)``); ``ess`` is numpyro's
    :func:`~numpyro.diagnostics.effective_sample_size` over the chains, ``se = sd/sqrt(ess)``."""
    from numpyro.diagnostics import effective_sample_size

    d = np.asarray(draws, np.float64)
    out = {}
    for name, x in (("mu", d[..., 0]), ("sigma2", np.exp(d[..., 1])), ("log_sigma2", d[..., 1])):
        ess = float(effective_sample_size(x))
        sd = float(x.std(ddof=1))
        out[name] = (float(x.mean()), sd, ess, sd / math.sqrt(ess))
    return out


def nuts_family(
    prior: Prior, num_warmup: int = 200, num_samples: int = 200, num_chains: int = 2
) -> Family:
    """The Bayesian family with NUTS as the fit (joint predictive; refit from ``prior``).

    Static prior values are checked; traced ones pass. Params are :class:`NutsParams`;
    data, summaries and DataOps are those of :func:`sim.families.bayes.bayes_family`
    (``sample_stats``: the Gaussian summary of M points of the draw).
    """
    prior = check_prior(*prior)
    nw, ns, nc = int(num_warmup), int(num_samples), int(num_chains)

    def fit_stats(key, stats: GaussianStats) -> NutsParams:
        k_run, k_pick = jax.random.split(key)
        z, acc = nuts_samples(k_run, stats, prior, nw, ns, nc)
        flat = z.reshape(-1, 2)
        var = jnp.exp(flat[:, 1])
        mu = flat[:, 0]
        pick = jax.random.randint(k_pick, (), 0, flat.shape[0])
        return NutsParams(mu.mean(), mu.var(), var.mean(), flat[pick, 0], flat[pick, 1], acc.mean())

    def fit(key, data: StandardizedSample) -> NutsParams:
        return fit_stats(key, _standardized_stats(data))

    def draw(params: NutsParams) -> GaussianParams:
        return GaussianParams(params.draw_mean, params.draw_log_var)

    def sample(key, params: NutsParams, n: int) -> StandardizedSample:
        z = jax.random.normal(jax.random.fold_in(key, 4), (n,), params.mean.dtype)
        return StandardizedSample(params.draw_mean, 0.5 * params.draw_log_var, z)

    ops = DataOps(
        stats=_standardized_stats,
        merge=merge_stats,
        fit_stats=fit_stats,
        count=lambda s: s.count,
        empty=lambda p: empty_stats(p),
        min_count=2,
        sample_stats=lambda key, p, n: gaussian_sample_stats(key, draw(p), n),
        points=_points,
        point_stats=_point_stats,
    )
    return Family(fit=fit, sample=sample, name="bayes-nuts", ops=ops)
