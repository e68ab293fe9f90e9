"""Several processes: two CPU processes on this machine (gloo collectives) against one.

The two-process run shards 300 chains over 2 x 2 forced CPU devices through
``jax.distributed``; its per-chain snapshots, final states and cross-chain
moments must be bit-identical to one process with 4 devices and with 1.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from absl import flags

from experiments import common
from sim import distributed
from tests.devices import ROOT

TIMEOUT_S = 150  # a hung collective fails the test instead of hanging it

WORKER = textwrap.dedent(
    """
    import json, os, shutil, sys
    import numpy as np
    out, nproc, pid, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    from sim import distributed
    if nproc > 1:
        args = dict(coordinator_address=f"localhost:{port}", num_processes=nproc, process_id=pid)
        distributed.initialize(**args, initialization_timeout=60)
        distributed.initialize(**args)  # a second identical call does nothing
        try:
            distributed.initialize(process_id=1 - pid)
            raise SystemExit("initialize accepted another process_id")
        except ValueError as e:
            assert "process_id" in str(e), e
    import jax
    from sim.checkpoint import Checkpointer, CheckpointError
    from sim.runners import run_gaussian

    def run(**kw):
        return run_gaussian(jax.random.key(0), sample_size=10, estimator="mle",
                            method="sample", num_chains=300, num_generations=5,
                            progress=False, snapshot_generations=(5,), **kw)

    def arrays(r, tag):
        a = {f"{tag}snap/{k}": v for k, v in r.snapshots.items()}
        a.update({f"{tag}final/{k}": v for k, v in r.final._asdict().items()})
        for k, m in r.moments.items():
            for s in ("mean", "m2", "m3", "m4"):
                a[f"{tag}moments/{k}/{s}"] = getattr(m, s)
        a.update({f"{tag}passage/{k}": v for k, v in r.first_passage.items()})
        return a

    res = arrays(run(), "")
    info = dict(process_count=jax.process_count(), process_index=jax.process_index(),
                devices=len(jax.devices()), local_devices=len(jax.local_devices()))
    if nproc > 1:
        from jax.experimental import multihost_utils
        # checkpoints: process 0 alone writes (each process its own directory here) ...
        ck = os.path.join(os.path.dirname(out), "ck")
        mine = os.path.join(ck, f"p{pid}")
        cfg = dict(test="distributed")
        res.update(arrays(run(checkpoint=Checkpointer(mine, cfg, every_s=0),
                              segment_length=2), "ck_"))
        info["written"] = sorted(os.listdir(mine))
        # ... so a resume that finds other files on another process fails on both ...
        try:
            run(checkpoint=Checkpointer(mine, cfg, every_s=0), segment_length=2)
            info["mismatch"] = ""
        except CheckpointError as e:
            info["mismatch"] = str(e)
        # ... and a resume from a directory both see loads the chunks on both
        shared = os.path.join(ck, "shared")
        if pid == 0:
            shutil.copytree(os.path.join(ck, "p0"), shared)
        multihost_utils.sync_global_devices("copied")
        res.update(arrays(run(checkpoint=Checkpointer(shared, cfg, every_s=0),
                              segment_length=2), "resumed_"))
    np.savez(out, info=np.asarray(json.dumps(info)), **res)
    """
)

pytestmark = pytest.mark.multiprocess


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _start(tmp_path, name, ndev, nproc=1, pid=0, port=0) -> tuple:
    script = tmp_path / "worker.py"
    if not script.exists():
        script.write_text(WORKER)
    workdir = tmp_path / name
    workdir.mkdir(exist_ok=True)
    out = workdir / f"p{pid}.npz"
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        PYTHONPATH=ROOT,
        XLA_FLAGS=f"--xla_force_host_platform_device_count={ndev}",
    )
    cmd = [sys.executable, str(script), str(out), str(nproc), str(pid), str(port)]
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    return proc, out


def _wait_all(started) -> list[dict]:
    """Waits for every process (killing all of them past TIMEOUT_S); their outputs."""
    deadline = time.monotonic() + TIMEOUT_S
    logs = []
    try:
        for proc, _ in started:
            log, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            logs.append(log)
    except subprocess.TimeoutExpired:
        for proc, _ in started:
            proc.kill()
        pytest.fail(f"processes still running after {TIMEOUT_S} s (a hung collective?)")
    for (proc, _), log in zip(started, logs, strict=True):
        assert proc.returncode == 0, log[-4000:]
    out = []
    for _, path in started:
        with np.load(path) as z:
            out.append({k: z[k] for k in z.files})
    return out


def test_two_processes_match_one_bit_for_bit(tmp_path):
    port = _free_port()
    t0 = time.monotonic()
    started = [_start(tmp_path, "two", 2, nproc=2, pid=p, port=port) for p in (0, 1)]
    started += [_start(tmp_path, "four", 4), _start(tmp_path, "one", 1)]
    p0, p1, four, one = _wait_all(started)
    print(f"4 processes in {time.monotonic() - t0:.1f} s")
    infos = [json.loads(str(r.pop("info"))) for r in (p0, p1, four, one)]
    assert [i["process_count"] for i in infos] == [2, 2, 1, 1]
    assert [i["process_index"] for i in infos] == [0, 1, 0, 0]
    assert [(i["devices"], i["local_devices"]) for i in infos] == [(4, 2), (4, 2), (4, 4), (1, 1)]

    keys = sorted(four)
    assert any(k.startswith("snap/") for k in keys) and any(k.startswith("final/") for k in keys)
    for k in keys:
        for name, r in (("process 0", p0), ("process 1", p1), ("1 device", one)):
            assert np.array_equal(r[k], four[k]), f"{k}: {name} differs from 4 devices"
        for tag in ("ck_", "resumed_"):  # checkpointed and resumed two-process runs
            for r in (p0, p1):
                assert np.array_equal(r[tag + k], four[k]), f"{tag}{k} differs"

    # only process 0 wrote checkpoint files
    assert "chunk-00000.npz" in infos[0]["written"]
    assert infos[1]["written"] == []
    for i in infos[:2]:
        assert "not the same on every process" in i["mismatch"]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(num_processes=2, process_id=2), r"process_id=2: must be < num_processes=2"),
        (dict(num_processes=2, process_id=-1), r"process_id=-1: must be >= 0"),
        (dict(num_processes=0), r"num_processes=0: must be >= 1"),
        (dict(num_processes=2.0), r"num_processes=2.0: must be an integer"),
        (dict(process_id=True), r"process_id=True: must be an integer"),
        (dict(coordinator_address="localhost"), r"coordinator_address='localhost': .*host:port"),
        (dict(coordinator_address="h:99999"), r"port 99999 is not in 1..65535"),
        (dict(local_device_ids=[0, 0]), r"local_device_ids=\[0, 0\]: repeated"),
        (dict(local_device_ids=[]), r"local_device_ids=\[\]: must be"),
    ],
)
def test_initialize_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        distributed.initialize(**kwargs)  # checked before jax.distributed is touched
    assert not distributed.is_initialized()


def test_initialize_accepts_good_arguments():
    got = distributed.check_arguments("10.0.0.1:1234", 4, 3, 1)
    assert got == dict(
        coordinator_address="10.0.0.1:1234", num_processes=4, process_id=3, local_device_ids=[1]
    )
    assert distributed.check_arguments("[::1]:80")["coordinator_address"] == "[::1]:80"
    assert distributed.check_arguments() == dict.fromkeys(got)


def test_single_process_placement_is_plain():
    assert distributed.process_count() == 1 and distributed.is_main_process()
    assert distributed.main_decides(True) and not distributed.main_decides(False)
    assert distributed.same_on_all("anything")
    x = np.arange(6.0)
    np.testing.assert_array_equal(distributed.fetch(x), x)


def _study_flags(argv):
    """A study's flags (the Gaussian chain's), on a FlagValues of their own, parsed."""
    from experiments import gaussian_report

    fv = common.define_flags(
        gaussian_report.StudyConfig,
        output_dir="out/unused",
        module_name="test_distributed_flags",
        flag_values=flags.FlagValues(),
    )
    fv(["prog", *argv])
    return fv


@pytest.mark.parametrize(
    "argv,error",
    [
        (["--num_processes=2"], "--num_processes=2: only used with --distributed"),
        (["--coordinator_address=h:1"], "--coordinator_address=h:1: only used with --distributed"),
        (
            ["--distributed", "--num_processes=2", "--process_id=2"],
            "--process_id=2: must be < num_processes=2",
        ),
        (["--distributed", "--coordinator_address=h"], "--coordinator_address='h': must be"),
    ],
)
def test_distributed_flags_are_checked(argv, error):
    fv = _study_flags(argv)
    with pytest.raises(ValueError, match=error):
        common.distributed_from_flags(fv)


def test_distributed_flags_default_to_detection():
    assert common.distributed_from_flags(_study_flags([])) is None
    assert common.distributed_from_flags(_study_flags(["--distributed"])) == (
        distributed.check_arguments()
    )


@pytest.mark.slow
def test_experiment_cli_on_two_processes(tmp_path):
    """``python -m experiments.gaussian_chain --distributed`` on two processes: both
    finish, process 0 alone writes the outputs."""
    port = _free_port()
    procs = []
    for pid in (0, 1):
        out = tmp_path / f"out{pid}"
        args = [
            "--distributed",
            f"--coordinator_address=localhost:{port}",
            "--num_processes=2",
            f"--process_id={pid}",
            "--num_chains=200",
            "--generations=5",
            "--sample_sizes=10",
            "--estimators=mle",
            "--noprogress",
            f"--output_dir={out}",
        ]
        env = dict(
            os.environ,
            JAX_PLATFORMS="cpu",
            PYTHONPATH=ROOT,
            MODEL_COLLAPSE_CACHE="",
            XLA_FLAGS="--xla_force_host_platform_device_count=2",
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "experiments.gaussian_chain", *args],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    try:
        logs = [p.communicate(timeout=600)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    assert "comparisons tested" in logs[0] and "comparisons tested" not in logs[1]
    assert (tmp_path / "out0" / "manifest.json").exists()
    assert not (tmp_path / "out1").exists()
    shutil.rmtree(tmp_path / "out0")
