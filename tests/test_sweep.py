"""Sweeps: grouping into programs, the dataset, theory columns, checkpoints and resume.

Statistical tests compare every (point, generation) of a sweep with its closed
form through the dataset's own ``z_<field>`` columns, at a family-wise
false-failure rate of 1e-4 per test function (Bonferroni over the cells
tested); each also shows that a wrong formula (the other estimator's, or the
replace regime's) is rejected by the same threshold.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

import sim
from sim.checkpoint import CheckpointError
from sim.sweep import load, manifest, point_key, save, sweep
from tests.devices import ROOT, run_on_devices
from tests.stats import z_crit

FALSE_FAILURE = 1e-4


def _cells(z) -> np.ndarray:
    """The finite entries (generation 0 has no spread: its z is 0/0 and left out)."""
    z = np.asarray(z)
    return z[np.isfinite(z)]


def _z(emp, theory, se) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return _cells((np.asarray(emp) - np.asarray(theory)) / np.asarray(se))


def _assert_z(zs: dict) -> float:
    """Every finite z of ``zs`` (name -> array) under one Bonferroni threshold."""
    cells = np.concatenate([_cells(z) for z in zs.values()])
    label = ", ".join(zs)
    assert cells.size > 0, label
    crit = z_crit(cells.size, FALSE_FAILURE)
    assert np.max(np.abs(cells)) < crit, (
        f"{label}: max |z| = {np.max(np.abs(cells)):.2f} >= {crit:.2f}"
    )
    return crit


# ----------------------------------------------------------------------------- grouping


@pytest.mark.costly
@pytest.mark.unit
def test_grid_groups_by_shape_and_traces_the_rest():
    ds = sweep(
        "gaussian",
        {"sample_size": [5, 10], "estimator": ["mle", "unbiased"], "alpha": [0.0, 0.25, 0.5]},
        num_chains=64,
        num_generations=3,
        progress=False,
    )
    m = manifest(ds)
    assert m["programs"] == 2  # one per sample size; estimator and (unused) alpha ride along
    assert [g["num_points"] for g in m["groups"]] == [6, 6]
    assert m["groups"][0]["traced"] == ["alpha", "estimator", "lam"]
    assert ds.log_var.dims == ("sample_size", "estimator", "alpha", "generation", "statistic")
    assert list(ds.estimator.values) == ["mle", "unbiased"]
    assert list(ds.statistic.values) == ["mean", "sem", "var", "var_se"]
    # the points path draws a fixed number of real points: alpha is static there,
    # exact draws take a traced count (one program)
    for method, programs in (("sample", 2), ("exact", 1)):
        ds = sweep(
            "gaussian",
            {"alpha": [0.0, 0.5]},
            fixed={"regime": "fresh", "method": method, "sample_size": 6},
            num_chains=16,
            num_generations=2,
            progress=False,
        )
        assert manifest(ds)["programs"] == programs, method


@pytest.mark.costly
@pytest.mark.unit
def test_categorical_groups_top_p_off_separately():
    ds = sweep(
        "categorical",
        {"temperature": [0.7, 1.3], "top_p": [None, 0.9]},
        fixed={"num_categories": 20, "sample_size": 20},
        num_chains=32,
        num_generations=2,
        progress=False,
    )
    assert manifest(ds)["programs"] == 2
    assert np.isnan(ds.top_p.values[0]) and ds.top_p.values[1] == 0.9
    assert ds.survival.dims[-1] == "survival_dim0"


@pytest.mark.costly
@pytest.mark.unit
def test_a_point_does_not_depend_on_the_rest_of_the_grid():
    kw = dict(num_chains=100, num_generations=4, progress=False, snapshot_generations=(4,))
    big = sweep("gaussian", {"sample_size": [5, 8], "estimator": ["mle", "unbiased"]}, **kw)
    one = sweep("gaussian", {"estimator": ["unbiased"]}, fixed={"sample_size": 8}, **kw)
    a = big.snapshot_log_var.sel(sample_size=8, estimator="unbiased").values
    np.testing.assert_array_equal(a, one.snapshot_log_var.sel(estimator="unbiased").values)


@pytest.mark.unit
def test_point_key_is_the_crc_of_the_full_point():
    from sim import families

    root = jax.random.key(0)
    point = dict(families.get("gaussian").defaults)
    k1 = point_key(root, point, "gaussian")
    k2 = point_key(root, dict(reversed(list(point.items()))), "gaussian")
    k3 = point_key(root, {**point, "sample_size": 11}, "gaussian")
    assert np.array_equal(jax.random.key_data(k1), jax.random.key_data(k2))
    assert not np.array_equal(jax.random.key_data(k1), jax.random.key_data(k3))
    # a setting outside the key schema enters the label only away from its default,
    # so adding settings to a family changes no existing sweep's keys
    spec = families.get("gaussian")
    assert "known_variance" not in spec.key_label(point)
    assert "known_variance" in spec.key_label({**point, "known_variance": 2.0})


@pytest.mark.unit
@pytest.mark.parametrize(
    "model,grid,fixed,match",
    [
        ("gaussian", {"sample_sise": [5]}, {}, "'sample_sise' is not a parameter"),
        ("gaussian", {}, {}, "non-empty"),
        ("gaussian", {"sample_size": []}, {}, r"grid\['sample_size'\] is empty"),
        ("gaussian", {"sample_size": [5, 5]}, {}, "repeated"),
        ("gaussian", {"sample_size": 5}, {}, "must be a list"),
        ("gaussian", {"estimator": ["mean"]}, {}, "mean"),
        ("gaussian", {"sample_size": [1]}, {}, "sample_size=1"),
        ("gaussian", {"alpha": [1.5]}, {"regime": "fresh"}, "alpha=1.5"),
        ("gaussian", {"sample_size": [5]}, {"sample_size": 6}, "both in grid and in fixed"),
        ("categorical", {"temperature": [0.0]}, {}, "temperature=0.0"),
        ("regression", {"ridge": [-1.0]}, {}, "ridge=-1.0"),
        ("nope", {"a": [1]}, {}, "model='nope'"),
    ],
)
def test_bad_grids_are_refused_before_compiling(model, grid, fixed, match):
    with pytest.raises(ValueError, match=match):
        sweep(model, grid, fixed=fixed, num_chains=4, num_generations=1, progress=False)


@pytest.mark.costly
@pytest.mark.unit
def test_progress_bar_counts_every_step_of_every_program():
    seen = []
    sweep(
        "gaussian",
        {"sample_size": [4, 6]},
        num_chains=16,
        num_generations=6,
        segment_length=2,
        progress=seen.append,
    )
    assert sum(seen) == 2 * 3  # two programs, three segments each


@pytest.mark.costly
@pytest.mark.unit
def test_save_and_load_round_trip(tmp_path):
    ds = sweep(
        "categorical",
        {"smoothing": [0.0, 0.5]},
        fixed={"num_categories": 10, "sample_size": 10},
        num_chains=16,
        num_generations=3,
        progress=False,
        snapshot_generations=(3,),
    )
    path = save(ds, str(tmp_path / "sub" / "sweep.nc"))
    back = load(path)
    assert back.identical(ds)
    assert manifest(back)["grid"] == {"smoothing": [0.0, 0.5]}
    assert [f for f in os.listdir(tmp_path / "sub") if f.startswith(".tmp")] == []


# ----------------------------------------------------------------------------- statistics


@pytest.mark.statistical
def test_gaussian_sweep_agrees_with_theory_and_rejects_the_other_estimator():
    ds = sweep(
        "gaussian",
        {"sample_size": [5, 20], "estimator": ["mle", "unbiased"]},
        num_chains=4000,
        num_generations=12,
        progress=False,
    )
    crit = _assert_z({f: ds[f"z_{f}"] for f in ("log_var", "mean", "w2_squared")})
    # wrong formula: each estimator's chains against the other's E[log s2]
    emp = ds.log_var.sel(statistic="mean")
    sem = ds.log_var.sel(statistic="sem")
    th = ds.theory_log_var.sel(statistic="mean")
    swapped = th.isel(estimator=[1, 0]).values
    z_wrong = _z(emp.values, swapped, sem.values)
    assert np.max(np.abs(z_wrong)) > crit


@pytest.mark.statistical
def test_categorical_sweep_agrees_with_theory_under_traced_smoothing():
    ds = sweep(
        "categorical",
        {"smoothing": [0.0, 0.25, 0.5]},
        fixed={"num_categories": 20, "sample_size": 30, "zipf_beta": 1.0},
        num_chains=2000,
        num_generations=8,
        progress=False,
    )
    assert manifest(ds)["programs"] == 1
    crit = _assert_z({f: ds[f"z_{f}"].sel(statistic="mean") for f in ("heterozygosity", "support")})
    # wrong formula: the smoothed chains against the unsmoothed curve
    emp = ds.heterozygosity.sel(statistic="mean", smoothing=0.5).values
    sem = ds.heterozygosity.sel(statistic="sem", smoothing=0.5).values
    wrong = ds.theory_heterozygosity.sel(statistic="mean", smoothing=0.0).values
    assert np.max(np.abs(_z(emp, wrong, sem))) > crit


@pytest.mark.statistical
def test_regression_sweep_agrees_with_theory_under_traced_noise():
    ds = sweep(
        "regression",
        {"noise": [0.5, 1.0], "regime": ["replace", "accumulate"]},
        fixed={"dim": 4, "num_samples": 16},
        num_chains=2000,
        num_generations=6,
        progress=False,
    )
    crit = _assert_z({"test_error": ds.z_test_error.sel(statistic="mean")})
    emp = ds.test_error.sel(statistic="mean", regime="accumulate").values
    sem = ds.test_error.sel(statistic="sem", regime="accumulate").values
    wrong = ds.theory_test_error.sel(statistic="mean", regime="replace").values
    assert np.max(np.abs(_z(emp, wrong, sem))) > crit


# ----------------------------------------------------------------------------- devices

DEVICES_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax
    from sim.sweep import sweep
    kw = dict(num_chains=300, num_generations=5, progress=False, snapshot_generations=(5,))
    out = {}
    ds = sweep("gaussian", {"estimator": ["mle", "unbiased"], "alpha": [0.1, 0.5]},
               fixed=dict(regime="fresh", method="exact"), **kw)
    out["gaussian"] = ds.snapshot_log_var.values.tolist()
    out["gaussian_moments"] = ds.log_var.values.tolist()
    ds = sweep("categorical", {"temperature": [0.7, 1.0], "top_p": [0.9, 1.0]},
               fixed=dict(num_categories=30, sample_size=30), **kw)
    out["categorical"] = ds.snapshot_heterozygosity.values.tolist()
    out["absorbed"] = ds.first_passage_absorbed.values.tolist()
    ds = sweep("regression", {"noise": [0.5, 1.0], "ridge": [0.0, 0.5]},
               fixed=dict(dim=3, num_samples=10), **kw)
    out["regression"] = ds.snapshot_test_error.values.tolist()
    out["devices"] = len(jax.devices())
    json.dump(out, open(sys.argv[1], "w"))
    """
)


