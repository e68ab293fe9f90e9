r"""Many chains at once: chunks, devices, deterministic reductions, progress.

:func:`simulate` runs ``num_chains`` independent chains of a step function for
``num_generations`` generations and returns, on the host:

* per-generation cross-chain moments of every record field (mean and central
  moments 2-4, in float64), from which means, variances and their Monte-Carlo
  standard errors follow;
* per-chain values of selected fields at selected *snapshot* generations (for
  quantiles, distribution tests and figures);
* the per-chain final parameters.

Memory. Per chunk of ``P`` chains the device holds the chain state (O(P)),
the transient samples of one generation (O(P * M) for the ``sample`` path,
O(P) for ``exact``), and per-generation block summaries. The host keeps block
summaries, O(num_chains / block_size * generations * fields), plus snapshots,
O(num_chains * snapshots * snapshot_fields). Nothing is O(chains *
generations * M), and nothing is O(chains * generations) unless you ask for
every generation as a snapshot.

Reproducibility. Chain ``i`` uses keys derived from ``(root, i, t)`` only
(:mod:`sim.chain`), so per-chain values are the same for any chunk size and
device count. Cross-chain moments are first reduced on the device over fixed
blocks of ``block_size`` consecutive chains by an explicit pairwise tree (the
order of every addition is fixed), then combined on the host in float64 over
all blocks at once. Both steps depend on the number of chains and the block
size only, so the moments are bit-identical across chunk sizes and device
counts too.

Layout (import from ``sim.parallel``; the modules are the implementation):

* ``plan``: :func:`plan_run` and :class:`Plan` (blocks, chunks, segments),
  devices and the mesh, host/device transfers;
* ``segment``: the jitted segment (scan of the vmapped step) and
  :func:`initial_info`;
* ``reduction``: block moments, their float64 merge, :class:`Moments`,
  :class:`SimulationResult`;
* ``driver``: :func:`simulate` and :func:`simulate_points`.
"""

from sim.parallel.driver import simulate, simulate_points
from sim.parallel.plan import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_MAX_CHUNK_CHAINS,
    DEFAULT_MAX_CHUNK_ELEMENTS,
    DEFAULT_MAX_SEGMENT,
    Plan,
    default_mesh,
    plan_run,
)
from sim.parallel.plan import _devices as _devices
from sim.parallel.plan import _fetch as _fetch
from sim.parallel.plan import _put as _put
from sim.parallel.reduction import Moments, SimulationResult
from sim.parallel.reduction import _combine_blocks as _combine_blocks
from sim.parallel.segment import _segment_fn as _segment_fn
from sim.parallel.segment import _with_theta as _with_theta
from sim.parallel.segment import initial_info

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "DEFAULT_MAX_CHUNK_CHAINS",
    "DEFAULT_MAX_CHUNK_ELEMENTS",
    "DEFAULT_MAX_SEGMENT",
    "Moments",
    "Plan",
    "SimulationResult",
    "default_mesh",
    "initial_info",
    "plan_run",
    "simulate",
    "simulate_points",
]
