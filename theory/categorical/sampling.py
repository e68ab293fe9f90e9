r"""Sampling bias: the infinite-M drift under temperature, top-k and top-p.

See :mod:`theory.categorical`."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from theory import _validate as _v
from theory.categorical._numerics import _concrete_n, _dtype, _record_iterates, _unique_targets

# ---------------------------------------------------------------------------
# Sampling bias: the infinite-M drift under temperature, top-k and top-p.
# ---------------------------------------------------------------------------


_SAMPLING_SHAPES = (("p", 1), "temperature", "top_k", "top_p")


def _log_normalize(logp):
    return logp - jax.nn.logsumexp(logp, axis=-1, keepdims=True)


def _descending_order(logp):
    """Stable descending order (ties: lower index first) and each entry's rank in it."""
    order = jnp.argsort(-logp, axis=-1, stable=True)
    rank = jnp.argsort(order, axis=-1, stable=True)
    return order, rank


def _transform_log(logp, temperature, top_k, top_p):
    """One application of the sampling transform to normalised log-probabilities.

    ``temperature``, ``top_k`` and ``top_p`` are arrays or None (skipped).
    """
    if temperature is not None:
        logp = _log_normalize(logp / temperature[..., None])
    if top_k is not None:
        _, rank = _descending_order(logp)
        logp = _log_normalize(jnp.where(rank < top_k[..., None], logp, -jnp.inf))
    if top_p is not None:
        order, rank = _descending_order(logp)
        q = jnp.exp(jnp.take_along_axis(logp, order, axis=-1))
        csum = jnp.cumsum(q, axis=-1)
        before = jnp.concatenate([jnp.zeros_like(q[..., :1]), csum[..., :-1]], axis=-1)
        keep_sorted = before < top_p[..., None]
        keep = jnp.take_along_axis(keep_sorted, rank, axis=-1)
        logp = _log_normalize(jnp.where(keep, logp, -jnp.inf))
    return logp


def _sampling_args(p, temperature, top_k, top_p):
    """Validate and convert; return (dtype, log p0, temperature, top_k, top_p)."""
    _v.check_probability_vector("p", p)
    if temperature is not None:
        _v.check_positive("temperature", temperature)
    if top_k is not None:
        _v.check_integer("top_k", top_k, 1)
    if top_p is not None:
        _v.check_half_open_unit("top_p", top_p)
    dt = _dtype(p, *(a for a in (temperature, top_p) if a is not None))
    p = jnp.asarray(p, dt)
    logp = jnp.where(p > 0, jnp.log(jnp.where(p > 0, p, 1.0)), -jnp.inf)
    batch = p.shape[:-1]

    def arg(a, kind):
        return None if a is None else jnp.broadcast_to(jnp.asarray(a, kind), batch)

    if isinstance(temperature, (int, float)) and temperature == 1.0:
        temperature = None
    return dt, _log_normalize(logp), arg(temperature, dt), arg(top_k, jnp.int32), arg(top_p, dt)


@_v.closed_form(
    integers=("top_k",), reals=("p", "temperature", "top_p"), broadcast=[_SAMPLING_SHAPES]
)
def sampling_transform(p, temperature=1.0, top_k=None, top_p=None):
    r"""The distribution a model with fit ``p`` samples from under biased decoding.

    :math:`T(p)`, in the Hugging Face order (temperature, then top-k, then
    top-p), each step renormalised:

    1. temperature :math:`\tau`: :math:`p_i \propto p_i^{1/\tau}`, computed
       in log space (:math:`\log p_i / \tau` minus its log-sum-exp), so tiny
       probabilities do not underflow; :math:`p_i = 0` stays 0;
    2. top-k: keep the ``top_k`` largest probabilities (ties broken in favour
       of the lower index);
    3. top-p (nucleus): sort descending (stable, so ties go to the lower
       index) and keep a category iff the mass strictly before it is
       ``< top_p`` (so the first is always kept and the kept set is the
       smallest prefix of mass ``>= top_p``).

    ``None`` (and ``temperature=1.0``) skips a step. Pure elementwise/sort
    arithmetic: every argument may be traced; ``top_k`` larger than the
    number of categories keeps everything.

    Args:
        p: distribution(s), shape ``(..., K)``.
        temperature: :math:`\tau > 0` (scalar or batch-shaped).
        top_k: integer ``>= 1`` or None.
        top_p: in ``(0, 1]`` or None.

    Returns:
        :math:`T(p)`, same shape as ``p``.

    References:
        Holtzman et al. (2020); Hugging Face ``transformers``
        (TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper).

    Example:
        >>> from theory import categorical
        >>> q = categorical.sampling_transform([0.5, 0.3, 0.2], top_p=0.6)
        >>> [round(v, 12) for v in q.tolist()]
        [0.625, 0.375, 0.0]
    """
    _, logp, tau, k, tp = _sampling_args(p, temperature, top_k, top_p)
    return jnp.exp(_transform_log(logp, tau, k, tp))


