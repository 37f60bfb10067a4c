"""Every study driver prints its runs times the measured time per run before it launches."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))

import study  # noqa: E402


def test_the_plan_counts_the_experiments_sweep_and_the_command_lines_on_top():
    # conf/experiment/overfit.yaml sweeps 5 losses x 2 seeds
    assert study.sweep_plan(["experiment=overfit"]) == (10, Path("multirun/overfit"))
    assert study.sweep_plan(["experiment=overfit", "seed=0,1,2"])[0] == 15  # 5 x 3
    assert study.sweep_plan(["experiment=overfit", "seed=3"])[0] == 5  # one seed replaces two
    assert study.sweep_plan(["experiment=overfit", "seed=range(1,4)"])[0] == 15
    assert study.sweep_plan(["experiment=overfit", "+trial=a,b", "hydra.searchpath=[]"])[0] == 20
    assert study.sweep_plan(["name=x", "loss=dpo,sft", "trainer.lr=1e-4,1e-3,1e-2"]) == (
        6,
        Path("multirun/x"),
    )


def test_a_planned_launch_prints_runs_times_the_measured_time_first(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    launched = []
    monkeypatch.setattr(study, "train", lambda *overrides: launched.append(overrides))
    study.planned_train("experiment=overfit")
    assert (
        "10 runs x 300 s per run (stated estimate, no finished run yet)" in capsys.readouterr().out
    )
    for index, seconds in enumerate((30.0, 50.0, 70.0)):
        run = tmp_path / "multirun" / "overfit" / "dpo" / f"seed={index}"
        run.mkdir(parents=True)
        summary = {"status": "finished", "train_seconds": seconds, "eval_seconds": 10.0}
        (run / "summary.json").write_text(json.dumps(summary))
    study.planned_train("experiment=overfit", "seed=0,1,2")
    out = capsys.readouterr().out
    assert "15 runs x 60 s per run (median of 3 finished runs) = 0.25 h of runs" in out
    assert launched == [("experiment=overfit",), ("experiment=overfit", "seed=0,1,2")]
