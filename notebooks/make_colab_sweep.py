"""Writes ``colab_sweep.ipynb`` beside this file (outputs empty).

Edit the cells here and rerun ``python notebooks/make_colab_sweep.py``;
``tests/test_notebook.py`` checks that the committed notebook is this script's
output and executes its code on the CPU with tiny sizes.
"""

from __future__ import annotations

import json
import os
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
PATH = os.path.join(HERE, "colab_sweep.ipynb")

INTRO = """\
# Model collapse on an accelerator: a parameter sweep against theory

This notebook installs `model-collapse-sim` from its repository, finds the
accelerator (TPU, GPU or none), runs two parameter sweeps sized for it and
plots them against the closed forms:

* **Gaussian chain** (Shumailov et al., *Nature* 2024): each generation refits
  N(mu, sigma^2) to M samples drawn from the previous fit, for several M and
  both variance estimators (`mle` divides by M, `unbiased` by M-1).
  E[log sigma_n^2] against its exact value, with a z-score for every
  generation.
* **Categorical chain** (neutral Wright-Fisher over a Zipf vocabulary of 100
  tokens, M = 100 tokens per generation) sampled at several temperatures:
  heterozygosity against E[H_n] = H_0 (1 - 1/M)^n, which holds at
  temperature 1 only.

`sim.sweep` turns each grid into as few compiled programs as it can: a sample
size changes array shapes and gets its own program, while the estimator and the
temperature ride along as per-lane data. Chains are sharded over every device
JAX sees.

| runtime | chains per point | generations | time |
|---|---|---|---|
| CPU (2 cores) | 10,000 Gaussian, 2,000 categorical | 200 | 81 s (measured, busy machine) |
| GPU or TPU | 100,000 | 200 | not timed yet (minutes expected, mostly compiling) |

Pick the runtime under *Runtime > Change runtime type* (a T4 GPU or a TPU); on
a CPU runtime the sweeps are sized down. `COLLAPSE_NOTEBOOK_TINY=1` in the
environment shrinks them to a few seconds of simulation (the project's tests
run the notebook that way)."""

INSTALL_MD = """\
## Install

Set `REPO_URL` to the project's repository (the address below is a
placeholder: replace `OWNER`). Without network access to it, upload or clone
the source by hand and run `%pip install -q /path/to/model-collapse-sim`
instead. The cell does nothing when `sim` is already importable (a second run,
or a kernel started inside a checkout).

The install leaves JAX alone. The package asks for `jax>=0.4.35` with no upper
bound, so pip keeps Colab's preinstalled accelerator build (`jax[tpu]` or the
CUDA wheels); installing `jax` from PyPI here could replace it with a build
that cannot see the TPU or GPU."""

INSTALL = """\
REPO_URL = "https://github.com/OWNER/model-collapse-sim"  # the project's repository

try:
    import sim.sweep  # noqa: F401  (already installed, or run from a checkout)
except ImportError:
    %pip install -q "git+{REPO_URL}"
    import importlib

    importlib.invalidate_caches()"""

DEVICE_MD = """\
## The device and the sizes

`jax.default_backend()` is `tpu`, `gpu` or `cpu`. Accelerators get 100,000
chains per grid point; the CPU gets a smaller run that still shows every
curve."""

DEVICE = """\
import os

import jax

SIZES = {
    "accelerator": dict(
        gaussian_chains=100_000,
        categorical_chains=100_000,
        generations=200,
        sample_sizes=[10, 100, 1000],
        temperatures=[0.8, 0.9, 1.0, 1.1, 1.25],
    ),
    "cpu": dict(
        gaussian_chains=10_000,
        categorical_chains=2_000,
        generations=200,
        sample_sizes=[10, 100],
        temperatures=[0.8, 0.9, 1.0, 1.1, 1.25],
    ),
    "tiny": dict(  # COLLAPSE_NOTEBOOK_TINY=1: the tests
        gaussian_chains=64,
        categorical_chains=64,
        generations=5,
        sample_sizes=[10, 100],
        temperatures=[0.8, 1.0, 1.25],
    ),
}

backend = jax.default_backend()
devices = jax.devices()
if os.environ.get("COLLAPSE_NOTEBOOK_TINY", "") not in ("", "0"):
    size = "tiny"
elif backend in ("tpu", "gpu", "cuda", "rocm"):
    size = "accelerator"
else:
    size = "cpu"
cfg = SIZES[size]
print(f"JAX {jax.__version__}, backend {backend!r}, {len(devices)} device(s): {devices}")
print(f"size {size!r}: {cfg}")"""

