"""The built-in task through the real config: a relative cache directory works from any folder."""

from prefopt.trainer.run import run_training


def test_tiny_task_with_a_relative_cache_dir(tmp_path, monkeypatch, tiny_task_config):
    monkeypatch.chdir(tmp_path)
    summary = run_training(tiny_task_config(".cache/prefopt"), tmp_path / "run")
    assert summary["status"] == "finished" and summary["steps"] == 2
    assert (tmp_path / ".cache" / "prefopt" / "tasks").is_dir()
