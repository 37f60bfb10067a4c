"""A run directory is bound to its run: a rerun that differs in config, data or code is refused."""

import json
import shutil

import pytest
from omegaconf import OmegaConf
from tiny import interrupt_train_step, make_config

from prefopt.data.records import DataError
from prefopt.errors import RunMismatchError
from prefopt.results import load_sweep
from prefopt.train import run_name
from prefopt.trainer import run as run_module

DPO = {"name": "dpo", "beta": 0.1}
IPO = {"name": "ipo", "beta": 0.1}


@pytest.fixture
def data_root(tiny_root, tmp_path):
    """A private copy of the tiny model and data, so a test may change its files."""
    root = tmp_path / "data"
    shutil.copytree(tiny_root, root)
    return root


def _config(root, tmp_path, loss=DPO, **trainer):
    return make_config(root, tmp_path / "cache", loss, **trainer)


def _interrupted_run(root, tmp_path, run_dir, monkeypatch, loss=DPO):
    """Train to the fifth optimiser step, then stop as Ctrl-C would (a checkpoint exists)."""
    interrupt_train_step(monkeypatch, run_module.Trainer, 5)  # after the checkpoint of step 4
    with pytest.raises(KeyboardInterrupt):
        run_module.run_training(_config(root, tmp_path, loss), run_dir)
    monkeypatch.undo()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "interrupted"


def _metrics(run_dir):
    return (run_dir / "metrics.jsonl").read_text()


def test_a_rerun_with_another_loss_and_lr_is_refused_naming_the_keys(
    data_root, tmp_path, monkeypatch
):
    run_dir = tmp_path / "run"
    _interrupted_run(data_root, tmp_path, run_dir, monkeypatch)
    before = _metrics(run_dir)
    other = _config(data_root, tmp_path, IPO, lr=5e-3)
    with pytest.raises(RunMismatchError) as raised:
        run_module.run_training(other, run_dir)
    message = str(raised.value)
    assert "loss.name" in message and "'dpo' -> 'ipo'" in message
    assert "trainer.lr" in message and "resume=" in message
    assert _metrics(run_dir) == before  # nothing of the old run touched
    assert "name: dpo" in (run_dir / "config.yaml").read_text()