GAUSSIAN_MD = """\
## Gaussian sweep

Sample size x estimator: one compiled program per sample size. The dataset
holds, per grid point and generation, the cross-chain `mean`, its standard
error `sem`, the cross-chain `var` and its `var_se`, with `theory_*` and
`z_*` beside every field that has a closed form."""

GAUSSIAN = """\
import time

import sim.sweep


def describe(ds, seconds):
    \"\"\"Prints the programs a sweep compiled and what each cost.\"\"\"
    man = sim.sweep.manifest(ds)
    print(f"{man['model']}: {man['programs']} compiled program(s), {seconds:.1f} s in all")
    for group in man["groups"]:
        shape = {k: v for k, v in group["static"].items() if k in man["grid"]}
        print(
            f"  {shape or 'one program'}: {group['num_points']} point(s) traced over"
            f" {group['traced']}, {group['wall_s']:.1f} s"
            f" (first call with compilation {group['first_call_s']:.1f} s)"
        )


t0 = time.perf_counter()
ds = sim.sweep.sweep(
    "gaussian",
    {"sample_size": cfg["sample_sizes"], "estimator": ["mle", "unbiased"]},
    num_chains=cfg["gaussian_chains"],
    num_generations=cfg["generations"],
    seed=0,
)
describe(ds, time.perf_counter() - t0)
sim.sweep.save(ds, "sweep_gaussian.nc")
ds"""

GAUSSIAN_PLOT_MD = """\
### E[log sigma_n^2] against theory

Solid: the simulation, with a band of +-2 Monte-Carlo standard errors; dashed:
the exact expectation (`theory.gaussian.log_variance_mean`). The MLE drifts
down faster; both go to minus infinity, faster for small M."""

GAUSSIAN_PLOT = """\
import matplotlib.pyplot as plt

gen = ds.generation.values
sizes = ds.sample_size.values
fig, axes = plt.subplots(1, len(sizes), figsize=(5 * len(sizes), 4), squeeze=False)
for ax, m in zip(axes[0], sizes, strict=True):
    for color, est in zip(("C0", "C1"), ds.estimator.values, strict=True):
        at = dict(sample_size=m, estimator=est)
        mean = ds.log_var.sel(**at, statistic="mean").values
        sem = ds.log_var.sel(**at, statistic="sem").values
        theory = ds.theory_log_var.sel(**at, statistic="mean").values
        ax.plot(gen, mean, color=color, label=f"{est}: simulation")
        ax.fill_between(gen, mean - 2 * sem, mean + 2 * sem, color=color, alpha=0.3, lw=0)
        ax.plot(gen, theory, "k--", lw=1, label=f"{est}: theory")
    ax.set(title=f"M = {m}", xlabel="generation n", ylabel="E[log sigma_n^2]")
    ax.legend(fontsize="small")
fig.suptitle(f"Gaussian chain, {ds.attrs['num_chains']:,} chains per point")
fig.tight_layout()
fig.savefig("gaussian_log_var.png", dpi=120)
plt.show()"""

Z_MD = """\
### Every generation as a z-test

z = (simulation - theory) / standard error, for the mean of log sigma_n^2 and
for its variance across chains, at every generation n >= 1. The threshold is
Bonferroni's for a 0.1% family-wise false-failure rate over all of them: a
correct simulator crosses it once in a thousand runs."""

Z_PLOT = """\
from statistics import NormalDist

import numpy as np

z = ds.z_log_var.sel(statistic=["mean", "var"]).isel(generation=slice(1, None))
tested = int(np.isfinite(z.values).sum())
threshold = NormalDist().inv_cdf(1 - 0.001 / (2 * tested))
failed = int((np.abs(z.values) > threshold).sum())
print(
    f"{tested} z-tests, max |z| = {float(np.nanmax(np.abs(z.values))):.2f},"
    f" threshold {threshold:.2f}: {failed} failed"
)

fig, ax = plt.subplots(figsize=(7, 4))
for i, m in enumerate(ds.sample_size.values):
    for est, style in zip(ds.estimator.values, ("-", ":"), strict=True):
        for stat, marker in (("mean", "o"), ("var", "x")):
            zz = z.sel(sample_size=m, estimator=est, statistic=stat)
            label = f"M={m} {est} {stat}"
            kw = dict(marker=marker, ms=3, color=f"C{i}", label=label)
            ax.plot(zz.generation, np.abs(zz), style, **kw)
ax.axhline(threshold, color="k", lw=1, ls="--", label="Bonferroni threshold")
ax.set(xlabel="generation n", ylabel="|z|", title="log sigma_n^2: simulation against theory")
ax.legend(fontsize="x-small", ncol=2)
fig.tight_layout()
fig.savefig("gaussian_z.png", dpi=120)
plt.show()"""

