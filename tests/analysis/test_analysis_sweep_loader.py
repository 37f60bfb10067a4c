"""load_sweep / load_run on a fabricated run store."""

import json

import pytest

from prefopt.results import load_run, load_sweep
from prefopt.results.sweep import config_columns, find_run_dirs, load_samples


def test_every_run_directory_is_found_at_depth_and_hidden_folders_are_skipped(planted, tmp_path):
    runs = find_run_dirs(planted.root)
    assert len(runs) == len(planted.run_ids) == 3 * 2 * 2 * 3
    hydra = tmp_path / "run" / ".hydra"
    hydra.mkdir(parents=True)
    (hydra / "config.yaml").write_text("seed: 1\n")
    assert find_run_dirs(tmp_path) == []


def test_rows_per_run_and_split(planted):
    frame = load_sweep(planted.root)
    finished = frame[frame.run_id == "loss=dpo/beta=0.1,lr=0.0001,seed=0"]
    counts = finished.split.value_counts().to_dict()
    assert counts == {"train": 20, "validation": 10, "test": 10}
    assert set(frame.status) == {"finished", "failed", "running", "incomplete"}


def test_hyperparameters_are_flattened_columns(planted):
    frame = load_sweep(planted.root, split="validation")
    for column in ("loss.name", "loss.beta", "trainer.lr", "trainer.epochs", "seed", "model.name"):
        assert column in frame.columns
        assert column in config_columns(frame)
    assert "win_rate" not in config_columns(frame)
    assert list(frame.columns[:5]) == ["run_id", "status", "split", "step", "epoch"]
    assert sorted(frame["loss.beta"].unique()) == [0.1, 0.5]
    assert frame["seed"].dtype.kind == "i"


def test_config_columns_are_inferred_when_attrs_are_lost(planted):
    frame = load_sweep(planted.root, split="validation")
    frame.attrs.clear()
    inferred = config_columns(frame)
    assert {"loss.name", "loss.beta", "trainer.lr", "seed"} <= set(inferred)
    assert "win_rate" not in inferred


def test_runs_without_metrics_are_kept_with_their_status(planted):
    frame = load_sweep(planted.root, split="validation")
    incomplete = frame[frame.run_id == planted.incomplete_run]
    assert len(incomplete) == 1
    assert incomplete.status.item() == "incomplete"
    assert incomplete.split.isna().item()
    assert incomplete["loss.name"].item() == "ipo"
    failed = frame[frame.run_id == planted.failed_run]
    assert set(failed.status) == {"failed"}
    assert failed.error.iloc[0].startswith("RuntimeError")
    assert failed.step.max() == 30
    assert frame.run_id.nunique() == len(planted.run_ids)


def test_split_filter_validates_its_argument(planted):
    with pytest.raises(ValueError, match="valid"):
        load_sweep(planted.root, split="valid")
    both = load_sweep(planted.root, split=["validation", "test"])
    assert set(both.split.dropna()) == {"validation", "test"}


def test_load_run_and_a_truncated_last_line(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("loss:\n  name: dpo\n  beta: 1e-1\nseed: 3\n")
    (run / "overrides.yaml").write_text("- loss=dpo\n- seed=3\n")
    rows = [{"split": "train", "step": 1, "epoch": 0.1, "loss": 0.69}]
    (run / "metrics.jsonl").write_text(json.dumps(rows[0]) + '\n{"split": "tra')
    (run / "summary.json").write_text(json.dumps({"status": "running", "error": None}))
    frame = load_run(run)
    assert len(frame) == 1
    assert frame["loss.beta"].item() == 0.1  # "1e-1" is a string to YAML 1.1
    assert frame.run_id.item() == "run"
    assert frame.overrides.item() == "loss=dpo seed=3"
    assert frame.status.item() == "running"


def test_unknown_status_is_kept_with_a_warning_and_a_missing_directory_is_an_error(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"status": "done"}))
    with pytest.warns(UserWarning, match="'done'"):
        frame = load_sweep(tmp_path)
    assert frame.status.item() == "done"
    with pytest.raises(FileNotFoundError):
        load_sweep(tmp_path / "absent")


def test_an_empty_sweep_gives_an_empty_frame(tmp_path):
    frame = load_sweep(tmp_path)
    assert frame.empty
    assert "status" in frame.columns


def test_samples_win_is_the_judge_preference_when_written(tmp_path):
    samples = tmp_path / "samples"
    samples.mkdir()
    rows = [
        {"prompt_index": 0, "policy_reward": 1.0, "reference_reward": 0.0},
        {"prompt_index": 1, "policy_reward": 0.0, "reference_reward": 0.0},
        {"prompt_index": 2, "policy_reward": None, "reference_reward": None, "preference": 1.0},
    ]
    path = samples / "step_0000010_test.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows[:2]) + "\n")
    assert list(load_samples(tmp_path, 10, "test")["win"]) == [1.0, 0.5]
    rows = [{**r, "preference": 0.0} for r in rows[:2]] + rows[2:]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert list(load_samples(tmp_path, 10, "test")["win"]) == [0.0, 0.0, 1.0]
    assert load_samples(tmp_path, 20, "test") is None
