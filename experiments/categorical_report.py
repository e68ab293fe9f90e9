"""The categorical-chain study: run, compare with theory, write figures and files.

Three parts, each a set of runs of :func:`sim.runners.run_categorical`:

* ``main``: the real vocabulary (Zipf by default), plain maximum-likelihood
  refits; heterozygosity, support size, survival by frequency bucket and the
  tail mass against their exact expectations (THEORY.md D1, D3; the tail mass
  is a martingale);
* ``absorption``: a small vocabulary where the mean absorption time has an
  exact linear solve (D4) and the absorbing category's law is p0 (D2); the
  Kimura diffusion value is shown beside it with its error;
* ``bias``: the sampler transforms (temperature, top-k, top-p) and additive
  smoothing against the plain chain, with the infinite-sample drift of
  :func:`theory.categorical.deterministic_trajectory` beside the simulation.
  The smoothed chain's heterozygosity has an exact expectation and is tested;
  top-k's support bound is checked on every chain.

Importable from notebooks: ``run_study(validate(StudyConfig(...)))`` returns
a :class:`~experiments.common.Study`; ``write_outputs(study, dir)`` writes
everything. The command line is :mod:`experiments.categorical_chain`, whose
flags are made from :class:`StudyConfig`.
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np

from experiments import common
from experiments.common import MAX_SIZE, setting

FIELDS = (
    "support",
    "entropy",
    "heterozygosity",
    "tv",
    "kl",
    "tail_mass",
    "mode_mass",
    "absorbed",
)
PART_INDEX = {"main": 0, "absorption": 1, "bias": 2}


DISTRIBUTIONS = ("zipf", "uniform")


@dataclasses.dataclass(frozen=True)
class StudyConfig(common.CommonSettings):
    """Everything that determines a categorical-chain study's numbers (and its flags)."""

    distribution: str = setting("zipf", "Real distribution: zipf or uniform.")
    num_categories: int = setting(1000, "Vocabulary size K.", high=MAX_SIZE)
    zipf_beta: float = setting(1.1, "Zipf exponent beta: p_i proportional to i^-beta.")
    probs_file: str | None = setting(
        None, "A probability vector (.npy or text) to use as the real distribution."
    )
    sample_size: int = setting(1000, "Tokens drawn per generation (M).", high=MAX_SIZE)
    num_chains: int = setting(2000, "Independent chains of the main run (C).", high=MAX_SIZE)
    generations: int = setting(300, "Number of fits per chain in the main run (G).", high=MAX_SIZE)
    tail_rank: int | None = setting(
        None, "The tail is every category of rank > tail_rank (K/10).", high=MAX_SIZE
    )
    absorption_categories: int = setting(3, "Categories of the absorption run (top ranks).")
    absorption_sample_size: int = setting(30, "M of the absorption run.")
    absorption_chains: int = setting(
        10_000, "Chains of the absorption run (0: skip).", high=MAX_SIZE
    )
    absorption_generations: int = setting(600, "Generations of the absorption run.", high=MAX_SIZE)
    temperatures: tuple[float, ...] = setting(
        (0.8, 1.25), "Sampling temperatures of the bias part."
    )
    top_ks: tuple[int, ...] = setting((100,), "top-k truncations of the bias part.", high=MAX_SIZE)
    top_ps: tuple[float, ...] = setting((0.9,), "top-p (nucleus) truncations of the bias part.")
    smoothing: float = setting(0.5, "Additive smoothing alpha of the bias part (0: skip).")
    bias_chains: int = setting(
        500, "Chains per bias configuration (0: skip the part).", high=MAX_SIZE
    )
    bias_generations: int = setting(100, "Generations of the bias part.", high=MAX_SIZE)


