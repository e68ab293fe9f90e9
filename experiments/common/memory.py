"""How much memory a study would need, from the README's memory model, checked before it runs.

Per run of ``C`` chains over ``G`` generations (README, "How it works",
"Memory model"; ``b`` bytes per float, 4 or 8 with ``--x64``; ``F`` record
fields; block = 1,024 chains or C rounded up to a power of two; nb = ceil(C /
block)):

* device: ``chunk x (600 B + 4 x E x b)`` with ``E`` the per-chain elements a
  generation draws (M samples on the sample path, K counts for a vocabulary,
  a stored pool for subsample; 0 on the exact path), ``chunk`` lanes per
  compiled call: at most 65,536 and ``chunk x E <= 2^24``, never less than one
  block (or ``--chunk_chains``);
* host: the block moments' merge ``7 x nb G F 4 b + 2 (G+1) F 4 x 8``,
  snapshots ``3 S C Fs b``, final states ``2 C x state bytes``, and the
  summary table (about 100 bytes per cell, ``(G+1)`` rows per run);
* about 400 MiB of baseline and fixed costs (imports, compiled programs).

Runs of a study follow each other: their host terms add up (every result is
kept for the report), the largest device term counts once. A study whose
estimate exceeds the machine's memory (physical memory, or the cgroup limit
when lower) is refused, naming the setting that costs most and what to do
instead. It is an estimate (within 5 % of measured peaks for the engine's
terms, ``bench/memory.py``), used only to refuse what cannot fit.
"""

from __future__ import annotations

import dataclasses
import math
import os

BLOCK = 1024
MAX_CHUNK_LANES = 65_536
MAX_CHUNK_ELEMENTS = 1 << 24
LANE_BYTES = 600
FIXED_BYTES = 400 << 20
CELL_BYTES = 100


@dataclasses.dataclass(frozen=True)
class RunSize:
    """What one run of a study costs, and which flags set its sizes."""

    chains: tuple[str, int]  # (flag, C)
    generations: tuple[str, int]  # (flag, G)
    fields: int  # F, record fields
    elements: int = 0  # E, per-chain elements drawn per generation (0: exact path)
    elements_flag: tuple[str, int] | None = None  # the flag that sets E, and its value
    advice: str = ""  # what to do when E is what does not fit
    snapshots: int = 0  # S, snapshot generations
    snapshot_fields: int = 0  # Fs
    state_floats: int = 2  # floats per chain of the final state
    columns: int = 30  # summary-table columns


def run_terms(r: RunSize, b: int, chunk_chains: int | None) -> dict:
    """The model's terms of one run in bytes: {"device", "generations", "chains"}."""
    c, g = r.chains[1], r.generations[1]
    block = min(BLOCK, 1 << max(0, math.ceil(math.log2(max(c, 1)))))
    nb = -(-c // block)
    if chunk_chains is None:
        chunk_chains = max(block, min(MAX_CHUNK_LANES, MAX_CHUNK_ELEMENTS // max(1, r.elements)))
    chunk = min(nb * block, -(-chunk_chains // block) * block)
    device = chunk * (LANE_BYTES + 4 * r.elements * b)
    per_generation = 7 * nb * g * r.fields * 4 * b + 2 * (g + 1) * r.fields * 4 * 8
    per_generation += (g + 1) * r.columns * CELL_BYTES
    per_chain = 3 * r.snapshots * c * r.snapshot_fields * b + 2 * c * r.state_floats * b
    return dict(device=device, generations=per_generation, chains=per_chain)


def available_bytes() -> int:
    """Physical memory, or the cgroup's limit when it is lower."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        total = 1 << 62
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
            if text.isdigit():
                total = min(total, int(text))
        except OSError:
            continue
    return total


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{n:.0f} B"
        n /= 1024
    return f"{n:.3g} EiB"


def estimate(runs, x64: bool, chunk_chains: int | None = None) -> tuple[float, tuple]:
    """(bytes the study needs, (the flag, its value, the advice) of its largest term)."""
    b = 8 if x64 else 4
    host = 0.0
    device = 0.0
    worst = (0.0, None)
    for r in runs:
        t = run_terms(r, b, chunk_chains)
        host += t["generations"] + t["chains"]
        device = max(device, t["device"])
        for name, size in t.items():
            if size > worst[0]:
                if name == "device" and r.elements_flag is not None:
                    who = (*r.elements_flag, r.advice or "use fewer chains")
                elif name == "generations":
                    who = (*r.generations, "use fewer generations")
                else:
                    who = (*r.chains, "use fewer chains")
                worst = (size, who)
    return FIXED_BYTES + host + device, worst[1]


def check_memory(runs, x64: bool, chunk_chains: int | None = None, limit: int | None = None):
    """Refuses a study that cannot fit: ``ValueError('--flag=value: needs about ...')``."""
    runs = list(runs)
    if not runs:
        return
    need, who = estimate(runs, x64, chunk_chains)
    have = available_bytes() if limit is None else limit
    if need > have and who is not None:
        flag, value, advice = who
        raise ValueError(
            f"--{flag}={value}: the study would need about {human(need)} of memory "
            f'(README, "Memory model"), more than the {human(have)} here; {advice}'
        )
