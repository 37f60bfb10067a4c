"""wandb is opt-in: off by default; when on, every metrics row is forwarded (fake wandb module)."""

import json
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
        log=logged.append,
        define_metric=lambda *args, **kwargs: None,
        init_kwargs=kwargs,
    )
    monkeypatch.setitem(sys.modules, "wandb", fake)
    cfg = make_config(tiny_root, tmp_path / "cache", {"name": "dpo", "beta": 0.1}, max_steps=4)
    cfg.logger = {"wandb": {"enabled": True, "project": "p", "mode": "offline"}}
    run_training(cfg, tmp_path / "run")
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(logged) == len(rows) > 0
    assert any("validation/reward_accuracy" in values for values in logged)


class StrictFakeRun:
    """Keeps wandb's rule: a row logged with ``step`` below the run's current step is dropped."""

    def __init__(self, **kwargs):
        self.init_kwargs = kwargs
        self.step = 0
        self.kept, self.dropped, self.step_metrics = [], [], {}

    def define_metric(self, name, step_metric=None, **kwargs):
        self.step_metrics[name] = step_metric

    def log(self, values, step=None):
        if step is not None and step < self.step:
            self.dropped.append(values)  # "Tried to log to step 0 that is less than ..."
            return
        self.step = self.step if step is None else step
        self.kept.append(values)


def test_wandb_keeps_the_test_rows_logged_at_the_best_step(tiny_root, tmp_path, monkeypatch):
    runs = []
    fake = types.ModuleType("wandb")
    fake.init = lambda **kwargs: runs.append(StrictFakeRun(**kwargs)) or runs[-1]
    monkeypatch.setitem(sys.modules, "wandb", fake)
    cfg = make_config(tiny_root, tmp_path / "cache", {"name": "dpo", "beta": 0.1}, max_steps=8)
    cfg.data.splits.test = "validation.jsonl"
    cfg.logger = {"wandb": {"enabled": True, "project": "p", "mode": "offline"}}
    run_training(cfg, tmp_path / "run")
    (run,) = runs
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    test_steps = sorted(r["step"] for r in rows if r["split"] == "test")
    assert len(test_steps) == 2 and test_steps[0] < max(r["step"] for r in rows)
    assert run.dropped == [] and len(run.kept) == len(rows)
    logged_test_steps = sorted(v["test/step"] for v in run.kept if "test/step" in v)
    assert logged_test_steps == test_steps  # each test row under its own step metric
    assert run.step_metrics.get("test/*") == "test/step"
