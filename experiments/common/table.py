"""The theory-versus-simulation table: comparisons, verdicts, formatting, summary rows.

A *comparison* sets one empirical cross-chain statistic beside its closed
form: ``z = (empirical - theory) / se`` with ``se`` the Monte-Carlo standard
error of the empirical statistic. With ``num_tests`` comparisons and a
family-wise false-failure rate ``alpha`` the per-test threshold is the
two-sided normal quantile at ``alpha / num_tests`` (Bonferroni), so a correct
simulator fails a whole ``--check`` with probability at most ``alpha``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from statistics import NormalDist

import numpy as np

PASS, FAIL, SKIP = "ok", "FAIL", "n/a"


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


def report_generations(g: int, marks: Iterable[int] = (1, 10, 100, 1000, 10_000)) -> list[int]:
    """Generations shown in a table: the ``marks`` (1, 10, 100, ...) below G, and G."""
    return [n for n in marks if n < g] + [g]


def counts_line(rows: Sequence[Comparison], z_crit: float) -> str:
    tested = [r for r in rows if r.testable]
    failed = [r for r in tested if r.verdict == FAIL]
    return (
        f"{len(tested)} comparisons tested at |z| <= {z_crit:.2f} (Bonferroni), "
        f"{len(failed)} failed, {len(rows) - len(tested)} not testable"
    )


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
    lines.append(counts_line(rows, z_crit))
    return "\n".join(lines)


def format_sections(sections: Iterable[tuple[str, Sequence[Comparison]]], z_crit: float) -> str:
    """One table, a section per part (each with its own header); empty sections left out."""
    lines = []
    every: list[Comparison] = []
    for title, rows in sections:
        if not rows:
            continue
        every += rows
        lines.append(f"== {title}")
        lines += format_table(rows, z_crit).splitlines()[:-1]
        lines.append("")
    lines.append(counts_line(every, z_crit))
    return "\n".join(lines)


def moment_columns(
    row: dict, moments: dict, fields: Iterable[str], n: int, stats=("mean", "sem", "var")
) -> dict:
    """Adds ``<field>_<stat>`` (the cross-chain moments at generation n) to a summary row."""
    for f in fields:
        mo = moments[f]
        for s in stats:
            row[f"{f}_{s}"] = getattr(mo, s)[n]
    return row


def theory_columns(row: dict, theory: dict, n: int, num_rows: int) -> dict:
    """Adds ``theory_<name>`` for every theory curve over the ``num_rows`` generations
    (``theory_<name>_b<j>`` for a curve with a second axis); scalars are left out."""
    for name, v in theory.items():
        v = np.asarray(v)
        if v.ndim == 1 and v.shape[0] == num_rows:
            row[f"theory_{name}"] = v[n]
        elif v.ndim == 2 and v.shape[0] == num_rows:
            for b in range(v.shape[1]):
                row[f"theory_{name}_b{b}"] = v[n, b]
    return row