@pytest.mark.multiprocess
def test_sweeps_are_bit_identical_on_1_and_8_devices(tmp_path):
    """300 chains a point on one device and on 8 (300 is not a multiple of 8)."""
    runs = {n: run_on_devices(DEVICES_SCRIPT, n, tmp_path) for n in (1, 8)}
    for n, out in runs.items():
        assert out.pop("devices") == n
    for key in runs[1]:
        for n in (8,):
            np.testing.assert_array_equal(
                np.asarray(runs[1][key]), np.asarray(runs[n][key]), err_msg=f"{key} on {n}"
            )


# ----------------------------------------------------------------------------- checkpoints

SWEEP_KW = dict(
    num_chains=256,
    num_generations=30,
    segment_length=1,
    chunk_chains=256,
    snapshot_generations=(10, 30),
)
GRID = {"sample_size": [5, 9], "estimator": ["mle", "unbiased"]}

KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from sim.sweep import save, sweep
    out, ckpt, slow = sys.argv[1], sys.argv[2], float(sys.argv[3])
    kw = dict(KW)
    ds = sweep("gaussian", GRID, checkpoint_dir=ckpt, checkpoint_every_s=0,
               progress=lambda n: time.sleep(slow), **kw)
    save(ds, out)
    """
)


def _script(tmp_path):
    p = tmp_path / "kill.py"
    p.write_text(f"KW = {SWEEP_KW!r}\nGRID = {GRID!r}\n" + KILL_SCRIPT)
    return p


def _same(a, b):
    for v in a.data_vars:
        np.testing.assert_array_equal(a[v].values, b[v].values, err_msg=v)


@pytest.mark.multiprocess
def test_a_killed_sweep_resumes_bit_identically(tmp_path):
    script, ckpt = _script(tmp_path), tmp_path / "ckpt"
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
    cmd = [sys.executable, str(script)]
    proc = subprocess.Popen([*cmd, str(tmp_path / "x.nc"), str(ckpt), "0.05"], env=env, cwd=ROOT)
    deadline = time.time() + 300
    killed_at = None
    while time.time() < deadline and proc.poll() is None:
        chunks = [f for d, _, fs in os.walk(ckpt) for f in fs if f.startswith("chunk-")]
        progress = [d for d, _, fs in os.walk(ckpt) if "progress.npz" in fs]
        if len(chunks) >= 1 and progress:  # one chunk done, the next one half way
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed_at = (len(chunks), len(progress))
            break
        time.sleep(0.02)
    assert killed_at is not None, "the sweep finished (or hung) before it could be killed"
    assert not (tmp_path / "x.nc").exists()
    # resume, then an uninterrupted run in a fresh directory
    subprocess.run(
        [*cmd, str(tmp_path / "resumed.nc"), str(ckpt), "0"], env=env, cwd=ROOT, check=True
    )
    subprocess.run(
        [*cmd, str(tmp_path / "fresh.nc"), str(tmp_path / "ckpt2"), "0"],
        env=env,
        cwd=ROOT,
        check=True,
    )
    resumed, fresh = load(str(tmp_path / "resumed.nc")), load(str(tmp_path / "fresh.nc"))
    _same(resumed, fresh)
    assert [f for d, _, fs in os.walk(ckpt) for f in fs if f.startswith(".tmp")] == []


def _tiny(ckpt, **kw):
    args = dict(
        num_chains=64,
        num_generations=4,
        segment_length=2,
        progress=False,
        checkpoint_dir=str(ckpt),
        checkpoint_every_s=0,
    )
    args.update(kw)
    return sweep("gaussian", {"sample_size": [5]}, **args)


@pytest.mark.costly
@pytest.mark.unit
def test_a_finished_checkpoint_is_reused_not_recomputed(tmp_path):
    first = _tiny(tmp_path)
    again = _tiny(tmp_path)
    _same(first, again)
    assert manifest(again)["groups"][0]["calls"] == 0


@pytest.mark.unit
def test_a_checkpoint_from_other_settings_is_refused(tmp_path):
    _tiny(tmp_path)
    with pytest.raises(
        CheckpointError, match=r"another run.*seed: checkpoint has 0, this run has 1"
    ):
        _tiny(tmp_path, seed=1)
    with pytest.raises(CheckpointError, match="num_generations"):
        _tiny(tmp_path, num_generations=6)


@pytest.mark.unit
def test_a_checkpoint_from_another_version_is_refused(tmp_path, monkeypatch):
    _tiny(tmp_path)
    monkeypatch.setattr(sim, "__version__", "99.0")
    with pytest.raises(
        CheckpointError, match=r"versions\.sim: checkpoint has '0\.1\.0', this run has '99\.0'"
    ):
        _tiny(tmp_path)


@pytest.mark.unit
def test_a_corrupt_checkpoint_is_refused(tmp_path):
    _tiny(tmp_path)
    (path,) = [
        os.path.join(d, f) for d, _, fs in os.walk(tmp_path) for f in fs if f.startswith("chunk-")
    ]
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(path, "wb").write(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt"):
        _tiny(tmp_path)


@pytest.mark.unit
def test_a_tampered_array_fails_its_hash(tmp_path):
    _tiny(tmp_path)
    (path,) = [
        os.path.join(d, f) for d, _, fs in os.walk(tmp_path) for f in fs if f.startswith("chunk-")
    ]
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["blocks"] = arrays["blocks"] + 1.0
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(CheckpointError, match="SHA-256"):
        _tiny(tmp_path)
    meta = json.loads(str(arrays["__meta__"]))
    assert meta["fingerprint"]["config"]["model"] == "gaussian"
