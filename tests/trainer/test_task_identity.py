"""A run of a built-in task is bound to the task build it read: the same build carried to another
cache is the same run; another build of the same task config is refused, naming it."""

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

import prefopt.train  # noqa: F401  (registers the run-name resolver)
from prefopt.errors import RunMismatchError
from prefopt.tasks.carry import pack, unpack
from prefopt.trainer.run import run_training

CONF = Path(__file__).resolve().parents[2] / "conf"


def _config(cache):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(
            config_name="config",
            overrides=[
                "task=reviews_tiny",
                f"cache_dir={cache}",
                "trainer.max_steps=2",
                "eval.generate=false",
                "trainer.batch_size=8",
                "num_threads=1",
            ],
        )


def test_a_carried_build_is_the_same_run_and_another_build_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    first = run_training(_config(tmp_path / "cache"), run_dir)
    assert first["status"] == "finished"
    identity = json.loads((run_dir / "run_identity.json").read_text())
    (key,) = [name for name in identity["files"] if name.startswith("task reviews-")]
    metrics = (run_dir / "metrics.jsonl").read_text()

    build = tmp_path / "cache" / "tasks" / key.removeprefix("task ")
    unpack(pack(build, tmp_path / "carried"), tmp_path / "carried_cache")
    again = run_training(_config(tmp_path / "carried_cache"), run_dir)
    assert again["status"] == "finished" and again["final"] == first["final"]
    assert (run_dir / "metrics.jsonl").read_text() == metrics  # reused, not trained again

    prompts = build / "prompts" / "validation.jsonl"  # another build: other held-out prompts
    lines = prompts.read_text().splitlines()
    prompts.write_text("\n".join([json.dumps({"prompt": "another prompt"}), *lines[1:]]) + "\n")
    with pytest.raises(RunMismatchError, match="another build") as raised:
        run_training(_config(tmp_path / "cache"), run_dir)
    assert key in str(raised.value)
    assert (run_dir / "metrics.jsonl").read_text() == metrics
