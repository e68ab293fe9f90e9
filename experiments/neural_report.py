r"""The neural-chain study: flax language models retrained on their own text.

Importable from notebooks: ``run_study(validate(StudyConfig(...)))`` returns a
:class:`~experiments.common.Study`; ``write_outputs(study, dir)`` writes everything.
The command line is :mod:`experiments.neural_chain`.

Each regime (``replace``; ``fresh`` with a share ``alpha`` of real sequences, 10% as in
Shumailov et al. 2024; ``accumulate``) runs C chains of the ``neural`` family
(:mod:`sim.families.neural`) for G generations. What has theory, and is tested:

* the held-out real corpus's cross-entropy under the source against the exact entropy
  rate H (z by the held-out sequences' standard error);
* rare-token and rare-bigram survival at fit 1, by initial-frequency bucket: fit 1
  trains on M real sequences under every regime, and the probability that a pattern is
  in such a corpus is exact (:func:`sim.families.neural.source.absence_probabilities`).
  SE: the larger of the chains' standard error and the binomial SE the bucket would
  have if its tokens were independent (so that a bucket where every chain has every
  token is still tested against a theory of 1 - tiny).

What has no closed form and is shown only: perplexity and exact KL of later generations,
the model's entropy rate, the per-sequence NLL histograms, and the token survival after
fit 1 beside the categorical (Wright-Fisher) chain's exact survival on the unigram
marginal with the same number of tokens (``theory.categorical.survival_probability``):
that chain is a reference, not a prediction (see the README's Neural chains section).
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np

from experiments import common
from experiments.common import MAX_SIZE, setting

REGIMES = ("replace", "fresh", "accumulate")
SCALARS = ("real_ce", "perplexity", "kl", "entropy_rate", "train_loss", "stationary_residual")
VECTORS = ("token_survival", "bigram_survival", "distinct", "nll_hist")
FAMILY_SETTINGS = (
    "vocab_size",
    "order",
    "context",
    "seq_len",
    "sample_size",
    "model",
    "embed",
    "hidden",
    "steps",
    "learning_rate",
    "warm",
    "temperature",
    "top_k",
    "top_p",
    "greedy",
    "repetition_penalty",
)


@dataclasses.dataclass(frozen=True)
class StudyConfig(common.CommonSettings):
    """Everything that determines a neural-chain study's numbers (and its flags).

    Defaults: 32 chains x 20 generations of a window MLP (V=16 tokens, order-2 source,
    64 sequences of 32 tokens per generation, 100 Adam steps per fit), replace and 10%
    fresh real data: about 2-3 minutes on 2 CPU cores from a cold compile cache.
    """

    num_chains: int = setting(32, "Independent chains per regime (C).", high=MAX_SIZE)
    generations: int = setting(20, "Number of fits per chain (G).", high=10_000)
    regimes: tuple[str, ...] = setting(("replace", "fresh"), "Regimes: replace, fresh, accumulate.")
    alpha: float = setting(0.1, "Share of real sequences per generation under fresh.")
    vocab_size: int = setting(16, "Tokens V of the Markov source.", high=1024)
    order: int = setting(2, "Order of the Markov source (1 or 2).", high=2)
    context: int = setting(2, "Window of tokens the models read (>= order).", high=8)
    seq_len: int = setting(32, "Tokens per sequence.", high=MAX_SIZE)
    sample_size: int = setting(64, "Sequences per generation (M).", high=MAX_SIZE)
    model: str = setting("mlp", "mlp (embedding + MLP over the window) or transformer.")
    embed: int = setting(16, "Embedding width.", high=4096)
    hidden: int = setting(64, "Hidden width of the MLP.", high=65536)
    steps: int = setting(100, "Adam steps per fit.", high=MAX_SIZE)
    learning_rate: float = setting(0.03, "Adam learning rate.")
    warm: bool = setting(False, "Start each fit from the previous generation's weights.")
    temperature: float = setting(1.0, "Decoding temperature.")
    top_k: int = setting(0, "Decoding top-k (0: off).", high=1024)
    top_p: float = setting(1.0, "Decoding top-p (1: off).")
    greedy: bool = setting(False, "Greedy decoding (argmax) instead of sampling.")
    repetition_penalty: float = setting(1.0, "CTRL repetition penalty (1: off).")


def family_settings(config) -> dict:
    return {k: getattr(config, k) for k in FAMILY_SETTINGS}


def validate(config: StudyConfig) -> StudyConfig:
    """Raises ValueError('--flag=value: reason') for the first bad setting."""
    from sim import families

    bad = common.bad
    common.check_settings(config)
    if config.num_chains < 1:
        bad("num_chains", config.num_chains, "need at least 1 chain")
    if config.generations < 1:
        bad("generations", config.generations, "need at least 1 generation")
    if not config.regimes:
        bad("regimes", "", "give at least one regime")
    for r in config.regimes:
        if r not in REGIMES:
            bad("regimes", r, f"choose from {', '.join(REGIMES)}")
    if not 0 <= config.alpha <= 1:
        bad("alpha", config.alpha, "must be in [0, 1]")
    try:
        families.get("neural").settings(**family_settings(config))
    except ValueError as e:
        raise ValueError(f"--{e}") from None
    return config


@dataclasses.dataclass
class RegimeRun:
    """One regime: its simulation and theory."""

    label: str
    regime: str
    result: object  # sim.parallel.SimulationResult
    theory: dict


Study = common.Study


def regime_key(root, regime: str):
    import jax

    return jax.random.fold_in(root, zlib.crc32(regime.encode()) & 0x7FFFFFFF)


def exact_theory(config) -> dict:
    """Float64 theory of the study: H, fit-1 survival by bucket, the categorical reference."""
    from sim import families
    from sim.families.neural.family import _windows_of, bin_edges, built
    from sim.families.neural.record import NUM_BUCKETS, record_constants
    from sim.families.neural.source import (
        absence_probabilities,
        context_table,
        markov_source,
    )
    from sim.families.neural.spec import config as neural_config
    from theory.categorical import survival_probability

    s = families.get("neural").settings(**family_settings(config))
    cfg = neural_config(s)
    src = markov_source(cfg.vocab_size, cfg.order, cfg.zipf, cfg.support, cfg.source_seed)
    c = record_constants(cfg, s["sample_size"], s["holdout"])
    v, m, length = cfg.vocab_size, s["sample_size"], cfg.seq_len
    table = context_table(src, cfg.context)
    tok_pairs = [(-1, y) for y in range(v)]
    big_pairs = [(a, y) for a in range(v) for y in range(v)]
    tok_abs = absence_probabilities(table, v, cfg.context, length, tok_pairs)
    big_abs = absence_probabilities(table, v, cfg.context, length, big_pairs)

    def by_bucket(present, bucket):
        out, sizes = np.zeros(NUM_BUCKETS), np.zeros(NUM_BUCKETS)
        for bb in range(NUM_BUCKETS):
            sel = bucket == bb
            out[bb], sizes[bb] = present[sel].mean(), sel.sum()
        return out, sizes

    tok1, tok_sizes = by_bucket(1 - tok_abs**m, c.token_bucket)
    big1, big_sizes = by_bucket(1 - big_abs**m, c.bigram_bucket)
    tok_var = (
        np.array(
            [
                np.sum(((1 - tok_abs**m) * tok_abs**m)[c.token_bucket == b])
                for b in range(NUM_BUCKETS)
            ]
        )
        / np.maximum(tok_sizes, 1) ** 2
    )
    big_var = (
        np.array(
            [
                np.sum(((1 - big_abs**m) * big_abs**m)[c.bigram_bucket == b])
                for b in range(NUM_BUCKETS)
            ]
        )
        / np.maximum(big_sizes, 1) ** 2
    )
    g = config.generations
    n = np.arange(g + 1)
    wf = np.asarray(survival_probability(n, m * length, src.unigram), np.float64)  # (G+1, V)
    wf_bucket = np.stack([wf[:, c.token_bucket == b].mean(1) for b in range(NUM_BUCKETS)], 1)
    # the held-out corpus under the source (positions whose window has no BOS)
    held = c.holdout_tokens
    k = cfg.context
    idx = np.asarray(_windows_of(held, v, k))[:, k:]
    nll = -np.log(table[idx, held[:, k:]])
    per_seq = nll.mean(1)
    return dict(
        entropy_rate=src.entropy_rate,
        holdout_ce=float(per_seq.mean()),
        holdout_se=float(per_seq.std(ddof=1) / np.sqrt(len(per_seq))),
        token_survival_fit1=tok1,
        token_survival_fit1_var=tok_var,
        bigram_survival_fit1=big1,
        bigram_survival_fit1_var=big_var,
        categorical_token_survival=wf_bucket,
        unigram=src.unigram,
        bin_edges=bin_edges(src.entropy_rate),
        num_params=int(built(cfg).num_params),
    )


def compare(study_theory: dict, runs: list, num_chains: int) -> list:
    rows = [
        common.Comparison(
            config="source",
            statistic="held-out CE (nats/token) = H",
            generation=0,
            empirical=study_theory["holdout_ce"],
            se=study_theory["holdout_se"],
            theory=study_theory["entropy_rate"],
        )
    ]
    for run in runs:
        mo = run.result.moments
        for field in ("token_survival", "bigram_survival"):
            th = study_theory[f"{field}_fit1"]
            var_ind = study_theory[f"{field}_fit1_var"]
            for b in range(len(th)):
                se = max(float(mo[field].sem[1][b]), float(np.sqrt(var_ind[b] / num_chains)))
                rows.append(
                    common.Comparison(
                        config=run.label,
                        statistic=f"{field} bucket {b} (0 = rarest)",
                        generation=1,
                        empirical=float(mo[field].mean[1][b]),
                        se=se,
                        theory=float(th[b]),
                        resolution=1e-6,
                    )
                )
    return rows


def run_study(config, progress: bool = True) -> Study:
    with common.float64():
        return _run_study(config, progress)


def _run_study(config, progress: bool) -> Study:
    import jax.numpy as jnp

    from sim.chain import root_key
    from sim.run import run as run_family

    g, c = config.generations, config.num_chains
    root = root_key(config.seed, config.prng_impl)
    th = exact_theory(config)
    runs = []
    for regime in config.regimes:
        label = regime if regime != "fresh" else f"fresh(alpha={config.alpha:g})"
        res = common.timed_run(
            lambda **kw: run_family("neural", **kw),
            label,
            progress,
            f", {config.model}, {config.steps} steps/fit",
            key=regime_key(root, regime),
            regime=regime,
            alpha=config.alpha if regime == "fresh" else 0.0,
            num_chains=c,
            num_generations=g,
            dtype=jnp.float64 if config.x64 else jnp.float32,
            chunk_chains=config.chunk_chains,
            snapshot_generations=tuple(range(g + 1)),
            snapshot_fields=("perplexity", "kl", "real_ce", "token_survival"),
            progress=None if progress else False,
            **family_settings(config),
        )
        runs.append(RegimeRun(label, regime, res, th))
    return common.judged(config, runs, compare(th, runs, c))


# ----------------------------------------------------------------------------- outputs


def summary_rows(study: Study):
    th = study.runs[0].theory if study.runs else {}
    for run in study.runs:
        mo = run.result.moments
        for n in run.result.generations:
            row = dict(config=run.label, regime=run.regime, generation=int(n))
            common.moment_columns(row, mo, SCALARS, n)
            for f in VECTORS:
                for j, val in enumerate(np.atleast_1d(mo[f].mean[n])):
                    row[f"{f}_b{j}_mean"] = val
            row["theory_entropy_rate"] = th.get("entropy_rate")
            for j, val in enumerate(th["categorical_token_survival"][n]):
                row[f"theory_categorical_token_survival_b{j}"] = val
            yield row


def write_outputs(
    study: Study, output_dir: str, flags_dict: dict | None = None, wall_s: float | None = None
) -> list[str]:
    from experiments import neural_figures

    return common.write_study(
        study,
        output_dir,
        experiment="neural_chain",
        summary_rows=summary_rows(study),
        run_arrays=lambda run: {
            "perplexity": run.result.snapshots["perplexity"],
            "kl": run.result.snapshots["kl"],
            "token_survival": run.result.snapshots["token_survival"],
        },
        plot_all=neural_figures.plot_all,
        flags_dict=flags_dict,
        wall_s=wall_s,
    )