def validate(config: StudyConfig) -> StudyConfig:
    """Raises ValueError('--flag=value: reason') for the first bad setting.

    Every setting is checked, also those of a part that is switched off (the
    absorption settings with ``absorption_chains=0``, the bias settings with
    ``bias_chains=0``), and the study must fit in memory.
    """
    bad = common.bad
    common.check_settings(config)
    if config.distribution not in DISTRIBUTIONS:
        bad("distribution", config.distribution, "choose zipf or uniform")
    if config.num_categories < 2:
        bad("num_categories", config.num_categories, "need at least 2 categories")
    if not config.zipf_beta >= 0:
        bad("zipf_beta", config.zipf_beta, "must be a finite number >= 0")
    for name in ("sample_size", "num_chains", "generations", "absorption_sample_size"):
        if getattr(config, name) < 1:
            bad(name, getattr(config, name), "must be >= 1")
    for name in ("absorption_chains", "bias_chains"):
        if getattr(config, name) < 0:
            bad(name, getattr(config, name), "must be >= 0 (0 skips the part)")
    for name in ("absorption_generations", "bias_generations"):
        if getattr(config, name) < 1:
            bad(name, getattr(config, name), "must be >= 1")
    k = config.num_categories
    if config.probs_file is not None:
        k = len(load_probs(config.probs_file))  # the file sets K
    if config.tail_rank is not None and not 0 <= config.tail_rank < k:
        bad("tail_rank", config.tail_rank, f"must be in [0, K={k})")
    ka, ma = config.absorption_categories, config.absorption_sample_size
    if not 2 <= ka <= k:
        bad("absorption_categories", ka, f"must be in [2, K={k}]")
    from theory.categorical import MAX_EXACT_STATES

    # The exact solve enumerates compositions of M into K parts.
    states = math.comb(ma + ka - 1, ka - 1)
    if states > MAX_EXACT_STATES:
        bad(
            "absorption_sample_size",
            ma,
            f"the exact solve needs {states:,} states with {ka} categories "
            f"(at most {MAX_EXACT_STATES:,}); lower it or absorption_categories",
        )
    for t in config.temperatures:
        if not t > 0:
            bad("temperatures", t, "every temperature must be finite and > 0")
    for top_k in config.top_ks:
        if not 1 <= top_k <= k:
            bad("top_ks", top_k, f"every top-k must be in [1, K={k}]")
    for top_p in config.top_ps:
        if not 0 < top_p <= 1:
            bad("top_ps", top_p, "every top-p must be in (0, 1]")
    if not config.smoothing >= 0:
        bad("smoothing", config.smoothing, "must be a finite number >= 0")
    common.check_memory(memory_runs(config, k), config.x64, config.chunk_chains)
    return config


def memory_runs(config: StudyConfig, k: int):
    """The study's runs as the memory model sees them (:mod:`experiments.common.memory`):
    each chain holds and draws K counts per generation."""
    cat = dict(
        fields=len(FIELDS) + 8,
        elements_flag=("num_categories", k),
        advice="use a smaller vocabulary or fewer chains (--chunk_chains)",
        columns=60,
    )
    yield common.RunSize(
        ("num_chains", config.num_chains),
        ("generations", config.generations),
        elements=k,
        state_floats=k,
        **cat,
    )
    if config.absorption_chains > 0:
        ka = config.absorption_categories
        yield common.RunSize(
            ("absorption_chains", config.absorption_chains),
            ("absorption_generations", config.absorption_generations),
            elements=ka,
            state_floats=ka,
            **dict(cat, elements_flag=("absorption_categories", ka)),
        )
    if config.bias_chains > 0:
        num = 1 + len(config.temperatures) + len(config.top_ks) + len(config.top_ps) + 1
        g = config.bias_generations
        for _ in range(num):
            yield common.RunSize(
                ("bias_chains", config.bias_chains),
                ("bias_generations", g),
                elements=k,
                state_floats=k,
                snapshots=g + 1,
                snapshot_fields=1,
                **cat,
            )


@dataclasses.dataclass
class Run:
    """One simulated configuration and its theory curves (generations 0..G)."""

    label: str
    part: str
    vocabulary: object  # sim.families.categorical.Vocabulary
    sample_size: int
    settings: dict  # smoothing, temperature, top_k, top_p
    result: object  # sim.parallel.SimulationResult
    theory: dict  # name -> float64 array over generations (or scalars)
    bucket_edges: tuple

    @property
    def bucket_labels(self) -> tuple[str, ...]:
        """'rank 1', 'ranks 2-10', ... for the rank buckets (lo, hi] of ``bucket_edges``."""
        lows = (0, *self.bucket_edges[:-1])
        return tuple(rank_label(lo, hi) for lo, hi in zip(lows, self.bucket_edges, strict=True))


