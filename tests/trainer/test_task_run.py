"""The built-in task through the real config: a relative cache directory works from any folder."""

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

import prefopt.train  # noqa: F401  (registers the run-name resolver)
from prefopt.trainer.run import run_training

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_tiny_task_with_a_relative_cache_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            config_name="config",
            overrides=[
                "task=reviews_tiny",
                "cache_dir=.cache/prefopt",
                "trainer.max_steps=2",
                "eval.generate=false",
                "trainer.batch_size=8",
            ],
        )
    summary = run_training(cfg, tmp_path / "run")
    assert summary["status"] == "finished" and summary["steps"] == 2
    assert (tmp_path / ".cache" / "prefopt" / "tasks").is_dir()
