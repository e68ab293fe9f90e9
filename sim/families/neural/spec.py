"""The neural chain's spec: settings, traced settings, programs (no closed-form theory).

A chain always runs under a :class:`~sim.regimes.Regime` (``replace`` included), so that
the record can read each fit's training corpus from the regime's info. Traced per lane:
``temperature`` and ``learning_rate`` (they change no shape), and the unused fractions
(:func:`sim.spec.traced_fractions`). The Markov source, the model's shape, the training
budget, the corpus size and the decoding rule's static parts set array shapes or
control flow and are static.
"""

from __future__ import annotations

from sim import spec as _spec
from sim._validate import check_float, check_int
from sim.families import register
from sim.families.neural.family import Config, DecodeRule, neural_family, real_params
from sim.families.neural.models import MODELS
from sim.families.neural.record import neural_record
from sim.families.neural.source import check_source_settings, num_contexts
from sim.parallel.plan import DEFAULT_BLOCK_SIZE
from sim.regimes import Constant, Regime, make_regime_step
from sim.sampling import SamplingBias

DEFAULTS = dict(
    vocab_size=16,
    order=2,
    zipf=1.0,
    support=4,
    source_seed=0,
    context=2,
    seq_len=32,
    sample_size=64,
    model="mlp",
    embed=16,
    hidden=64,
    heads=2,
    layers=1,
    steps=100,
    learning_rate=0.03,
    warm=False,
    temperature=1.0,
    top_k=0,
    top_p=1.0,
    greedy=False,
    repetition_penalty=1.0,
    holdout=256,
    regime="replace",
    alpha=0.0,
    lam=0.0,
    mixing="fixed",
    dtype=None,
)

MAX_TABLE = 2**20  # (V+1)**context * V floats per chain


def check(s: dict) -> dict:
    s = dict(s)
    v, o, z, k, seed = check_source_settings(
        s["vocab_size"], s["order"], s["zipf"], s["support"], s["source_seed"]
    )
    s.update(vocab_size=v, order=o, zipf=z, support=k, source_seed=seed)
    s["context"] = check_int(s["context"], "context", 1)
    if s["context"] < o:
        raise ValueError(f"context={s['context']} must be at least order={o}")
    if num_contexts(v, s["context"]) * v > MAX_TABLE:
        raise ValueError(f"context={s['context']}: (vocab_size+1)**context * vocab_size > 2**20")
    for name in ("seq_len", "sample_size", "embed", "hidden", "heads", "layers", "holdout"):
        s[name] = check_int(s[name], name, 1)
    s["steps"] = check_int(s["steps"], "steps", 0)
    s["top_k"] = check_int(s["top_k"], "top_k", 0)
    if s["model"] not in MODELS:
        raise ValueError(f"model={s['model']!r} is not one of {MODELS}")
    if s["model"] == "transformer" and s["embed"] % s["heads"]:
        raise ValueError(f"embed={s['embed']} must be a multiple of heads={s['heads']}")
    for name in ("warm", "greedy"):
        if not isinstance(s[name], bool):
            raise ValueError(f"{name}={s[name]!r} must be True or False")
    s["learning_rate"] = check_float(s["learning_rate"], "learning_rate", positive=True)
    s["temperature"] = check_float(s["temperature"], "temperature", positive=True)
    s["top_p"] = check_float(s["top_p"], "top_p", positive=True)
    if s["top_p"] > 1:
        raise ValueError(f"top_p={s['top_p']} must be in (0, 1]")
    s["repetition_penalty"] = check_float(s["repetition_penalty"], "repetition_penalty")
    if s["repetition_penalty"] < 1:
        raise ValueError(f"repetition_penalty={s['repetition_penalty']} must be >= 1")
    _spec.check_chain_settings(s)
    if s["regime"] == "fresh" and s["mixing"] == "binomial":
        raise ValueError("mixing='binomial' needs exact draws, which the neural family has not")
    return s