Study = common.Study
report_generations = common.report_generations


def rank_label(lo: int, hi: int) -> str:
    """'rank 1' or 'ranks 2-10' for the bucket of ranks (lo, hi]."""
    return f"rank {hi}" if hi == lo + 1 else f"ranks {lo + 1}-{hi}"


def vocabulary(config):
    """The real distribution of the main and bias parts."""
    from sim.families.categorical import Vocabulary

    if config.probs_file:
        return Vocabulary.from_probs(
            load_probs(config.probs_file), os.path.basename(config.probs_file)
        )
    if config.distribution == "uniform":
        return Vocabulary.uniform(config.num_categories)
    return Vocabulary.zipf(config.num_categories, config.zipf_beta)


def load_probs(path: str) -> np.ndarray:
    """A probability vector (K >= 2 real entries) from ``.npy`` or a text file of numbers.

    Refused with ``ValueError('--probs_file=path: reason')``: a missing path, a
    directory, anything but a 1-D array (a 2-D array is not flattened), complex
    or boolean entries, fewer than 2 entries, and a vector that is not a
    probability vector (:func:`sim.families.categorical.check_probability_vector`).
    """
    from sim.families.categorical import check_probability_vector

    def refuse(why):
        raise ValueError(f"--probs_file={path}: {why}")

    if not path:
        refuse("empty; give a file")
    if not os.path.exists(path):
        refuse("no such file")
    if os.path.isdir(path):
        refuse("a directory, not a file")
    try:
        if path.endswith(".npy"):
            p = np.load(path, allow_pickle=False)
        else:
            p = np.loadtxt(path, ndmin=1)
    except (ValueError, OSError, EOFError) as err:
        refuse(f"not a vector of numbers ({err})")
    if not isinstance(p, np.ndarray):
        refuse("not one array (give a .npy array or a text file)")
    if p.dtype.kind in "cb":
        kind = "complex" if p.dtype.kind == "c" else "boolean"
        refuse(f"{kind} entries (dtype {p.dtype}); give real probabilities")
    if p.dtype.kind not in "iuf":
        refuse(f"entries of dtype {p.dtype}; give real probabilities")
    if p.ndim != 1:
        refuse(f"a {p.ndim}-D array of shape {p.shape}; give a vector (1-D)")
    if p.size < 2:
        refuse(f"{p.size} entr{'y' if p.size == 1 else 'ies'}; K must be >= 2")
    try:
        return check_probability_vector(p.astype(np.float64), "probs_file")
    except ValueError as err:
        refuse(str(err))


def absorption_vocabulary(config):
    """The first ``absorption_categories`` of the main vocabulary, renormalised."""
    from sim.families.categorical import Vocabulary

    p = np.sort(vocabulary(config).probs)[::-1][: config.absorption_categories]
    return Vocabulary.from_probs(p / p.sum(), f"top{len(p)}")


def run_key(root, part: str, index: int):
    """Each run's key depends on its part and its index in that part only."""
    import jax

    return jax.random.fold_in(jax.random.fold_in(root, PART_INDEX[part]), index)


def bias_settings(config) -> list[dict]:
    """The bias part's configurations: the plain chain first."""
    out = [dict(label="plain")]
    out += [dict(label=f"tau={t:g}", temperature=t) for t in config.temperatures]
    out += [dict(label=f"top_k={k}", top_k=k) for k in config.top_ks]
    out += [dict(label=f"top_p={p:g}", top_p=p) for p in config.top_ps]
    if config.smoothing > 0:
        out.append(dict(label=f"alpha={config.smoothing:g}", smoothing=config.smoothing))
    return out


def bucket_means(values: np.ndarray, edges) -> np.ndarray:
    """Means over rank buckets of per-category values sorted by rank (last axis)."""
    lows = (0, *edges[:-1])
    return np.stack([values[..., a:b].mean(-1) for a, b in zip(lows, edges, strict=True)], -1)


