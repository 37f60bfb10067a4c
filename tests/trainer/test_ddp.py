"""Two CPU processes (DDP over gloo) train to the same loss as one with the same global batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run(tiny_root: Path, run_dir: Path, processes: int) -> dict:
    worker = Path(__file__).with_name("ddp_worker.py")
    env = {**os.environ, "PYTHONPATH": str(worker.parent), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={processes}",
        str(worker),
        str(tiny_root),
        str(run_dir),
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((run_dir / "summary.json").read_text())


@pytest.mark.skipif(sys.platform == "win32", reason="gloo over torchrun")
def test_two_processes_match_one(tiny_root, tmp_path):
    one = _run(tiny_root, tmp_path / "one", 1)
    two = _run(tiny_root, tmp_path / "two", 2)
    assert one["steps"] == two["steps"] == 4
    assert one["tokens_seen"] == two["tokens_seen"]
    a, b = one["final"]["validation"], two["final"]["validation"]
    assert a["loss"] < 0.69  # it trained
    assert abs(a["loss"] - b["loss"]) < 1e-4
    assert abs(a["reward_margin"] - b["reward_margin"]) < 1e-3