CATEGORICAL_MD = """\
## Categorical sweep: sampling temperature

Temperature is traced, so the whole grid is one compiled program. A
temperature below 1 sharpens each generation's distribution before sampling
(diversity is lost faster), above 1 flattens it."""

CATEGORICAL = """\
t0 = time.perf_counter()
dc = sim.sweep.sweep(
    "categorical",
    {"temperature": cfg["temperatures"]},
    fixed=dict(num_categories=100, zipf_beta=1.0, sample_size=100),
    num_chains=cfg["categorical_chains"],
    num_generations=cfg["generations"],
    seed=0,
)
describe(dc, time.perf_counter() - t0)
sim.sweep.save(dc, "sweep_categorical.nc")

zh = dc.z_heterozygosity.sel(temperature=1.0, statistic="mean").isel(generation=slice(1, None))
print(f"temperature 1: max |z| of heterozygosity = {float(np.nanmax(np.abs(zh))):.2f}")"""

CATEGORICAL_PLOT = """\
gen = dc.generation.values
fig, ax = plt.subplots(figsize=(7, 4))
for i, t in enumerate(dc.temperature.values):
    h = dc.heterozygosity.sel(temperature=t)
    mean, sem = h.sel(statistic="mean").values, h.sel(statistic="sem").values
    ax.plot(gen, mean, color=f"C{i}", label=f"T = {t:g}")
    ax.fill_between(gen, mean - 2 * sem, mean + 2 * sem, color=f"C{i}", alpha=0.3, lw=0)
theory = dc.theory_heterozygosity.sel(temperature=1.0, statistic="mean").values
ax.plot(gen, theory, "k--", lw=1, label="theory (T = 1 only)")
ax.set(xlabel="generation n", ylabel="E[H_n]", title="Categorical chain: heterozygosity")
ax.legend(fontsize="small")
fig.tight_layout()
fig.savefig("categorical_heterozygosity.png", dpi=120)
plt.show()"""

CLOSING = """\
## Scaling up

* **Devices** are used automatically: chains are sharded over every device in
  `jax.devices()` (8 TPU cores on a v2-8), and every result is bit-identical
  to a one-device run. Raise `num_chains` (millions fit on one accelerator;
  memory grows linearly with chains, not with generations) or
  `num_generations`, or widen the grids: a new sample size costs a compilation,
  a new estimator or temperature does not.
* **Long runs**: pass `checkpoint_dir=` (say, a folder on a mounted Google
  Drive) to `sim.sweep.sweep`. A disconnected run rerun with the same
  arguments resumes where it stopped and gives the same numbers.
* **Reading results later**: `sim.sweep.load("sweep_gaussian.nc")`, or
  `ds.to_dataframe()` for a tidy table.
* **Several hosts** (a TPU pod slice, a GPU cluster): see the *Several hosts*
  section of the project's README.
* The full studies with their test tables: `python -m experiments.gaussian_chain`
  and `python -m experiments.categorical_chain` (see the README)."""


def _lines(text: str) -> list[str]:
    lines = textwrap.dedent(text).strip("\n").split("\n")
    return [line + "\n" for line in lines[:-1]] + [lines[-1]]


def _cell(kind: str, text: str, index: int) -> dict:
    cell = {"cell_type": kind, "id": f"cell-{index:02d}", "metadata": {}, "source": _lines(text)}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


CELLS = [
    ("markdown", INTRO),
    ("markdown", INSTALL_MD),
    ("code", INSTALL),
    ("markdown", DEVICE_MD),
    ("code", DEVICE),
    ("markdown", GAUSSIAN_MD),
    ("code", GAUSSIAN),
    ("markdown", GAUSSIAN_PLOT_MD),
    ("code", GAUSSIAN_PLOT),
    ("markdown", Z_MD),
    ("code", Z_PLOT),
    ("markdown", CATEGORICAL_MD),
    ("code", CATEGORICAL),
    ("code", CATEGORICAL_PLOT),
    ("markdown", CLOSING),
]


def notebook() -> dict:
    """The notebook as nbformat 4 JSON (a dict)."""
    return {
        "cells": [_cell(kind, text, i) for i, (kind, text) in enumerate(CELLS)],
        "metadata": {
            "accelerator": "GPU",
            "colab": {"provenance": []},
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def render() -> str:
    return json.dumps(notebook(), indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    with open(PATH, "w", encoding="utf-8") as f:
        f.write(render())
    print(f"wrote {PATH}")
