"""The categorical chain's spec: settings, traced settings, programs, theory columns."""

from __future__ import annotations

import math

import numpy as np

from sim import spec as _spec
from sim._validate import check_float, check_int
from sim.families import register
from sim.families.categorical.family import Vocabulary, categorical_family
from sim.families.categorical.record import (
    categorical_record,
    check_bucket_edges,
    default_bucket_edges,
)
from sim.families.categorical.verifier import categorical_verifier
from sim.sampling import SamplingBias, sampling_bias

DEFAULTS = dict(
    num_categories=100,
    zipf_beta=1.0,
    sample_size=100,
    smoothing=0.0,
    temperature=1.0,
    top_k=None,
    top_p=None,
    regime="replace",
    alpha=0.0,
    lam=0.0,
    tail_rank=None,
    dtype=None,
    vocabulary=None,
    bucket_edges=None,
    mixing="fixed",
)
# The settings of the first categorical sweeps: always part of a point's key.
KEY_SETTINGS = tuple(DEFAULTS)[:12]

# Chains per reduction block are capped so that one block of K-category states
# stays near this many elements (the block is the smallest chunk).
MAX_BLOCK_ELEMENTS = 1 << 22


def block_size(num_chains: int, num_categories: int) -> int:
    """The reduction block for a categorical run: a function of (C, K) only."""
    from sim.parallel import DEFAULT_BLOCK_SIZE

    by_c = 1 << max(0, math.ceil(math.log2(num_chains)))
    by_k = 1 << max(4, int(math.log2(max(1, MAX_BLOCK_ELEMENTS // num_categories))))
    return min(DEFAULT_BLOCK_SIZE, by_c, by_k)


def vocabulary(s: dict) -> Vocabulary:
    """The real distribution: ``vocabulary`` if given, else Zipf(K, beta) (uniform at beta 0)."""
    if s["vocabulary"] is not None:
        return s["vocabulary"]
    k = s["num_categories"]
    return Vocabulary.uniform(k) if s["zipf_beta"] == 0 else Vocabulary.zipf(k, s["zipf_beta"])


def check(s: dict) -> dict:
    s = dict(s)
    if s["vocabulary"] is not None:
        if not isinstance(s["vocabulary"], Vocabulary):
            raise ValueError(
                f"vocabulary must be a Vocabulary; got {type(s['vocabulary']).__name__}"
            )
        s["num_categories"] = s["vocabulary"].num_categories
    else:
        s["num_categories"] = check_int(s["num_categories"], "num_categories", 1)
        s["zipf_beta"] = check_float(s["zipf_beta"], "zipf_beta", nonnegative=True)
    vocab = vocabulary(s)
    k = vocab.num_categories
    if isinstance(s["sample_size"], bool) or not isinstance(s["sample_size"], int | np.integer):
        raise ValueError(f"sample_size={s['sample_size']!r} must be an integer >= 1")
    s["sample_size"] = check_int(s["sample_size"], "sample_size", 1)
    s["smoothing"] = check_float(s["smoothing"], "smoothing", nonnegative=True)
    bias = sampling_bias(s["temperature"], s["top_k"], s["top_p"])
    s["temperature"], s["top_p"] = bias.temperature, bias.top_p
    _spec.check_regime_setting(s)
    for name in ("alpha", "lam"):
        s[name] = check_float(s[name], name)
    if s["tail_rank"] is not None:
        s["tail_rank"] = check_int(s["tail_rank"], "tail_rank", 0)
        if s["tail_rank"] > k:
            raise ValueError(f"tail_rank={s['tail_rank']} exceeds the number of categories K={k}")
    if s["bucket_edges"] is not None:
        s["bucket_edges"] = check_bucket_edges(s["bucket_edges"], k)
    if s["dtype"] is not None:
        _spec.resolve_dtype(s["dtype"])
    return s


def traced(s: dict) -> dict:
    out = {name: _spec.number for name in ("smoothing", "temperature", "alpha", "lam")}
    if s["top_p"] is not None:  # None: no truncation at all, a cheaper program
        out["top_p"] = _spec.number
    return out


def build(s: dict, traced_names: tuple, num_chains: int, num_generations: int):
    vocab = vocabulary(s)
    k, m, dtype = vocab.num_categories, s["sample_size"], s["dtype"]
    regime = _spec.static_regime(s)
    tail = k // 10 if s["tail_rank"] is None else s["tail_rank"]
    edges = s["bucket_edges"] if s["bucket_edges"] is not None else default_bucket_edges(k)

    def family_of(th):
        temperature = th.get("temperature", s.get("temperature"))
        bias = SamplingBias(temperature, s["top_k"], th.get("top_p", s.get("top_p")))
        return categorical_family(th.get("smoothing", s.get("smoothing")), bias, dtype)

    elements = 4 * k
    draws = "points"
    if regime is not None:
        # Counts are drawn directly either way; "exact" lets schedules change M.
        if regime.verifier is None and regime.kind != "subsample":
            draws = "exact"
        if regime.kind == "subsample":
            elements += m * num_generations
    return _spec.chain_program(
        family_of=family_of,
        static_family=categorical_family(0.0, SamplingBias(), dtype),
        real=vocab.params(dtype),
        record=categorical_record(vocab, tail, edges),
        sample_size=m,
        regime=regime,
        draws=draws,
        traced=traced_names,
        num_generations=num_generations,
        chain_elements=elements,
        block_size=block_size(num_chains, k),
        snapshot_fields=("support", "heterozygosity"),
        first_passage_fields=("absorbed",),
    )


def theory(s: dict, gen: np.ndarray) -> dict:
    """E heterozygosity (D1, with smoothing) and E support size (D3): the plain,
    unbiased chain only."""
    unbiased = s["temperature"] == 1.0 and s["top_k"] is None and s["top_p"] in (None, 1.0)
    if _spec.static_regime(s) is not None or not unbiased:
        return {}
    from theory import categorical as tc

    probs = vocabulary(s).probs
    m = s["sample_size"]
    out = {
        "heterozygosity": {
            "mean": np.asarray(tc.expected_heterozygosity(gen, m, probs, s["smoothing"]))
        }
    }
    if s["smoothing"] == 0:
        out["support"] = {"mean": np.asarray(tc.expected_support_size(gen, m, probs))}
    return out


def example() -> _spec.Example:
    """A small point for the contract tests (:class:`sim.spec.Example`)."""
    given = {"num_categories": 5, "sample_size": 20}
    s = check({**DEFAULTS, **given})
    return _spec.Example(
        settings=given,
        family=categorical_family(s["smoothing"], SamplingBias(), s["dtype"]),
        params=vocabulary(s).params(s["dtype"]),
        sample_size=20,
        grid={"smoothing": [0.0, 0.5]},
        lanes=(
            (
                {"top_p": 0.9},
                {"temperature": (0.5, 2.0), "smoothing": (0.0, 0.5), "top_p": (0.3, 1.0)},
            ),
        ),
        bad=(("sample_size", 0), ("smoothing", -0.5), ("top_p", 1.5), ("tail_rank", 6)),
    )


SPEC = register(
    _spec.FamilySpec(
        name="categorical",
        defaults=DEFAULTS,
        check=check,
        traced=traced,
        build=build,
        theory=theory,
        verifiers={"likelihood": categorical_verifier},
        key_settings=KEY_SETTINGS,
        example=example,
        description="categorical refitted by counts: neutral Wright-Fisher (THEORY.md D1-D5)",
    )
)
