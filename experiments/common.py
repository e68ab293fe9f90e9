"""Reporting shared by every experiment: verdicts, tables, manifests, files.

A *comparison* sets one empirical cross-chain statistic beside its closed
form: ``z = (empirical - theory) / se`` with ``se`` the Monte-Carlo standard
error of the empirical statistic. With ``num_tests`` comparisons and a
family-wise false-failure rate ``alpha`` the per-test threshold is the
two-sided normal quantile at ``alpha / num_tests`` (Bonferroni), so a correct
simulator fails a whole ``--check`` with probability at most ``alpha``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Sequence
from statistics import NormalDist

import numpy as np
from absl import flags

from sim.io import atomic_write, environment  # noqa: F401  (re-exported)

PASS, FAIL, SKIP = "ok", "FAIL", "n/a"

# Several processes (README, "Several hosts"): flags of every experiment CLI.
flags.DEFINE_bool(
    "distributed",
    False,
    "Join a multi-process run (jax.distributed.initialize) before JAX starts: chains are "
    "sharded over the devices of all processes and process 0 writes the outputs. On a TPU "
    "pod slice the other three flags can be left out.",
)
flags.DEFINE_string(
    "coordinator_address", None, "With --distributed: host:port of process 0 (default: detect)."
)
flags.DEFINE_integer(
    "num_processes", None, "With --distributed: the number of processes (default: detect)."
)
flags.DEFINE_integer(
    "process_id", None, "With --distributed: this process's index, 0.. (default: detect)."
)

_DISTRIBUTED_FLAGS = ("coordinator_address", "num_processes", "process_id")


@dataclasses.dataclass
class Comparison:
    """One row of a theory-versus-simulation table.

    ``resolution`` is the numerical resolution of ``empirical`` (float rounding of
    the recorded values, e.g. a few float32 ulps): z uses ``hypot(se, resolution)``
    so that a statistic with no Monte-Carlo spread (every chain at 1.0) is not
    failed for a last-bit difference.
    """

    config: str
    statistic: str
    generation: int
    empirical: float
    se: float
    theory: float
    testable: bool = True
    note: str = ""
    z: float = float("nan")
    verdict: str = SKIP
    resolution: float = 0.0

    def judge(self, z_crit: float) -> None:
        if not self.testable:
            self.verdict = SKIP
            return
        diff = self.empirical - self.theory
        scale = math.hypot(self.se, self.resolution)
        if scale > 0:
            self.z = diff / scale
        else:
            self.z = 0.0 if diff == 0 else math.copysign(math.inf, diff)
        self.verdict = PASS if abs(self.z) <= z_crit else FAIL


def z_threshold(alpha: float, num_tests: int) -> float:
    """Two-sided Bonferroni threshold for ``num_tests`` tests at family rate alpha."""
    if not 0 < alpha < 1:
        raise ValueError(f"false-failure rate alpha={alpha} must be in (0, 1)")
    per_test = alpha / max(num_tests, 1)
    return NormalDist().inv_cdf(1 - per_test / 2)


def judge_all(rows: Sequence[Comparison], alpha: float) -> float:
    """Sets every row's z and verdict; returns the per-test threshold."""
    z_crit = z_threshold(alpha, sum(r.testable for r in rows))
    for r in rows:
        r.judge(z_crit)
    return z_crit


def binomial_se(p: float, n: int) -> float:
    """Standard error of a fraction of n Bernoulli(p) draws, under p."""
    return math.sqrt(max(p * (1.0 - p), 0.0) / n)


def mean_is_measurable(cv2: float, num_chains: int, max_skew: float = 0.1) -> bool:
    """Whether a cross-chain mean of a heavy-tailed positive quantity can be tested.

    Uses a log-normal with squared coefficient of variation ``cv2`` as a proxy:
    its skewness is (w + 2) sqrt(w - 1) with w = 1 + cv2, and the skewness of a
    mean of C draws is that over sqrt(C). A z-test at the 1e-4 level is only
    trustworthy when the mean is close to normal, so we require the mean's
    skewness to be at most ``max_skew``. Past that the sample mean is dominated
    by rare chains: it is typically far below its expectation and its own
    standard error is underestimated (DESIGN.md: at M=10, n=100, the CV of
    sigma^2 is about e^10).
    """
    if not math.isfinite(cv2):
        return False
    w = 1.0 + cv2
    return (w + 2.0) * math.sqrt(max(w - 1.0, 0.0)) / math.sqrt(num_chains) <= max_skew


