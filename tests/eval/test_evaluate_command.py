"""`python -m prefopt.evaluate` on a run directory made in the test, with a stand-in task."""

import json
import sys
import types

import pytest
import torch
import yaml
from conftest import StandInTask, load_model

from prefopt import evaluate
from prefopt.results.store import read_json
from prefopt.trainer.checkpoint import save_checkpoint
from prefopt.trainer.run import run_training

EVAL_CFG = {"max_new_tokens": 8, "batch_size": 16, "num_prompts": None, "best_of_n_ns": [1, 2]}


@pytest.fixture
def run_dir(tmp_path, model_dir, monkeypatch):
    """A run: resolved config, a final policy (= pi_ref) and a perturbed checkpoint at step 10."""
    task_module = types.ModuleType("prefopt.tasks")
    task_module.build_task = lambda cfg: StandInTask(model_dir, tmp_path / "task")
    monkeypatch.setitem(sys.modules, "prefopt.tasks", task_module)
    run = tmp_path / "run"
    config = {
        "task": {"name": "standin"},
        "model": {"name_or_path": "@task", "dtype": "float32"},
        "data": {"source": "@task", "format": "trl", "max_prompt_length": 32, "add_bos": False},
        "judge": {"kind": "gold"},
        "eval": {**EVAL_CFG, "proxy": True},
        "seed": 0,
        "cache_dir": str(tmp_path / "cache"),
        "device": "cpu",
    }
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    load_model(model_dir).save_pretrained(run / "policy")
    policy = load_model(model_dir)
    torch.manual_seed(0)
    with torch.no_grad():
        for param in policy.parameters():
            param.add_(0.5 * torch.randn_like(param) * param.std().clamp_min(1e-3))
    save_checkpoint(run, 10, policy, {"step": 10}, keep_last=1)  # the trainer's checkpoint format
    return run


def test_evaluates_checkpoints_and_writes_results(run_dir, capsys):
    metrics = evaluate.evaluate_run(run_dir, "step_10", "test", best_of_n=True)
    written = read_json(run_dir / "eval" / "step_10_test.json")
    assert written["step"] == 10 and written["checkpoint"] == "step_10"
    assert written["win_rate"] == pytest.approx(metrics["win_rate"])
    assert {"grammatical", "ref_grammatical", "proxy_reward", "kl"} <= set(written)
    assert metrics["kl"] != 0.0 and metrics["kl_se"] > 0  # a changed policy
    samples = (run_dir / "eval" / "step_10_test_samples.jsonl").read_text().splitlines()
    assert len(samples) == 24  # the stand-in's test prompts
    assert [r["n"] for r in read_json(run_dir / "eval" / "best_of_n_test.json")] == [1, 2]

    evaluate.main([f"run_dir={run_dir}", "split=validation"])  # checkpoint=final: pi_ref itself
    final = json.loads(capsys.readouterr().out)
    assert final["kl"] == 0.0
    assert read_json(run_dir / "eval" / "final_validation.json")["kl"] == 0.0


def test_missing_checkpoint_and_bad_arguments(run_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="step_0000010"):
        evaluate.evaluate_run(run_dir, "step_99")
    with pytest.raises(ValueError, match="'final' or 'step_N'"):
        evaluate.evaluate_run(run_dir, "best")
    with pytest.raises(FileNotFoundError, match="config.yaml"):
        evaluate.evaluate_run(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="bad argument"):
        evaluate.parse_arguments(["run_dir=x", "chekpoint=final"])
    with pytest.raises(ValueError, match="run_dir=PATH is required"):
        evaluate.parse_arguments(["split=test"])
    assert not (run_dir / "eval").exists()  # nothing half-written after the errors


# A tiny run of the built-in task: 4 steps, evaluated at 0, 2 and 4, every checkpoint kept.
TINY_RUN = [
    "task=reviews_tiny",
    "trainer.max_steps=4",
    "trainer.batch_size=8",
    "trainer.keep_checkpoints=10",
    "eval.eval_every=2",
    "eval.max_new_tokens=16",
    "eval.reference_samples_per_prompt=2",
    "eval.best_of_n_ns=[]",
    "device=cpu",
]


def logged_rows(run_dir, step):
    """The trainer's evaluation rows at ``step``, by split, timings left out."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {
        r["split"]: without_timings(r) for r in rows if r["step"] == step and r["split"] != "train"
    }


def without_timings(row):
    return {k: v for k, v in row.items() if not k.endswith("_seconds")}


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="evaluate samples final with step -1, knows no 'best'")
def test_reproduces_the_trainers_numbers(compose_config, tmp_path):
    run_dir = tmp_path / "run"
    summary = run_training(compose_config(TINY_RUN), run_dir)
    steps = {"final": summary["steps"], "best": summary["best"]["step"], "step_2": 2}
    for checkpoint, step in steps.items():
        logged = logged_rows(run_dir, step)
        assert logged, f"the trainer logged no evaluation at step {step}"
        for split, row in logged.items():
            metrics = evaluate.evaluate_run(run_dir, checkpoint, split)
            assert without_timings(metrics) == row, (checkpoint, split)