def main_theory(vocab, m: int, g: int, edges, tail_rank: int) -> dict:
    """Exact expectations of the plain chain for generations 0..G."""
    import jax.numpy as jnp

    from theory import categorical as tc

    n = np.arange(g + 1)
    p = np.sort(vocab.probs)[::-1]
    surv = np.asarray(tc.survival_probability(n, m, jnp.asarray(p)), np.float64)  # (G+1, K)
    h = tc.expected_heterozygosity(jnp.asarray(n), m, jnp.asarray(vocab.probs))
    bern = surv * (1 - surv)  # per-category Bernoulli variances of "still present"
    sizes = np.diff((0, *edges))
    return dict(
        heterozygosity=np.asarray(h, np.float64),
        support=surv.sum(-1),
        survival=bucket_means(surv, edges),
        tail_mass=np.full(g + 1, p[tail_rank:].sum()),
        # Variances if categories survived independently: floors for the standard
        # errors where no chain varies (e.g. every chain keeps the top token).
        support_var_indep=bern.sum(-1),
        survival_var_indep=bucket_means(bern, edges) / sizes,
    )


def resolution(run: Run) -> float:
    """Rounding of recorded values in the run's float type (16 ulps of 1)."""
    return 16 * float(np.finfo(run.result.final.probs.dtype).eps)


def compare_main(run: Run, c: int) -> list:
    """D1, D3 and the tail martingale at the report generations.

    The standard error of a survival fraction (or the support size) is the
    larger of the empirical one and the one categories surviving independently
    would give under the theory: with the top token kept by every chain the
    empirical spread is 0, yet the theory's 0.998 is a Bernoulli mean. For a
    one-category bucket the floor is the exact binomial standard error.
    """
    res, th = run.result, run.theory
    rows = []
    for n in report_generations(len(res.generations) - 1):
        row = dict(config=run.label, generation=n)
        for f, stat in (
            ("heterozygosity", "E[H] (D1)"),
            ("support", "E[support] (D3)"),
            ("tail_mass", "E[tail mass] (martingale)"),
        ):
            mo = res.moments[f]
            se = mo.sem[n]
            if f == "support":
                se = max(se, np.sqrt(th["support_var_indep"][n] / c))
            rows.append(
                common.Comparison(
                    statistic=stat,
                    empirical=mo.mean[n],
                    se=se,
                    theory=th[f][n],
                    resolution=resolution(run) * max(1.0, abs(th[f][n])),
                    **row,
                )
            )
        surv = res.moments["survival"]
        lows = (0, *run.bucket_edges[:-1])
        for b, (lo, hi) in enumerate(zip(lows, run.bucket_edges, strict=True)):
            rows.append(
                common.Comparison(
                    statistic=f"survival {rank_label(lo, hi)} (D3)",
                    empirical=surv.mean[n, b],
                    se=max(surv.sem[n, b], np.sqrt(th["survival_var_indep"][n, b] / c)),
                    theory=th["survival"][n, b],
                    resolution=resolution(run),
                    **row,
                )
            )
    return rows


def compare_absorption(run: Run) -> list:
    """Mean absorption time (exact D4) and the absorbing category's law (D2)."""
    res, th = run.result, run.theory
    g = len(res.generations) - 1
    t = res.first_passage["absorbed"]
    censored = int(np.sum(t < 0))
    row = dict(config=run.label, generation=g)
    t_obs = t[t >= 0].astype(np.float64)
    rows = [
        common.Comparison(
            statistic="E[absorption time] (D4 exact)",
            empirical=float(t_obs.mean()) if t_obs.size else float("nan"),
            se=float(t_obs.std(ddof=1) / np.sqrt(t_obs.size)) if t_obs.size > 1 else float("nan"),
            theory=th["absorption_exact"],
            testable=censored == 0 and t_obs.size > 1,
            note=(
                f"diffusion {th['absorption_diffusion']:.4g}"
                + (f"; {censored} chains not absorbed by G={g}" if censored else "")
            ),
            **row,
        )
    ]
    absorbed = t >= 0
    winner = np.argmax(res.final.probs[absorbed], axis=-1)
    p0 = run.vocabulary.probs
    na = int(absorbed.sum())
    for i in range(len(p0)):
        rows.append(
            common.Comparison(
                statistic=f"P(fixes on category {i}) (D2)",
                empirical=float(np.mean(winner == i)) if na else float("nan"),
                se=common.binomial_se(float(p0[i]), max(na, 1)),
                theory=float(p0[i]),
                testable=na > 0,
                **row,
            )
        )
    return rows