@functools.partial(jax.jit, static_argnames=("flags",))
def _trajectory_kernel(targets, logp, tau, k, tp, *, flags):
    use_t, use_k, use_p = flags
    step = functools.partial(
        _transform_log,
        temperature=tau if use_t else None,
        top_k=k if use_k else None,
        top_p=tp if use_p else None,
    )
    return jnp.exp(_record_iterates(step, logp, targets))


@_v.closed_form(
    integers=("n", "top_k"), reals=("p", "temperature", "top_p"), broadcast=[_SAMPLING_SHAPES]
)
def deterministic_trajectory(n, p, temperature=1.0, top_k=None, top_p=None):
    r"""Fit ``n`` in the infinite-sample limit when the model samples with a biased decoder.

    The model generates its training data from :math:`T(p_n)`
    (:func:`sampling_transform`: temperature, top-k, top-p). Fit 1 uses real
    data, so as :math:`M \to \infty` (empirical frequencies equal the
    sampling distribution)

    .. math::

        p_1 = p_0, \qquad p_{n+1} = T(p_n), \qquad\text{i.e.}\quad
        p_n = T^{\,n-1}(p_0)\ (n \ge 1).

    This is the deterministic drift only: at finite :math:`M` the
    Wright-Fisher noise of the other functions acts on top of it.

    Closed forms:

    * temperature alone: :math:`p_n \propto p_0^{\tau^{-(n-1)}}`
      (:math:`(p^{1/\tau})^{1/\tau} = p^{1/\tau^2}`, renormalising commutes
      with powers). For :math:`\tau < 1` it converges to the uniform
      distribution on the argmax set of :math:`p_0`, for :math:`\tau > 1`
      to the uniform distribution on the support of :math:`p_0`; the log
      ratio of two categories grows or shrinks geometrically,
      :math:`\log(p_{n,i}/p_{n,j}) = \tau^{-(n-1)} \log(p_{0,i}/p_{0,j})`.
    * top-k alone: :math:`p_n = p_0` restricted to its ``top_k`` largest
      entries and renormalised, for every :math:`n \ge 2` (the truncated
      vector has at most ``top_k`` positive entries, all kept again).
    * top-p alone: :math:`p_n` is :math:`p_0` restricted to a support
      :math:`S_n` and renormalised, with :math:`S_1 = \mathrm{supp}\,p_0`
      and :math:`S_{n+1}` the nucleus of :math:`p_0|_{S_n}`. The support
      shrinks until the smallest kept mass exceeds :math:`1 - ` ``top_p`` of
      the nucleus mass (the last category of a renormalised nucleus is kept
      again iff the mass before it, :math:`1 - q_{\min}`, is ``< top_p``),
      so at most :math:`K - 1` generations change it. If ``top_p <= 1/2``
      every support with two or more categories shrinks (its smallest
      renormalised mass is at most 1/2), so the limit is a point mass on the
      first argmax; for ``top_p > 1/2`` it can stop earlier (e.g. uniform
      :math:`p_0` with ``top_p > (K-1)/K`` never changes). See
      :func:`nucleus_fixed_point` for the generation at which it stops.

    ``n`` must be concrete (loop length); ``p``, ``temperature``, ``top_k``
    and ``top_p`` may be traced. Iterated in log space, so e.g.
    :math:`\tau = 0.5` for 60 generations (exponents :math:`2^{59}`) is
    handled: the non-maximal entries become exactly 0.

    Args:
        n: fit index, a non-negative int or a 1-D sequence of them.
        p: real distribution(s) :math:`p_0`, shape ``(..., K)``.
        temperature: :math:`\tau > 0` (scalar or batch-shaped).
        top_k: integer ``>= 1`` or None.
        top_p: in ``(0, 1]`` or None.

    Returns:
        :math:`p_n`, shape ``p.shape`` (scalar ``n``) or
        ``(len(n),) + p.shape``.

    References:
        Holtzman et al. (2020); Hugging Face ``transformers`` logits warpers.

    Example:
        >>> from theory import categorical
        >>> [round(v, 4) for v in categorical.deterministic_trajectory(3, [0.2, 0.8], 0.5).tolist()]
        [0.0039, 0.9961]
    """
    n_flat, scalar = _concrete_n(n, "deterministic_trajectory")
    _, logp, tau, k, tp = _sampling_args(p, temperature, top_k, top_p)
    if n_flat.size == 0:
        return jnp.zeros((0,) + logp.shape, logp.dtype)
    uniq, inverse = _unique_targets(np.maximum(n_flat - 1, 0))
    flags = (tau is not None, k is not None, tp is not None)
    zeros = jnp.zeros(logp.shape[:-1], logp.dtype)
    table = _trajectory_kernel(
        jnp.asarray(uniq, jnp.int32),
        logp,
        zeros if tau is None else tau,
        jnp.zeros(logp.shape[:-1], jnp.int32) if k is None else k,
        zeros if tp is None else tp,
        flags=flags,
    )
    out = table[jnp.asarray(inverse)]
    return out[0] if scalar else out


