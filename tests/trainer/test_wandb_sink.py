"""wandb is opt-in: off by default; when on, every metrics row is forwarded (fake wandb module)."""

import sys
import types

from tiny import make_config

from prefopt.trainer.run import run_training
from prefopt.trainer.wandb_sink import build_sink


def test_wandb_is_off_by_default(tiny_root, tmp_path):
    cfg = make_config(tiny_root, tmp_path / "cache", {"name": "dpo", "beta": 0.1})
    assert build_sink(cfg, tmp_path) is None


def test_wandb_receives_every_row(tiny_root, tmp_path, monkeypatch):
    logged = []
    fake = types.ModuleType("wandb")
    fake.init = lambda **kwargs: types.SimpleNamespace(
        log=lambda values, step: logged.append((step, values)), init_kwargs=kwargs
    )
    monkeypatch.setitem(sys.modules, "wandb", fake)
    cfg = make_config(tiny_root, tmp_path / "cache", {"name": "dpo", "beta": 0.1}, max_steps=4)
    cfg.logger = {"wandb": {"enabled": True, "project": "p", "mode": "offline"}}
    run_training(cfg, tmp_path / "run")
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(logged) == len(rows) > 0
    assert any("validation/reward_accuracy" in values for _, values in logged)
