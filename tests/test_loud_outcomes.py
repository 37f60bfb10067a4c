"""Outcomes a script can see: SIGTERM ends a run as interrupted and resumable, a failed sweep exits 1."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TINY = ["task=reviews_tiny", "eval.generate=false", "trainer.batch_size=4", "trainer.log_every=1"]


def _env(tmp: Path) -> dict:
    return {**os.environ, "PREFOPT_CACHE": str(tmp / "cache"), "PYTHONUNBUFFERED": "1"}


def _train(tmp: Path, *overrides: str, timeout: int = 600) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "prefopt.train", *overrides]
    return subprocess.run(
        command, cwd=tmp, env=_env(tmp), capture_output=True, text=True, timeout=timeout
    )


def _train_rows(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if '"split": "train"' in x]


@pytest.mark.slow
def test_sigterm_checkpoints_at_a_step_boundary_and_the_run_resumes(tmp_path):
    overrides = [*TINY, "trainer.epochs=4", "eval.eval_every=0"]  # evaluation only at the end
    straight = tmp_path / "straight"
    straight.mkdir()
    assert _train(straight, *overrides).returncode == 0
    (reference_dir,) = (straight / "outputs").glob("*/*/*")
    command = [sys.executable, "-m", "prefopt.train", *overrides]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.time() + 300
    run_dir = None
    while time.time() < deadline and process.poll() is None:
        found = list((tmp_path / "outputs").glob("*/*/*"))
        if found and len(_train_rows(found[0])) >= 3:
            run_dir = found[0]
            break
        time.sleep(0.05)
    assert run_dir is not None, "the run never reached its third step"
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=120)[0].decode()
    assert process.returncode == 128 + signal.SIGTERM, output[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and "SIGTERM" in summary["error"]
    steps = [int(p.name.split("_")[1]) for p in (run_dir / "checkpoints").glob("step_*")]
    total = len(_train_rows(reference_dir))
    assert steps and 3 <= max(steps) < total  # a checkpoint between evaluations
    assert "interrupted" in output and "resume" in output
    resumed = _train(tmp_path, *overrides)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _train_rows(run_dir) == [
        {**row, **{k: row[k] for k in row if k.endswith("_seconds")}}
        for row in _train_rows(reference_dir)
    ]
    finished = json.loads((run_dir / "summary.json").read_text())
    assert finished["final"] == json.loads((reference_dir / "summary.json").read_text())["final"]


@pytest.mark.slow
def test_a_sweep_with_a_failed_run_exits_non_zero_and_lists_it(tmp_path):
    result = _train(tmp_path, "-m", *TINY, "trainer.max_steps=2", "trainer.lr=1e-3,-1")
    assert result.returncode == 1
    assert "1 failed run(s)" in result.stderr and "trainer.lr=-1" in result.stderr
    statuses = {
        ("lr=-1" in p.parent.name): json.loads(p.read_text())["status"]
        for p in (tmp_path / "multirun").glob("*/*/*/summary.json")
    }
    assert statuses == {False: "finished", True: "failed"}
