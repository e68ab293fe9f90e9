r"""Parameter sweeps: a declared grid, as few compiled programs as possible.

>>> from sim.sweep import sweep
>>> ds = sweep("gaussian", {"sample_size": [10, 100], "estimator": ["mle", "unbiased"]},
...            num_chains=1000, num_generations=50, progress=False)   # doctest: +SKIP
>>> ds.log_var.sel(statistic="mean", sample_size=10)                  # doctest: +SKIP

How a grid becomes programs. Each family of the registry (:mod:`sim.families`:
``gaussian``, ``categorical``, ``regression``, ...; its folder registers it) says which of its
parameters can be *traced*: values that change no array shape and no control
flow (an estimator's divisor, a mixing fraction, a temperature, a noise
level). The grid's points are grouped by everything else (sample size,
dimension, method, regime kind, ...): one group is one compiled program, in
which every point's traced values ride along each lane as data
(:func:`sim.parallel.simulate_points`: lanes are (point, chain), chunked and
sharded over the devices like chains). A 2 x 2 x 5 grid over (sample size,
estimator, alpha) therefore compiles 2 programs, not 20.

Keys. Point ``p`` draws from ``fold_in(key(seed), h(p))`` with ``h`` a CRC-32
of the point's full parameter set, and chain ``i`` from ``fold_in(., i)``: a
point's chains are the same whatever else the grid holds, however the grid is
grouped, chunked or sharded, and whether or not the run was resumed.

Output. One :class:`xarray.Dataset` (written to NetCDF by :func:`save`):

* dimensions: the grid's parameters in the order given (coordinates hold
  their values), ``generation`` (0..G), ``statistic`` (``mean``, ``sem``:
  the Monte-Carlo standard error of the mean, ``var``: the variance across
  chains, ``var_se``: its standard error);
* one variable per record field (``log_var``, ``heterozygosity``, ...), with
  dims ``(*grid, generation, statistic)`` (plus the field's own dims, e.g.
  survival buckets);
* ``theory_<field>`` beside it where a closed form exists for that point
  (NaN elsewhere), and ``z_<field>`` = (simulation - theory) / standard error
  for ``mean`` and ``var``;
* ``snapshot_<field>`` (``*grid, snapshot, chain``) and
  ``first_passage_<field>`` (``*grid, chain``) when asked for;
* ``attrs["manifest"]``: JSON with the model, grid, fixed settings, seed,
  the programs compiled and their timings, versions and devices.

Why xarray/NetCDF rather than tidy Parquet: the results are dense cubes
(parameter x ... x generation x statistic, and chains for snapshots) whose
natural operations are selections and reductions along named axes; NetCDF
stores the cube with its coordinates and attributes in one self-describing
file that xarray, netCDF tools, R and Julia read, and ``ds.to_dataframe()``
gives the tidy table for seaborn or pandas users when they want one.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import time
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sim import families, parallel
from sim._validate import check_int
from sim.chain import check_seed, root_key
from sim.checkpoint import Checkpointer
from sim.io import atomic_path, check_writable_dir, check_writable_file, environment
from sim.spec import FamilySpec, plain

STATISTICS = ("mean", "sem", "var", "var_se")


# -- the grid ------------------------------------------------------------------------------


def _label(settings: dict) -> str:
    return json.dumps(
        {k: plain(v) for k, v in sorted(settings.items())}, sort_keys=True, default=str
    )


def point_key(root, point: dict, spec):
    """The root key of one grid point of family ``spec`` (a name or a spec):
    ``fold_in(root, crc32(spec.key_label(point)))``."""
    label = families.get(spec).key_label(point)
    return jax.random.fold_in(root, zlib.crc32(label.encode()) & 0x7FFFFFFF)


def _check_grid(model: FamilySpec, grid: Mapping, fixed: Mapping) -> tuple[list, list]:
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError(f"grid must be a non-empty dict of parameter -> values; got {grid!r}")
    names = list(grid)
    for name in (*names, *fixed):
        if name not in model.defaults:
            raise ValueError(
                f"{name!r} is not a parameter of model {model.name!r}; "
                f"choose from {sorted(model.defaults)}"
            )
    both = set(names) & set(fixed)
    if both:
        raise ValueError(f"{sorted(both)} given both in grid and in fixed")
    values = []
    for name in names:
        vals = grid[name]
        if isinstance(vals, (str, bytes)) or not isinstance(vals, Sequence | np.ndarray):
            raise ValueError(f"grid[{name!r}] must be a list of values; got {vals!r}")
        vals = [plain(v) for v in vals]
        if not vals:
            raise ValueError(f"grid[{name!r}] is empty")
        if len({json.dumps(v) for v in vals}) != len(vals):
            raise ValueError(f"grid[{name!r}] has repeated values: {vals}")
        values.append(vals)
    return names, values


# -- running -------------------------------------------------------------------------------


class _Group:
    def __init__(self, static: dict, traced: tuple):
        self.static, self.traced = static, traced
        self.indices: list[tuple] = []  # grid indices of the points
        self.points: list[dict] = []  # the points' settings as given (defaults filled in)
        self.checked: list[dict] = []  # the same, checked and normalised by the spec


def _groups(model: FamilySpec, names, values, fixed) -> list[_Group]:
    groups: dict[str, _Group] = {}
    for idx in itertools.product(*(range(len(v)) for v in values)):
        point = dict(model.defaults)
        point.update(fixed)
        point.update({n: values[i][j] for i, (n, j) in enumerate(zip(names, idx, strict=True))})
        checked = model.check(point)
        traced = model.traced(checked)
        static = {k: v for k, v in checked.items() if k not in traced}
        gkey = _label(static) + "|" + ",".join(sorted(traced))
        if gkey not in groups:
            groups[gkey] = _Group(static, tuple(sorted(traced)))
        groups[gkey].indices.append(idx)
        groups[gkey].points.append(point)
        groups[gkey].checked.append(checked)
    return list(groups.values())


def sweep(
    model: str | FamilySpec,
    grid: Mapping[str, Sequence],
    *,
    num_chains: int,
    num_generations: int,
    fixed: Mapping[str, Any] | None = None,
    seed: int = 0,
    prng_impl: str = "philox4x32",
    snapshot_generations: Sequence[int] = (),
    snapshot_fields: Sequence[str] | None = None,
    first_passage: bool = True,
    devices=None,
    chunk_chains: int | None = None,
    segment_length: int | None = None,
    progress=None,
    checkpoint_dir: str | None = None,
    checkpoint_every_s: float = 60.0,
):
    """Runs ``model`` at every point of ``grid`` and returns one labelled dataset.

    Args:
      model: a registered family's name (:func:`sim.families.names`) or its
        :class:`~sim.spec.FamilySpec`.
      grid: ``{parameter: [values]}``; the sweep runs the Cartesian product,
        and the dataset's dimensions follow this order.
      num_chains: C, chains per point.
      num_generations: G.
      fixed: other parameters, the same at every point (defaults otherwise).
      seed, prng_impl: the root key ``jax.random.key(seed, impl=prng_impl)``.
      snapshot_generations: generations whose per-chain values are kept.
      snapshot_fields: fields kept there (default: the model's choice).
      first_passage: keep per-chain hitting times of the model's
        first-passage fields (e.g. categorical absorption).
      devices, chunk_chains, segment_length: as for
        :func:`sim.parallel.simulate_points` (chunks count lanes = points x
        chains).
      progress: ``None`` for one tqdm bar across the whole sweep, ``False``
        for none, or a callable ``progress(n)``.
      checkpoint_dir: save checkpoints here (one subdirectory per program) and
        resume from them: a killed sweep rerun with the same arguments
        continues where it stopped and gives bit-identical results. A
        checkpoint from other arguments or another version is refused.
      checkpoint_every_s: least seconds between two in-chunk saves.

    Returns:
      An :class:`xarray.Dataset` (see the module docstring).
    """
    if isinstance(model, str) and model not in families.names():
        raise ValueError(f"model={model!r} is not one of {families.names()}")
    model = families.get(model)
    fixed = {k: plain(v) for k, v in dict(fixed or {}).items()}
    c = check_int(num_chains, "num_chains", 1)
    g = check_int(num_generations, "num_generations", 1)
    seed = check_seed(seed)
    if checkpoint_dir is not None:
        check_writable_dir(checkpoint_dir, "checkpoint_dir")
        if isinstance(checkpoint_every_s, bool) or not (
            isinstance(checkpoint_every_s, (int, float))
            and math.isfinite(checkpoint_every_s)
            and checkpoint_every_s >= 0
        ):
            raise ValueError(
                f"checkpoint_every_s={checkpoint_every_s!r} must be a finite number >= 0"
            )
    names, values = _check_grid(model, grid, fixed)
    groups = _groups(model, names, values, fixed)
    root = root_key(seed, prng_impl)
    devs = parallel._devices(devices)

    programs = [model.program(grp.static, grp.traced, c, g) for grp in groups]
    plans = [
        parallel.plan_run(
            c,
            g,
            num_points=len(grp.points),
            chain_elements=prog.chain_elements,
            block_size=prog.block_size,
            chunk_chains=chunk_chains,
            segment_length=segment_length,
            num_devices=len(devs),
        )
        for grp, prog in zip(groups, programs, strict=True)
    ]
    bar = None
    if progress is None:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(p.steps for p in plans), desc=f"sweep {model.name}", unit="seg")
        progress = bar.update
    elif progress is False:
        progress = lambda n: None

    results: dict[tuple, Any] = {}
    group_info = []
    t_sweep = time.perf_counter()
    try:
        for gi, (grp, prog) in enumerate(zip(groups, programs, strict=True)):
            if bar is not None:
                bar.set_description(f"sweep {model.name} [program {gi + 1}/{len(groups)}]")
            dtype = jnp.result_type(jax.tree.leaves(prog.init)[0])
            encoders = [model.traced(p) for p in grp.checked]
            theta = tuple(
                np.asarray(
                    [enc[n](p[n]) for enc, p in zip(encoders, grp.checked, strict=True)], dtype
                )
                for n in grp.traced
            )
            keys = jnp.stack([point_key(root, p, model) for p in grp.points])
            snap_fields = (
                prog.snapshot_fields if snapshot_fields is None else tuple(snapshot_fields)
            )
            ckpt = None
            if checkpoint_dir is not None:
                config = dict(
                    model=model.name,
                    points=[json.loads(model.key_label(p)) for p in grp.points],
                    traced=list(grp.traced),
                    num_chains=c,
                    num_generations=g,
                    seed=seed,
                    prng_impl=prng_impl,
                    snapshot_generations=list(snapshot_generations),
                    snapshot_fields=list(snap_fields),
                )
                sub = hashlib.sha256(_label(grp.static).encode()).hexdigest()[:16]
                ckpt = Checkpointer(os.path.join(checkpoint_dir, sub), config, checkpoint_every_s)
            t0 = time.perf_counter()
            res = parallel.simulate_points(
                keys,
                prog.step,
                prog.init,
                prog.record,
                num_generations=g,
                num_chains=c,
                point_params=theta,
                snapshot_generations=snapshot_generations,
                snapshot_fields=snap_fields,
                first_passage_fields=prog.first_passage_fields if first_passage else (),
                chain_elements=prog.chain_elements,
                block_size=prog.block_size,
                lane_group=prog.lane_group,
                chunk_chains=chunk_chains,
                segment_length=segment_length,
                devices=devs,
                progress=progress,
                checkpoint=ckpt,
                keep_final=False,
            )
            for idx, r in zip(grp.indices, res, strict=True):
                results[idx] = r
            group_info.append(
                dict(
                    static={k: grp.static[k] for k in sorted(grp.static) if k not in fixed},
                    traced=list(grp.traced),
                    num_points=len(grp.points),
                    wall_s=time.perf_counter() - t0,
                    **{k: v for k, v in res[0].timings.items() if k != "reduce_s"},
                )
            )
    finally:
        if bar is not None:
            bar.close()
    manifest = dict(
        model=model.name,
        grid={n: v for n, v in zip(names, values, strict=True)},
        fixed=fixed,
        defaults={k: plain(v) for k, v in model.defaults.items()},
        num_chains=c,
        num_generations=g,
        seed=seed,
        prng_impl=prng_impl,
        programs=len(groups),
        groups=group_info,
        wall_s=time.perf_counter() - t_sweep,
        environment=environment(),
    )
    return _dataset(model, names, values, groups, results, g, manifest)


# -- the dataset ---------------------------------------------------------------------------


def _coord(vals: list):
    if all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in vals):
        if any(v is None for v in vals):
            return np.asarray([np.nan if v is None else v for v in vals], np.float64)
        return np.asarray(vals)
    return np.asarray([str(v) for v in vals])


def _stat_array(m) -> np.ndarray:
    """(G+1, 4, *field shape) from a Moments: mean, sem, var, var_se."""
    return np.stack([m.mean, m.sem, m.var, m.var_se], 1)


def _dataset(model, names, values, groups, results, g, manifest):
    import xarray as xr

    shape = tuple(len(v) for v in values)
    first = next(iter(results.values()))
    gen = np.arange(g + 1)
    theories = {  # once per point: {field: {statistic: curve}}
        idx: model.theory(point, gen) if model.theory is not None else {}
        for grp in groups
        for idx, point in zip(grp.indices, grp.checked, strict=True)
    }
    data_vars = {}
    for f, mom in first.moments.items():
        fshape = np.shape(mom.mean)[1:]
        fdims = tuple(f"{f}_dim{i}" for i in range(len(fshape)))
        arr = np.full(shape + (g + 1, 4) + fshape, np.nan)
        theory = np.full_like(arr, np.nan)
        for idx, r in results.items():
            arr[idx] = _stat_array(r.moments[f])
        for idx, curves in theories.items():
            for stat, curve in curves.get(f, {}).items():
                theory[idx + (slice(None), STATISTICS.index(stat))] = curve
        dims = (*names, "generation", "statistic", *fdims)
        data_vars[f] = (dims, arr)
        if np.isfinite(theory).any():
            data_vars[f"theory_{f}"] = (dims, theory)
            z = np.full_like(arr, np.nan)
            lead = (slice(None),) * (len(names) + 1)  # up to the statistic axis
            for stat, se in (("mean", "sem"), ("var", "var_se")):
                i, j = lead + (STATISTICS.index(stat),), lead + (STATISTICS.index(se),)
                with np.errstate(divide="ignore", invalid="ignore"):
                    z[i] = (arr[i] - theory[i]) / arr[j]
            data_vars[f"z_{f}"] = (dims, z)
    c = first.num_chains
    for f, snap in first.snapshots.items():
        arr = np.stack([results[idx].snapshots[f] for idx in np.ndindex(*shape)])
        arr = arr.reshape(shape + snap.shape)
        fdims = tuple(f"{f}_dim{i}" for i in range(snap.ndim - 2))
        data_vars[f"snapshot_{f}"] = ((*names, "snapshot", "chain", *fdims), arr)
    for f in first.first_passage:
        arr = np.stack([results[idx].first_passage[f] for idx in np.ndindex(*shape)])
        data_vars[f"first_passage_{f}"] = ((*names, "chain"), arr.reshape(shape + (c,)))
    coords = {n: _coord(v) for n, v in zip(names, values, strict=True)}
    coords.update(generation=gen, statistic=np.asarray(STATISTICS))
    if first.snapshots:
        coords["snapshot"] = np.asarray(first.snapshot_generations)
    attrs = dict(
        model=model.name,
        num_chains=c,
        num_generations=g,
        seed=manifest["seed"],
        manifest=json.dumps(manifest, default=str),
    )
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def manifest(ds) -> dict:
    """The manifest of a sweep's dataset, as a dict."""
    return json.loads(ds.attrs["manifest"])


def save(ds, path: str) -> str:
    """Writes ``ds`` to NetCDF-4 at ``path`` atomically (:func:`sim.io.atomic_path`)."""
    check_writable_file(path, "path")
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")
    return path


def load(path: str):
    """Reads a dataset written by :func:`save` (fully into memory)."""
    import xarray as xr

    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


__all__ = ["STATISTICS", "load", "manifest", "point_key", "save", "sweep"]
