"""Every study driver prints its runs times the measured time per run before it launches."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))

import study  # noqa: E402

from prefopt.train import run_name  # noqa: E402


def test_the_plan_counts_the_experiments_sweep_and_the_command_lines_on_top():
    # conf/experiment/overfit.yaml sweeps 5 losses x 2 seeds
    plan = study.sweep_plan(["experiment=overfit"])
    assert (plan.runs, plan.sweep) == (10, Path("multirun/overfit"))
    assert study.sweep_plan(["experiment=overfit", "seed=0,1,2"]).runs == 15  # 5 x 3
    assert study.sweep_plan(["experiment=overfit", "seed=3"]).runs == 5  # one seed replaces two
    assert study.sweep_plan(["experiment=overfit", "seed=range(1,4)"]).runs == 15
    assert study.sweep_plan(["experiment=overfit", "+trial=a,b", "hydra.searchpath=[]"]).runs == 20
    plan = study.sweep_plan(["name=x", "loss=dpo,sft", "trainer.lr=1e-4,1e-3,1e-2"])
    assert (plan.runs, plan.sweep) == (6, Path("multirun/x"))


def test_the_planned_runs_are_named_as_the_trainer_names_them():
    plan = study.sweep_plan(["name=x", "+trial=a,b", "hydra.searchpath=[]", "launcher=joblib"])
    assert plan.run_names == ("+trial=a", "+trial=b")  # launcher and hydra keys leave no trace
    plan = study.sweep_plan(["name=x", "loss=dpo,sft", "seed=1", "trainer.lr=1e-3,1e-2"])
    assert plan.run_names == tuple(
        run_name([f"loss={loss}", "seed=1", f"trainer.lr={lr}"])
        for loss in ("dpo", "sft")
        for lr in ("0.001", "0.01")  # Hydra writes a swept float in its own form
    )


def test_finished_counts_the_planned_runs_whose_summary_says_finished(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = study.sweep_plan(["name=x", "loss=dpo", "seed=0,1,2"])
    for seed, status in ((0, "finished"), (1, "failed")):
        run = tmp_path / "multirun" / "x" / "dpo" / f"loss=dpo,seed={seed}"
        run.mkdir(parents=True)
        (run / "summary.json").write_text(json.dumps({"status": status}))
    other = tmp_path / "multirun" / "x" / "dpo" / "loss=dpo,seed=9"  # finished, not planned
    other.mkdir(parents=True)
    (other / "summary.json").write_text(json.dumps({"status": "finished"}))
    assert (plan.runs, plan.finished()) == (3, 1)


def test_a_planned_launch_prints_runs_times_the_measured_time_first(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    launched = []
    monkeypatch.setattr(study, "train", lambda *overrides: launched.append(overrides))
    study.planned_train("experiment=overfit")
    out = capsys.readouterr().out
    assert "10 runs (0 finished, 10 to run) x 300 s per run (stated estimate, no finished" in out
    for index, seconds in enumerate((30.0, 50.0, 70.0)):
        run = tmp_path / "multirun" / "overfit" / "dpo" / f"seed={index}"
        run.mkdir(parents=True)
        summary = {"status": "finished", "train_seconds": seconds, "eval_seconds": 10.0}
        (run / "summary.json").write_text(json.dumps(summary))
    study.planned_train("experiment=overfit", "seed=0,1,2")
    out = capsys.readouterr().out
    assert "15 runs (0 finished, 15 to run) x 60 s per run (median of 3 finished runs)" in out
    assert "= 0.25 h of runs left" in out
    assert launched == [("experiment=overfit",), ("experiment=overfit", "seed=0,1,2")]
