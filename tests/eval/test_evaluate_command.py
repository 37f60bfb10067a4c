"""`python -m prefopt.evaluate`: the trainer's numbers again, from a run's checkpoints.

The slow tests train tiny runs (the built-in task's tiny preset, and a JSONL data file with
validation and test splits) and evaluate their checkpoints; the fast ones check the command line and
the errors a user can fix on a run directory made in the test.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from prefopt import evaluate
from prefopt.errors import RunMismatchError, UserError
from prefopt.results.store import read_json
from prefopt.trainer.run import run_training
from prefopt.trainer.setup import resolve_task

# A tiny run of the built-in task: 6 steps, evaluated at 2, 4 and 6 (best: 4, at this learning
# rate on the SFT pi_ref; at the default 5e-4 the best is the last step), checkpoints kept.
TINY_RUN = [
    "task=reviews_tiny",
    "trainer.lr=2e-3",
    "trainer.max_steps=6",
    "trainer.batch_size=8",
    "trainer.keep_checkpoints=10",
    "eval.eval_every=2",
    "eval.at_start=false",
    "eval.max_new_tokens=16",
    "eval.reference_samples_per_prompt=2",
    "eval.test_policy_samples_per_prompt=2",  # k > 1 on test: the trainer's several samples again
    "eval.test_reference_samples_per_prompt=3",
    "eval.best_of_n_ns=[1,2]",
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


def assert_reproduces(run_dir, checkpoint, step):
    """evaluate's row for each split the trainer scored at ``step`` equals the trainer's."""
    logged = logged_rows(run_dir, step)
    assert logged, f"the trainer logged no evaluation at step {step}"
    for split, row in logged.items():
        metrics = evaluate.evaluate_run(run_dir, checkpoint, split)
        assert without_timings(metrics) == row, (checkpoint, split)
        assert {"win_rate", "kl", "reward_accuracy"} <= set(metrics)  # generation and pair metrics


@pytest.mark.slow
def test_reproduces_the_trainers_numbers(compose_config, tmp_path, capsys):
    run_dir = tmp_path / "run"
    summary = run_training(compose_config(TINY_RUN), run_dir)
    steps = {"final": summary["steps"], "best": summary["best"]["step"], "step_2": 2}
    assert steps == {"final": 6, "best": 4, "step_2": 2}, "the run no longer covers three steps"
    for checkpoint, step in steps.items():
        assert_reproduces(run_dir, checkpoint, step)

    written = read_json(run_dir / "eval" / "best_test.json")
    assert written["checkpoint"] == "best" and written["step"] == 4
    samples = (run_dir / "eval" / "step_0000002_validation_samples.jsonl").read_text()
    assert samples == (run_dir / "samples" / "step_0000002_validation.jsonl").read_text()
    evaluate.evaluate_run(run_dir, "final", "validation", best_of_n=True)
    best_of_n = read_json(run_dir / "eval" / "best_of_n_validation.json")
    assert best_of_n == read_json(run_dir / "best_of_n.json")  # the trainer's baseline
    capsys.readouterr()
    evaluate.main([f"run_dir={run_dir}", "checkpoint=step_2", "split=validation"])
    printed = json.loads(capsys.readouterr().out)  # stdout holds the row alone
    assert without_timings(printed) == logged_rows(run_dir, 2)["validation"]
    with pytest.raises(
        evaluate.ArgumentError,
        match="'dev': not a held-out split; this run can score validation, test",
    ):
        evaluate.evaluate_run(run_dir, "final", "dev")


@pytest.mark.slow
def test_reproduces_a_loss_with_state(compose_config, tmp_path):
    """BCO's running mean of rewards is state of the loss: evaluate scores with the trainer's."""
    run_dir = tmp_path / "run"
    summary = run_training(compose_config([*TINY_RUN, "loss=bco_pair"]), run_dir)
    assert summary["best"]["step"] > 0, "the best checkpoint must have a running mean to restore"
    for checkpoint, step in {"final": summary["steps"], "best": summary["best"]["step"]}.items():
        assert_reproduces(run_dir, checkpoint, step)


@pytest.mark.slow
def test_reproduces_a_run_on_a_jsonl_file(compose_config, tmp_path):
    """A run with no built-in task: its held-out prompts come from the data file's splits."""
    task_cfg = compose_config(["task=reviews_tiny"])
    _, resolved = resolve_task(task_cfg, Path(task_cfg.cache_dir))
    files = {  # the built task's pairs, as three JSONL files (copies: the test changes one)
        split: shutil.copy(path, tmp_path / f"{split}.jsonl")
        for split, path in resolved.data_cfg["splits"].items()
    }
    overrides = [
        "task=none",
        "model=hf",
        f"model.name_or_path={resolved.model_path}",
        "model.dtype=float32",
        "data=jsonl",
        f"data.source={files['train']}",
        f"data.splits.validation={files['validation']}",
        f"data.splits.test={files['test']}",
        "data.max_length=null",
        "data.max_prompt_length=32",  # the task model has 128 positions
        "data.max_response_length=64",
        "judge=proxy",
        f"judge.name_or_path={resolved.model_path}",
        *(o for o in TINY_RUN if o.startswith(("trainer.", "eval.", "device"))),
    ]
    run_dir = tmp_path / "run"
    summary = run_training(compose_config(overrides), run_dir)
    assert_reproduces(run_dir, "final", summary["steps"])
    with open(files["train"], "a") as handle:  # the data changes after training
        handle.write(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    with pytest.raises(RunMismatchError, match=r"train.jsonl: content changed"):
        evaluate.evaluate_run(run_dir, "final", "validation")


@pytest.fixture
def unfinished_run(tmp_path):
    """A run directory as a running trainer leaves it: config, status running, one checkpoint."""
    run = tmp_path / "run"
    checkpoint = run / "checkpoints" / "step_0000002"
    checkpoint.mkdir(parents=True)
    (checkpoint / "model.safetensors").write_bytes(b"")
    (checkpoint / "state.pt").write_bytes(b"")
    (run / "config.yaml").write_text(yaml.safe_dump({"seed": 0}))
    (run / "summary.json").write_text(json.dumps({"status": "running", "error": None}))
    return run


@pytest.mark.parametrize(
    ("run", "checkpoint", "error", "message"),
    [
        ("nowhere", "final", evaluate.RunNotFoundError, "nowhere does not exist"),
        ("", "final", evaluate.RunNotFoundError, "has no config.yaml"),
        (
            "run",
            "final",
            evaluate.RunNotFinishedError,
            "status of .* is running; .*kept in .*: step_0000002$",
        ),
        ("run", "best", evaluate.RunNotFinishedError, "checkpoint=best needs a finished run"),
        ("run", "step_9", evaluate.UnknownCheckpointError, "step_0000009 .*kept .*step_0000002"),
        ("run", "latest", evaluate.UnknownCheckpointError, "expected final, best or step_N"),
    ],
)
def test_errors_a_user_can_fix(unfinished_run, run, checkpoint, error, message):
    with pytest.raises(error, match=message) as raised:
        evaluate.evaluate_run(unfinished_run.parent / run, checkpoint)
    assert isinstance(raised.value, UserError)
    assert not (unfinished_run / "eval").exists()  # nothing written


def test_command_line_errors_print_one_line(unfinished_run, capsys):
    with pytest.raises(SystemExit) as exited:
        evaluate.main([f"run_dir={unfinished_run}", "checkpoint=step_9"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: checkpoint step_0000009") and "Traceback" not in err
    with pytest.raises(evaluate.UnknownCheckpointError):  # debug=true: the exception itself
        evaluate.main([f"run_dir={unfinished_run}", "checkpoint=step_9", "debug=true"])
    for argv, message in [
        (["run_dir=x", "chekpoint=final"], "bad argument 'chekpoint=final'"),
        (["split=test"], "run_dir=PATH is required"),
        (["run_dir=x", "best_of_n=yes"], "best_of_n must be true or false"),
    ]:
        with pytest.raises(evaluate.ArgumentError, match=message):
            evaluate.parse_arguments(argv)


def test_help_lists_the_arguments_and_an_example():
    done = subprocess.run(
        [sys.executable, "-m", "prefopt.evaluate", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    for key in evaluate.ARGUMENTS:
        assert f"  {key}=" in done.stdout
    assert evaluate.EXAMPLE in done.stdout
