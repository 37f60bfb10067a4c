"""SIGKILL at fixed moments of a tiny run; the same command resumes it to the straight run's metrics."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("kill_worker.py")


def _start(tiny_root, run_dir):
    env = {**os.environ, "PYTHONPATH": str(WORKER.parent)}
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(tiny_root), str(run_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _finish(tiny_root, run_dir):
    process = _start(tiny_root, run_dir)
    _, err = process.communicate(timeout=900)
    assert process.returncode == 0, err.decode()[-2000:]


def _rows(run_dir):
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def straight(tiny_root, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    _finish(tiny_root, run_dir)
    return run_dir


@pytest.mark.parametrize("kill_after", ["first_checkpoint", "third_checkpoint"])
def test_sigkill_then_resume_matches(tiny_root, tmp_path, straight, kill_after):
    run_dir = tmp_path / "run"
    process = _start(tiny_root, run_dir)
    wanted = {"first_checkpoint": 1, "third_checkpoint": 3}[kill_after]
    deadline = time.time() + 120
    while time.time() < deadline:  # kill right after the wanted number of evaluations
        evals = (
            [r for r in _rows(run_dir) if r["split"] == "validation"]
            if (run_dir / "metrics.jsonl").exists()
            else []
        )
        if len(evals) >= wanted:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "running"
    _finish(tiny_root, run_dir)
    assert _rows(run_dir) == _rows(straight)
    summary = json.loads((run_dir / "summary.json").read_text())
    expected = json.loads((straight / "summary.json").read_text())
    for key in ("final", "best", "steps", "tokens_seen"):
        assert summary[key] == expected[key], key