class NucleusFixedPoint(NamedTuple):
    """Result of :func:`nucleus_fixed_point` (arrays of the batch shape, and ``(..., K)``)."""

    generation: jax.Array  # first fit index n >= 1 with p_n = p_{n+1} = ...
    support_size: jax.Array  # categories in the limit (1 = collapsed to a point mass)
    probabilities: jax.Array  # the limit distribution


@jax.jit
def _nucleus_kernel(logp, tp):
    kdim = logp.shape[-1]

    def body(_, carry):
        lp, changes = carry
        new = _transform_log(lp, None, None, tp)
        changed = jnp.any(jnp.isfinite(new) != jnp.isfinite(lp), axis=-1)
        return new, changes + changed.astype(jnp.int32)

    zero = jnp.zeros(logp.shape[:-1], jnp.int32)
    lp, changes = lax.fori_loop(0, kdim, body, (logp, zero))
    return changes + 1, jnp.sum(jnp.isfinite(lp), axis=-1, dtype=jnp.int32), jnp.exp(lp)


@_v.closed_form(reals=("p", "top_p"), broadcast=[(("p", 1), "top_p")])
def nucleus_fixed_point(p, top_p):
    r"""Where and when top-p sampling alone stops changing the fit (infinite :math:`M`).

    With top-p alone, :math:`p_n = T^{n-1}(p_0)` is :math:`p_0` restricted
    to a shrinking support (see :func:`deterministic_trajectory`). Each
    application either removes at least one category or leaves the
    distribution unchanged for ever, so after at most :math:`K - 1` changes
    the trajectory is constant. Computed by iterating :math:`T` :math:`K`
    times and counting the support changes :math:`c`: the fit is constant
    from fit ``generation`` :math:`= c + 1` on (fit 1 is :math:`p_0`; fit
    :math:`c + 1 = T^c(p_0)`). ``support_size == 1`` means collapse to a
    point mass (always the case when ``top_p <= 1/2``).

    Example: :math:`p_0 = (0.5, 0.3, 0.2)`. With ``top_p = 0.6``, fit 2 is
    :math:`(0.625, 0.375, 0)` (mass before the second category 0.5 < 0.6,
    before the third 0.8) and fit 3 the point mass (mass before the second
    is now 0.625): ``generation = 3``, ``support_size = 1``. With
    ``top_p = 0.7`` fit 3 keeps both (0.625 < 0.7): ``generation = 2``,
    ``support_size = 2``. With ``top_p = 0.5`` fit 2 is already the point
    mass: ``generation = 2``, ``support_size = 1``.

    Args:
        p: real distribution(s), shape ``(..., K)``; may be traced.
        top_p: in ``(0, 1]`` (scalar or batch-shaped); may be traced.

    Returns:
        :class:`NucleusFixedPoint` ``(generation, support_size,
        probabilities)``.

    Example:
        >>> from theory import categorical
        >>> r = categorical.nucleus_fixed_point([0.5, 0.3, 0.2], 0.7)
        >>> int(r.generation), int(r.support_size)
        (2, 2)
    """
    _, logp, _, _, tp = _sampling_args(p, 1.0, None, top_p)
    return NucleusFixedPoint(*_nucleus_kernel(logp, tp))