def test_resume_never_starts_over_and_keeps_the_old_files_aside(data_root, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    _interrupted_run(data_root, tmp_path, run_dir, monkeypatch)
    straight = run_module.run_training(_config(data_root, tmp_path, IPO), tmp_path / "straight")
    fresh = _config(data_root, tmp_path, IPO)
    fresh.resume = "never"
    summary = run_module.run_training(fresh, run_dir)
    assert summary["status"] == "finished" and summary["final"] == straight["final"]
    replaced = list((run_dir / ".replaced").iterdir())
    assert len(replaced) == 1 and (replaced[0] / "metrics.jsonl").exists()


def test_resume_force_continues_a_different_run_and_records_it(data_root, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    _interrupted_run(data_root, tmp_path, run_dir, monkeypatch)
    forced = _config(data_root, tmp_path, DPO, lr=5e-3)
    forced.resume = "force"
    assert run_module.run_training(forced, run_dir)["status"] == "finished"
    record = json.loads((run_dir / "run_identity.json").read_text())
    assert any("trainer.lr" in change for entry in record["forced"] for change in entry["changes"])


@pytest.mark.parametrize("finished", [False, True], ids=["unfinished", "finished"])
def test_changed_data_is_refused_naming_the_file(data_root, tmp_path, monkeypatch, finished):
    run_dir = tmp_path / "run"
    if finished:
        run_module.run_training(_config(data_root, tmp_path), run_dir)
    else:
        _interrupted_run(data_root, tmp_path, run_dir, monkeypatch)
    train = data_root / "train.jsonl"
    rows = [json.loads(line) for line in train.read_text().splitlines()][:32]
    flipped = [{**r, "chosen": r["rejected"], "rejected": r["chosen"]} for r in rows]
    train.write_text("".join(json.dumps(r) + "\n" for r in flipped))
    with pytest.raises(RunMismatchError, match="train.jsonl"):
        run_module.run_training(_config(data_root, tmp_path), run_dir)


def test_code_version_finished_reused_and_tagged_unfinished_refused(
    data_root, tmp_path, monkeypatch
):
    from prefopt.results import identity

    finished_dir, cut_dir = tmp_path / "finished", tmp_path / "cut"
    first = run_module.run_training(_config(data_root, tmp_path), finished_dir)
    _interrupted_run(data_root, tmp_path, cut_dir, monkeypatch)
    old_version = identity.code_version()
    monkeypatch.setattr(identity, "code_version", lambda: "0.0.0+newer")
    again = run_module.run_training(_config(data_root, tmp_path), finished_dir)
    assert again["final"] == first["final"] and again["code_version"] == old_version
    frame = load_sweep(tmp_path)
    assert set(frame.loc[frame.run_id == "finished", "code_version"]) == {old_version}
    with pytest.raises(RunMismatchError, match="code"):
        run_module.run_training(_config(data_root, tmp_path), cut_dir)
    forced = _config(data_root, tmp_path)
    forced.resume = "force"
    assert run_module.run_training(forced, cut_dir)["status"] == "finished"


def test_keys_that_do_not_change_the_result_leave_the_identity_alone(data_root, tmp_path):
    from prefopt.results import identity

    cfg = _config(data_root, tmp_path)
    base = identity.comparable_config(cfg)
    neutral = OmegaConf.merge(
        cfg,
        {"device": "cuda", "num_threads": 4, "logger": {"wandb": {"enabled": True}}},
        {"cache_dir": "/elsewhere", "name": "other", "resume": "force"},
    )
    assert identity.comparable_config(neutral) == base
    for key in identity.RESULT_NEUTRAL_KEYS:
        assert key not in {k.split(".")[0] for k in base}
    changed = OmegaConf.merge(cfg, {"eval": {"pair_batch_size": 3}})
    assert identity.comparable_config(changed) != base
    # a run stored before a key became neutral (the protocol's search space) is the same run
    current = identity.RunIdentity(base, {}, "code")
    stored = {"config": {**base, "search.space.loss.beta": [0.05, 5.0]}, "files": {}}
    assert current.changes_from(stored) == []
    stored["config"]["trainer.lr"] = 123.0
    assert current.changes_from(stored) == [f"config trainer.lr: 123.0 -> {base['trainer.lr']!r}"]


def test_run_names_are_collision_free_and_short():
    flat, nested = (
        run_name(["data.source=data/a_b.jsonl"]),
        run_name(["data.source=data/a/b.jsonl"]),
    )
    assert flat != nested and "/" not in flat + nested
    assert (
        run_name(["trainer.lr=1e-3", "loss=ipo"]) == "loss=ipo,trainer.lr=1e-3"
    )  # readable, sorted
    assert run_name([]) == "default"
    long = [f"model.name_or_path=/models/{'x' * 200}", "data=hh_rlhf", "model=hf", "task=none"]
    name = run_name(long)
    assert len(name) <= 160 and name != run_name(long[:-1])
    assert run_name(["loss=dpo", "logger=wandb", "device=cpu", "launcher=joblib"]) == "loss=dpo"


def test_training_data_reused_as_validation_is_refused_with_the_overlap(data_root, tmp_path):
    cfg = _config(data_root, tmp_path)
    cfg.data.splits.validation = "train.jsonl"
    cfg.data.max_overlap = 0.01
    with pytest.raises(DataError, match=r"(\d+) of \1 validation records.*data.max_overlap"):
        run_module.run_training(cfg, tmp_path / "run")
    cfg.data.max_overlap = 1.0
    assert run_module.run_training(cfg, tmp_path / "allowed")["status"] == "finished"
    report = json.loads((tmp_path / "allowed" / "data_report.json").read_text())
    assert (
        report["validation"]["overlap_with_train"]
        == report["validation"]["splits"]["validation"]["rows_kept"]
    )
