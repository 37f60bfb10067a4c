"""`python -m prefopt.train task=constraints_tiny`: the task builds, trains and is judged end to end."""

import json
import os
import subprocess
import sys

TINY_RUN = [
    "task=constraints_tiny",
    "trainer.max_steps=4",
    "trainer.batch_size=8",
    "eval.eval_every=2",
    "eval.reference_samples_per_prompt=2",
    "eval.test_policy_samples_per_prompt=1",
    "eval.test_reference_samples_per_prompt=2",
    "eval.best_of_n_ns=[1,2]",
    "device=cpu",
]


def test_a_tiny_run_trains_and_reports_the_constraint_metrics(tmp_path):
    env = {**os.environ, "PREFOPT_CACHE": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "prefopt.train", *TINY_RUN],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs").glob("*/*/*")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["steps"] == 4
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evaluations = [r for r in rows if r["split"] == "validation"]
    assert [r["step"] for r in evaluations] == [0, 2, 4]
    for row in evaluations:
        assert 0.0 <= row["win_rate"] <= 1.0
        for prefix in ("", "ref_"):  # the policy's samples and pi_ref's
            assert 0.0 <= row[f"{prefix}grammatical"] <= 1.0
            # the constraint metrics average over complete reviews (NaN elsewhere)
            for metric in ("constraints_met", "length_error"):
                assert (f"{prefix}{metric}" in row) == (row[f"{prefix}grammatical"] > 0), metric
    assert any(row["grammatical"] > 0 for row in evaluations)  # the metrics were computed
    assert (tmp_path / "cache" / "tasks").is_dir()
    (built,) = (tmp_path / "cache" / "tasks").glob("constraints-*/info.json")
    assert "chosen_longer" in json.loads(built.read_text())["splits"]["train"]
