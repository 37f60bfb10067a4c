"""A tiny Hydra multirun: complete run directories, a restart re-runs nothing, pi_ref work once."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _sweep(tmp: Path, losses: str) -> str:
    env = {**os.environ, "PREFOPT_CACHE": str(tmp / "cache"), "HYDRA_FULL_ERROR": "1"}
    command = [
        sys.executable,
        "-m",
        "prefopt.train",
        "-m",
        "task=reviews_tiny",
        f"loss={losses}",
        "trainer.epochs=1",
        "trainer.batch_size=16",
        "eval.eval_every=0.5",
        f"hydra.sweep.dir={tmp / 'sweep'}",
    ]
    result = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout + result.stderr


@pytest.mark.slow
def test_multirun_restart_and_shared_reference(tmp_path):
    first = _sweep(tmp_path, "dpo,ipo")
    sweep = tmp_path / "sweep"
    runs = sorted(str(p.parent.relative_to(sweep)) for p in sweep.glob("*/*/config.yaml"))
    assert len(runs) == 2  # <loss>/<overrides>: directories named after their overrides
    assert runs[0].startswith("dpo/") and "loss=dpo" in runs[0] and "trainer.epochs=1" in runs[0]
    assert runs[1].startswith("ipo/")
    for run in runs:
        run_dir = tmp_path / "sweep" / run
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "finished"
        for name in (
            "config.yaml",
            "overrides.yaml",
            "metrics.jsonl",
            "provenance.json",
            "data_report.json",
            "policy/config.json",
            "best_of_n.json",
        ):
            assert (run_dir / name).exists(), name
        assert list((run_dir / "samples").glob("step_*_validation.jsonl"))
    # pi_ref's training log-probs and samples: computed by the first run, loaded by the second
    assert first.count("reference log-probs for train (") == 2
    assert first.count("reference log-probs for train") - first.count("train (") == 0
    assert sum("for train" in line and "computed" in line for line in first.splitlines()) == 1
    assert (
        sum(
            "pi_ref samples for split 'validation'" in line and "computed" in line
            for line in first.splitlines()
        )
        == 1
    )
    before = {r: (tmp_path / "sweep" / r / "summary.json").stat().st_mtime_ns for r in runs}
    second = _sweep(tmp_path, "dpo,ipo,kto")  # restarted, with one value added
    assert second.count("run already finished") == 2
    after = {r: (tmp_path / "sweep" / r / "summary.json").stat().st_mtime_ns for r in runs}
    assert after == before  # finished runs were not re-run or rewritten
    kto_dir = runs[0].replace("loss=dpo", "loss=kto").replace("dpo/", "kto/", 1)
    kto = json.loads((tmp_path / "sweep" / kto_dir / "summary.json").read_text())
    assert kto["status"] == "finished"
    assert not any("pi_ref samples" in line and "computed" in line for line in second.splitlines())