def traced(s: dict) -> dict:
    return {
        **_spec.traced_fractions(s),
        "temperature": _spec.number,
        "learning_rate": _spec.number,
    }


def config(s: dict) -> Config:
    """The static :class:`~sim.families.neural.family.Config` of checked settings."""
    return Config(
        s["vocab_size"],
        s["order"],
        s["zipf"],
        s["support"],
        s["source_seed"],
        s["context"],
        s["seq_len"],
        s["model"],
        s["embed"],
        s["hidden"],
        s["heads"],
        s["layers"],
        s["steps"],
        s["warm"],
        _spec.resolve_dtype(s["dtype"]),
    )


def decode_rule(s: dict, temperature=None) -> DecodeRule:
    """The decoding rule of settings (``temperature`` overrides, possibly traced)."""
    tau = s.get("temperature", 1.0) if temperature is None else temperature
    bias = SamplingBias(tau, s["top_k"] or None, None if s["top_p"] >= 1 else s["top_p"])
    return DecodeRule(bias, s["greedy"], s["repetition_penalty"])


def build(s: dict, traced_names: tuple, num_chains: int, num_generations: int):
    del num_chains
    cfg = config(s)
    names = tuple(traced_names)
    regime = _spec.static_regime(s) or Regime.replace()
    m = s["sample_size"]
    real = Constant(real_params(cfg))
    fraction_name = _spec.FRACTIONS.get(regime.kind)
    pool_generations = num_generations if regime.kind == "subsample" else 0

    def family_of(th):
        return neural_family(
            cfg,
            decode_rule(s, th.get("temperature")),
            th.get("learning_rate", s.get("learning_rate", 1.0)),  # traced: th has it
        )

    _, init = make_regime_step(family_of({}), regime, m, real, "points", pool_generations)

    def step(key, state, theta):
        th = dict(zip(names, theta, strict=True))
        st, _ = make_regime_step(
            family_of(th), regime, m, real, "points", pool_generations, th.get(fraction_name)
        )
        return st(key, state)

    table = num_contexts(cfg.vocab_size, cfg.context) * cfg.vocab_size
    elements = 4 * max(m * cfg.seq_len, table) + (m * cfg.seq_len * pool_generations)
    return _spec.Program(
        step,
        init(real.tree()),
        neural_record(cfg, m, s["holdout"]),
        elements,
        None,
        ("perplexity", "kl", "real_ce"),
        (),
        lane_group=DEFAULT_BLOCK_SIZE,  # one reduction block at a time: bit-invariant
    )


def example() -> _spec.Example:
    """A tiny point for the contract tests: V=5, order 1, a 3-step MLP, 4 sequences."""
    given = dict(
        vocab_size=5,
        order=1,
        support=3,
        context=1,
        seq_len=6,
        sample_size=4,
        embed=4,
        hidden=8,
        steps=3,
        holdout=8,
    )
    s = check({**DEFAULTS, **given})
    cfg = config(s)
    return _spec.Example(
        settings=given,
        family=neural_family(cfg, decode_rule(s), s["learning_rate"]),
        params=real_params(cfg),
        sample_size=4,
        grid={"alpha": [0.0, 0.5]},  # traced and unused by replace: one program
        lanes=(({}, {"temperature": (1.0, 0.7), "learning_rate": (0.03, 0.1)}),),
        bad=(
            ("order", 3),
            ("context", 0),
            ("support", 9),
            ("model", "rnn"),
            ("top_p", 1.5),
            ("repetition_penalty", 0.5),
            ("warm", 1),
            ("learning_rate", 0.0),
        ),
    )


SPEC = register(
    _spec.FamilySpec(
        name="neural",
        defaults=DEFAULTS,
        check=check,
        traced=traced,
        build=build,
        example=example,
        description="flax language models trained with optax on their own text (a Markov source)",
    )
)