def format_table(rows: Sequence[Comparison], z_crit: float) -> str:
    head = f"{'config':<14} {'statistic':<34} {'n':>5} {'empirical':>12} {'MC SE':>10} "
    head += f"{'theory':>12} {'z':>7}  verdict"
    lines = [head, "-" * len(head)]
    for r in rows:
        z = "" if not math.isfinite(r.z) else f"{r.z:7.2f}"
        lines.append(
            f"{r.config:<14} {r.statistic:<34} {r.generation:>5} {r.empirical:>12.5g} "
            f"{r.se:>10.3g} {r.theory:>12.5g} {z:>7}  {r.verdict}"
            + (f"  ({r.note})" if r.note else "")
        )
    tested = [r for r in rows if r.testable]
    failed = [r for r in tested if r.verdict == FAIL]
    lines.append(
        f"{len(tested)} comparisons tested at |z| <= {z_crit:.2f} (Bonferroni), "
        f"{len(failed)} failed, {len(rows) - len(tested)} not testable"
    )
    return "\n".join(lines)


def write_csv(path: str, rows: Iterable[dict]) -> None:
    rows = list(rows)
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)
    atomic_write(path, buf.getvalue())


def write_npz(path: str, arrays: dict) -> None:
    """Compressed ``.npz``, written atomically."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write(path, buf.getvalue())


def write_manifest(path: str, manifest: dict) -> None:
    atomic_write(path, json.dumps(manifest, indent=2, default=_json_default) + "\n")


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def enable_compilation_cache() -> None:
    """Keeps compiled programs on disk so that reruns skip compilation.

    Compilation dominates a default run's first minute (the Gaussian theory's
    grids and bisections take ~12 s per estimator on 2 cores). The cache lives in
    ``$MODEL_COLLAPSE_CACHE`` (default ``~/.cache/model_collapse_sim/jax``);
    set it to an empty string to disable. A directory already configured in
    ``jax_compilation_cache_dir`` is left as it is.
    """
    import jax

    if jax.config.jax_compilation_cache_dir:
        return
    path = os.environ.get(
        "MODEL_COLLAPSE_CACHE",
        os.path.join(os.path.expanduser("~"), ".cache", "model_collapse_sim", "jax"),
    )
    if path:
        jax.config.update("jax_compilation_cache_dir", path)
        # Eager theory compiles many small programs: keep them all.
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def parse_list(flags_obj, name: str, kind=int) -> tuple:
    """A list flag's items converted by ``kind`` (``ValueError('--name=item: ...')``)."""
    out = []
    for v in getattr(flags_obj, name):
        try:
            out.append(kind(v))
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise ValueError(f"--{name}={v}: not {what}") from None
    return tuple(out)


def config_from_flags(flags_obj, config_cls, convert: dict | None = None):
    """``config_cls`` (a dataclass) filled from the flags of the same names;
    ``convert[name](flags_obj, name)`` builds the fields a flag does not give as is
    (lists of numbers: :func:`parse_list`)."""
    convert = convert or {}
    values = {}
    for f in dataclasses.fields(config_cls):
        fn = convert.get(f.name)
        values[f.name] = fn(flags_obj, f.name) if fn else flags_obj[f.name].value
    return config_cls(**values)


def flag_values(flags_obj, config_cls) -> dict:
    """The flags that set a study's config, plus where and how it ran."""
    names = {f.name for f in dataclasses.fields(config_cls)} | {"output_dir", "check", "progress"}
    return {k: flags_obj[k].value for k in flags_obj if k in names}