def compare_bias(run: Run) -> list:
    """Exact checks that hold at finite M under a sampler transform or smoothing."""
    res, th = run.result, run.theory
    g = len(res.generations) - 1
    rows = []
    s = run.settings
    if s.get("smoothing"):
        for n in report_generations(g):
            mo = res.moments["heterozygosity"]
            rows.append(
                common.Comparison(
                    config=run.label,
                    statistic="E[H] smoothed (exact affine)",
                    generation=n,
                    empirical=mo.mean[n],
                    se=mo.sem[n],
                    theory=th["heterozygosity_exact"][n],
                    resolution=resolution(run),
                )
            )
    if s.get("top_k") is not None:
        snaps = res.snapshots["support"][res.snapshot_generations >= 2]
        worst = float(snaps.max()) if snaps.size else 0.0
        k = s["top_k"]
        rows.append(
            common.Comparison(
                config=run.label,
                statistic="max support over chains, n>=2 <= k",
                generation=g,
                empirical=worst,
                se=0.0,
                theory=float(min(worst, k)),
                note=f"bound k={k}",
            )
        )
    return rows


def bias_theory(vocab, s: dict, n: np.ndarray, mb: int, tail_rank: int) -> dict:
    """The infinite-M drift of a bias setting ``s`` (for smoothing: the exact E[H])."""
    import jax.numpy as jnp

    from theory import categorical as tc

    gb = len(n) - 1
    traj = np.asarray(
        tc.deterministic_trajectory(
            n,
            jnp.asarray(vocab.probs),
            temperature=s.get("temperature", 1.0),
            top_k=s.get("top_k"),
            top_p=s.get("top_p"),
        ),
        np.float64,
    )  # (G+1, K), the infinite-M drift
    ranks = vocab.ranks
    th = dict(
        support_limit=(traj > 0).sum(-1).astype(np.float64),
        heterozygosity_limit=1 - (traj**2).sum(-1),
        tail_mass_limit=traj[:, ranks > tail_rank].sum(-1),
        mode_mass_limit=traj.max(-1),
    )
    if s.get("smoothing"):
        # Smoothing has no infinite-M drift to draw (alpha/M -> 0); its
        # heterozygosity has an exact finite-M expectation instead.
        th = {name: np.full(gb + 1, np.nan) for name in th}
        th["heterozygosity_exact"] = np.asarray(
            tc.expected_heterozygosity(
                jnp.asarray(n), mb, jnp.asarray(vocab.probs), smoothing=s["smoothing"]
            ),
            np.float64,
        )
        th["heterozygosity_limit"] = th["heterozygosity_exact"]
    return th


def run_study(config, progress: bool = True) -> Study:
    """Simulates every part of ``config`` and compares with theory."""
    with common.float64():
        return _run_study(config, progress)


