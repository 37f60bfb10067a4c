"""Trainer and evaluation settings are checked by `check_config`, before any data or model work."""

from dataclasses import MISSING, fields
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from prefopt.errors import ConfigError
from prefopt.eval.settings import EvalSettings
from prefopt.trainer.run import run_training
from prefopt.trainer.settings import TrainerSettings
from prefopt.trainer.setup import check_config
from prefopt.trainer.state import Schedule

CONF = Path(__file__).resolve().parents[2] / "conf"
EXPERIMENTS = sorted(
    str(path.relative_to(CONF / "experiment").with_suffix(""))
    for path in (CONF / "experiment").rglob("*.yaml")
)

REFUSED = [
    (["trainer.epochs=0"], r"trainer\.epochs=0: expected a positive integer"),
    (["trainer.warmup=1.5"], r"trainer\.warmup=1\.5: expected"),
    (["trainer.schedule=cosin"], r"trainer\.schedule='cosin'.*did you mean 'cosine'"),
    (
        ["trainer.batch_size=3", "trainer.micro_batch_size=2"],
        r"trainer\.batch_size=3 .*trainer\.micro_batch_size=2",
    ),
    (["eval.temperature=0"], r"eval\.temperature=0: expected a positive number"),
    (["trainer.lr=abc"], r"trainer\.lr='abc': expected a positive number"),
    (["eval.eval_every=-1"], r"eval\.eval_every=-1: expected"),
    (["+trainer.shedule=cosine"], r"trainer\.shedule: unknown key; did you mean trainer\.schedule"),
    (["~trainer.compile"], r"trainer\.compile is missing"),
    (["eval.best_of_n_samples=4"], r"eval\.best_of_n_samples=4 .*eval\.best_of_n_ns \(16\)"),
    (["trainer.max_steps=5", "trainer.warmup=10"], r"trainer\.warmup=10 .*trainer\.max_steps=5"),
]


@pytest.mark.parametrize(("overrides", "message"), REFUSED, ids=[" ".join(o) for o, _ in REFUSED])
def test_bad_setting_is_refused_naming_its_key(compose_config, overrides, message):
    with pytest.raises(ConfigError, match=message):
        check_config(compose_config(overrides))


def test_eval_every_zero_means_no_evaluation_before_the_last_step(compose_config):
    cfg = compose_config(["eval.eval_every=0"])
    schedule = Schedule.from_config(64, cfg.trainer, cfg.eval.eval_every, 1)
    assert schedule.total_steps == 4  # 64 items / batch 32 x 2 epochs
    assert schedule.eval_interval == schedule.total_steps
    cfg = compose_config(["eval.eval_every=0.5"])
    assert Schedule.from_config(64, cfg.trainer, cfg.eval.eval_every, 1).eval_interval == 1


@pytest.mark.parametrize("experiment", [None, *EXPERIMENTS])
def test_default_config_and_every_experiment_validate(compose_config, experiment):
    overrides = [] if experiment is None else [f"experiment={experiment}"]
    check_config(compose_config(overrides))


@pytest.mark.parametrize(
    ("settings", "group"), [(TrainerSettings, "trainer"), (EvalSettings, "eval")]
)
def test_settings_have_no_defaults_of_their_own_and_read_every_yaml_key(settings, group):
    assert all(f.default is MISSING and f.default_factory is MISSING for f in fields(settings))
    yaml = OmegaConf.to_container(OmegaConf.load(CONF / group / "default.yaml"))
    read = settings.from_config(yaml)
    assert [f.name for f in fields(settings)] == list(yaml)
    for name, value in yaml.items():
        assert getattr(read, name) == (tuple(value) if isinstance(value, list) else value)


def test_the_batch_splits_over_the_processes_of_a_launch(compose_config, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ConfigError, match=r"trainer\.batch_size=32 .* 3 process\(es\)"):
        check_config(compose_config([]))
    monkeypatch.setenv("WORLD_SIZE", "2")
    check_config(compose_config([]))  # 16 items per forward on each process
    with pytest.raises(ConfigError, match=r"loss 'kto' needs at least 2 .* 1 on each of 2"):
        check_config(compose_config(["loss=kto", "trainer.batch_size=2"]))


def test_a_warmup_in_steps_fits_in_the_run(compose_config):
    trainer = TrainerSettings.from_config(compose_config(["trainer.warmup=10"]).trainer)
    assert trainer.warmup_steps(10) == 10
    with pytest.raises(ConfigError, match=r"trainer\.warmup=10 steps .* 5 steps"):
        trainer.warmup_steps(5)
    fraction = TrainerSettings.from_config(compose_config(["trainer.warmup=0.25"]).trainer)
    assert fraction.warmup_steps(10) == 2  # round(2.5)


def test_a_bad_setting_stops_the_run_before_its_data_or_model_is_read(compose_config, tmp_path):
    cfg = compose_config(
        [
            "task=none",
            "model=hf",
            f"model.name_or_path={tmp_path / 'no_model'}",
            "data=jsonl",
            f"data.source={tmp_path / 'no_data.jsonl'}",
            "trainer.schedule=cosin",
        ]
    )
    with pytest.raises(ConfigError, match=r"trainer\.schedule='cosin'"):
        run_training(cfg, tmp_path / "run")


def test_a_whole_batch_loss_refuses_micro_batches_and_processes(compose_config, monkeypatch):
    from prefopt.losses.dpo import DPOLoss

    monkeypatch.setattr(DPOLoss, "whole_batch", True)
    check_config(compose_config([]))  # one forward of the whole batch
    with pytest.raises(ConfigError, match=r"loss 'dpo' compares the examples .* 16 on each of 1"):
        check_config(compose_config(["trainer.micro_batch_size=16"]))
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match=r"16 on each of 2 process\(es\)"):
        check_config(compose_config([]))