def write_study(
    study,
    output_dir: str,
    *,
    experiment: str,
    summary_rows: Iterable[dict],
    run_arrays,
    plot_all,
    flags_dict: dict | None = None,
    wall_s: float | None = None,
) -> list[str]:
    """Writes a study's files: summary and comparison CSVs, per-chain arrays (.npz,
    ``run_arrays(run) -> {name: array}`` stored as ``"<run label>/<name>"``),
    figures (PNG + PDF, from ``plot_all(study, output_dir)``) and the manifest.

    ``study`` has ``config`` (a dataclass with ``seed``, ``prng_impl`` and
    ``false_failure_rate``), ``runs`` (each with ``label`` and
    ``result.timings``), ``comparisons``, ``z_crit``, ``env`` and
    ``num_failed``. Returns the paths written.
    """
    os.makedirs(output_dir, exist_ok=True)
    out = []
    p = os.path.join(output_dir, "summary.csv")
    write_csv(p, summary_rows)
    out.append(p)
    p = os.path.join(output_dir, "comparisons.csv")
    write_csv(p, (dataclasses.asdict(r) for r in study.comparisons))
    out.append(p)
    p = os.path.join(output_dir, "final_states.npz")
    arrays = {}
    for run in study.runs:
        key = run.label.replace("=", "").replace(" ", "_")
        arrays.update({f"{key}/{name}": v for name, v in run_arrays(run).items()})
    write_npz(p, arrays)
    out.append(p)
    out += plot_all(study, output_dir)
    p = os.path.join(output_dir, "manifest.json")
    cfg = dataclasses.asdict(study.config)
    manifest = dict(
        experiment=experiment,
        config=cfg,
        flags=flags_dict or cfg,
        seed=study.config.seed,
        prng_impl=study.config.prng_impl,
        environment=study.env,
        timings={r.label: r.result.timings for r in study.runs},
        wall_s=wall_s,
        false_failure_rate=study.config.false_failure_rate,
        z_threshold=study.z_crit,
        comparisons=dict(
            tested=sum(r.testable for r in study.comparisons),
            failed=study.num_failed,
            not_testable=sum(not r.testable for r in study.comparisons),
        ),
        outputs=[os.path.basename(x) for x in out],
    )
    write_manifest(p, manifest)
    out.append(p)
    return out


def distributed_from_flags(flags_obj) -> dict | None:
    """The arguments of :func:`sim.distributed.initialize` from ``--distributed`` and
    its three companions (None without ``--distributed``); ``ValueError('--flag=value:
    reason')`` for a bad or inconsistent one."""
    given = {k: flags_obj[k].value for k in _DISTRIBUTED_FLAGS if k in flags_obj}
    if "distributed" not in flags_obj or not flags_obj["distributed"].value:
        for k, v in given.items():
            if v is not None:
                raise ValueError(f"--{k}={v}: only used with --distributed")
        return None
    from sim import distributed

    try:
        return distributed.check_arguments(**given)
    except ValueError as e:
        raise ValueError(f"--{e}") from None


def run_cli(argv, flags_obj, make_config, report) -> None:
    """The body of every experiment's ``main``: check the flags, run, write, judge.

    ``make_config()`` builds and validates the study config from the flags
    (``ValueError('--flag=value: reason')`` on a bad one: printed as one line,
    exit status 2, before anything compiles); ``report`` is the study module
    (``run_study`` and ``write_outputs``). With ``--distributed`` the process
    joins the multi-process run first; every process computes, process 0 alone
    prints and writes, and every process exits with the same status.
    """
    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        sys.exit(2)
    try:
        config = make_config()
        dist = distributed_from_flags(flags_obj)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    main = True
    if dist is not None:  # before anything touches a JAX backend
        from sim import distributed

        distributed.initialize(**dist)
        main = distributed.is_main_process()
    t0 = time.perf_counter()
    study = report.run_study(config, progress=flags_obj.progress and main)
    if not main:  # computed its share; process 0 writes and reports
        if flags_obj.check and study.num_failed:
            sys.exit(1)
        return
    outputs = report.write_outputs(
        study,
        flags_obj.output_dir,
        flags_dict=flag_values(flags_obj, type(config)),
        wall_s=time.perf_counter() - t0,
    )
    finish(study, outputs, flags_obj.output_dir, t0, flags_obj.check)


def finish(study, outputs: list, output_dir: str, t0: float, check: bool) -> None:
    """Prints the table and where the files went; exits 1 on a failed ``--check``."""
    print(study.table)
    print(
        f"wrote {len(outputs)} files to {os.path.abspath(output_dir)} "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    if check and study.num_failed:
        print(f"check failed: {study.num_failed} comparison(s) outside tolerance", file=sys.stderr)
        sys.exit(1)


def subplots(nrow: int, ncol: int, title: str | None = None, width=5.0, height=3.6):
    """A (nrow, ncol) grid of axes (always 2-D) on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        nrow, ncol, figsize=(width * ncol, height * nrow), squeeze=False, layout="constrained"
    )
    if title:
        fig.suptitle(title)
    return fig, axes


def save_figure(fig, output_dir: str, name: str) -> list[str]:
    """Saves ``fig`` as PNG and PDF, closes it, and returns the paths."""
    import matplotlib.pyplot as plt

    paths = []
    for ext in ("png", "pdf"):
        p = os.path.join(output_dir, f"{name}.{ext}")
        fig.savefig(p, dpi=130 if ext == "png" else None, bbox_inches="tight")
        paths.append(p)
    plt.close(fig)
    return paths