def _run_study(config, progress: bool) -> Study:
    import jax.numpy as jnp

    from sim.chain import root_key
    from sim.families.categorical import default_bucket_edges
    from sim.runners import run_categorical
    from theory import categorical as tc

    dtype = jnp.float64 if config.x64 else jnp.float32
    root = root_key(config.seed, config.prng_impl)
    vocab = vocabulary(config)
    k = vocab.num_categories
    edges = default_bucket_edges(k)
    tail_rank = config.tail_rank if config.tail_rank is not None else max(1, k // 10)
    common_kw = dict(
        dtype=dtype, chunk_chains=config.chunk_chains, progress=None if progress else False
    )
    runs, rows = [], []

    def simulate(label, part, index, vocab, m, c, g, settings, **kw):
        return common.timed_run(
            run_categorical,
            label,
            progress,
            f", K={vocab.num_categories}, M={m}",
            key=run_key(root, part, index),
            vocabulary=vocab,
            sample_size=m,
            num_chains=c,
            num_generations=g,
            tail_rank=min(tail_rank, vocab.num_categories),
            bucket_edges=kw.pop("bucket_edges", default_bucket_edges(vocab.num_categories)),
            **{key: v for key, v in settings.items() if key != "label"},
            **kw,
            **common_kw,
        )

    # -- main
    m, g, c = config.sample_size, config.generations, config.num_chains
    res = simulate("main", "main", 0, vocab, m, c, g, {}, bucket_edges=edges)
    with common.timing(res.timings, "theory_s"):
        th = main_theory(vocab, m, g, edges, tail_rank)
    run = Run("main", "main", vocab, m, {}, res, th, edges)
    runs.append(run)
    rows += compare_main(run, c)

    # -- absorption
    if config.absorption_chains > 0:
        av = absorption_vocabulary(config)
        ma, ga, ca = (
            config.absorption_sample_size,
            config.absorption_generations,
            config.absorption_chains,
        )
        label = f"absorb K={av.num_categories} M={ma}"
        res = simulate(label, "absorption", 0, av, ma, ca, ga, {})
        with common.timing(res.timings, "theory_s"):
            th = dict(
                absorption_exact=float(tc.mean_absorption_time(ma, jnp.asarray(av.probs), "exact")),
                absorption_diffusion=float(
                    tc.mean_absorption_time(ma, jnp.asarray(av.probs), "diffusion")
                ),
            )
        run = Run(label, "absorption", av, ma, {}, res, th, default_bucket_edges(av.num_categories))
        runs.append(run)
        rows += compare_absorption(run)

    # -- bias
    if config.bias_chains > 0:
        gb, cb, mb = config.bias_generations, config.bias_chains, config.sample_size
        n = np.arange(gb + 1)
        for i, s in enumerate(bias_settings(config)):
            label = s["label"]
            res = simulate(
                label,
                "bias",
                i,
                vocab,
                mb,
                cb,
                gb,
                s,
                bucket_edges=edges,
                snapshot_generations=tuple(range(gb + 1)),
                snapshot_fields=("support",),
            )
            with common.timing(res.timings, "theory_s"):
                th = bias_theory(vocab, s, n, mb, tail_rank)
            run = Run(label, "bias", vocab, mb, s, res, th, edges)
            runs.append(run)
            rows += compare_bias(run)

    return common.judged(config, runs, rows)


# ----------------------------------------------------------------------------- outputs


def summary_rows(study: Study):
    """Tidy per-generation rows: empirical moments beside the theory columns."""
    for run in study.runs:
        res, th = run.result, run.theory
        for n in res.generations:
            row = dict(
                part=run.part,
                config=run.label,
                vocabulary=run.vocabulary.name,
                sample_size=run.sample_size,
                generation=int(n),
            )
            common.moment_columns(row, res.moments, FIELDS, n, ("mean", "sem"))
            surv = res.moments["survival"]
            for b in range(surv.mean.shape[1]):
                row[f"survival_b{b}_mean"] = surv.mean[n, b]
                row[f"survival_b{b}_sem"] = surv.sem[n, b]
            common.theory_columns(row, th, n, len(res.generations))
            yield row


def write_outputs(
    study: Study, output_dir: str, flags_dict: dict | None = None, wall_s: float | None = None
) -> list[str]:
    """Writes CSVs, figures (PNG + PDF), per-chain states (.npz) and a manifest."""
    from experiments import categorical_figures

    return common.write_study(
        study,
        output_dir,
        experiment="categorical_chain",
        summary_rows=summary_rows(study),
        run_arrays=lambda run: dict(
            final_probs=run.result.final.probs,
            absorption_time=run.result.first_passage["absorbed"],
            real_probs=run.vocabulary.probs,
        ),
        plot_all=categorical_figures.plot_all,
        flags_dict=flags_dict,
        wall_s=wall_s,
    )
