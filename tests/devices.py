"""Fresh processes for tests: N forced CPU devices (determinism), experiment CLIs."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_on_devices(script_text: str, ndev: int, tmp_path) -> dict:
    """Runs ``script_text`` (it writes JSON to ``sys.argv[1]``) on ``ndev`` CPU devices."""
    script = tmp_path / "on_devices.py"
    script.write_text(script_text)
    out = tmp_path / f"out{ndev}.json"
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        PYTHONPATH=ROOT,
        XLA_FLAGS=f"--xla_force_host_platform_device_count={ndev}",
    )
    subprocess.run([sys.executable, str(script), str(out)], check=True, env=env, cwd=ROOT)
    return json.loads(out.read_text())


def run_module(module: str, args, cwd, timeout: int = 900) -> subprocess.CompletedProcess:
    """Runs ``python -m module *args`` on the CPU in ``cwd`` (experiment CLIs define absl
    flags of the same names, so each runs in its own process)."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )
