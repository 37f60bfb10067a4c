"""A run of a built-in task is bound to the task build it read: the same build carried to another
cache is the same run; another build of the same task config is refused, naming it."""

import json

import pytest

from prefopt.errors import RunMismatchError
from prefopt.tasks.carry import pack, unpack
from prefopt.trainer.run import run_training


def test_a_carried_build_is_the_same_run_and_another_build_is_refused(tmp_path, tiny_task_config):
    run_dir = tmp_path / "run"
    first = run_training(tiny_task_config(tmp_path / "cache"), run_dir)
    assert first["status"] == "finished"
    identity = json.loads((run_dir / "run_identity.json").read_text())
    (key,) = [name for name in identity["files"] if name.startswith("task reviews-")]
    metrics = (run_dir / "metrics.jsonl").read_text()

    build = tmp_path / "cache" / "tasks" / key.removeprefix("task ")
    unpack(pack(build, tmp_path / "carried"), tmp_path / "carried_cache")
    again = run_training(tiny_task_config(tmp_path / "carried_cache"), run_dir)
    assert again["status"] == "finished" and again["final"] == first["final"]
    assert (run_dir / "metrics.jsonl").read_text() == metrics  # reused, not trained again

    prompts = build / "prompts" / "validation.jsonl"  # another build: other held-out prompts
    lines = prompts.read_text().splitlines()
    prompts.write_text("\n".join([json.dumps({"prompt": "another prompt"}), *lines[1:]]) + "\n")
    with pytest.raises(RunMismatchError, match="another build") as raised:
        run_training(tiny_task_config(tmp_path / "cache"), run_dir)
    assert key in str(raised.value)
    assert (run_dir / "metrics.jsonl").read_text() == metrics
