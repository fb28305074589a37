"""``python -m voxflow`` is the ``voxflow`` command (it was "No module named voxflow.__main__")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_python_dash_m_voxflow_runs_the_cli() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "voxflow", "validate", str(ROOT / "flows" / "main_ivr.flow")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    usage = subprocess.run(
        [sys.executable, "-m", "voxflow", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert usage.returncode == 0
    assert usage.stdout.startswith("Usage: voxflow "), usage.stdout
