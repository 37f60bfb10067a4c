"""build_run's record, the fixed-data batch source, evaluate's step and the on_step_end hook."""

import json

import pytest
import torch
from tiny import make_config

from prefopt.losses import build_loss_from_config
from prefopt.trainer.batching import FixedBatches, epoch_order
from prefopt.trainer.build import RunSettings, build_run
from prefopt.trainer.checkpoint import list_checkpoints
from prefopt.trainer.loop import Hooks, Trainer
from prefopt.trainer.run import run_training


def _run(tiny_root, tmp_path, loss, **trainer):
    cfg = make_config(tiny_root, tmp_path / "cache", loss, **trainer)
    run = build_run(cfg, tmp_path / "run", build_loss_from_config(cfg.loss))
    return cfg, run


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_build_run_holds_the_pieces_of_the_run(tiny_root, tmp_path):
    cfg, run = _run(tiny_root, tmp_path, {"name": "dpo", "beta": 0.1})
    assert isinstance(run.batches, FixedBatches)
    assert run.batches.size == len(run.batches.items) > 0
    assert run.reference is not None and set(run.heldout) == {"validation"}
    assert run.heldout["validation"].pairs
    assert run.evaluate_generations is None and run.select_metric == "reward_accuracy"
    assert run.pad_id == run.tokenizer.pad_token_id == 0
    assert set(run.provenance) == {"data_hashes", "reference_cache", "model_path"}
    assert run.provenance["model_path"] == cfg.model.name_or_path
    assert (tmp_path / "run" / "data_report.json").is_file()
    _, free = _run(tiny_root, tmp_path / "simpo", {"name": "simpo", "beta": 2.0, "gamma": 0.5})
    assert free.reference is None  # a reference-free loss gets no training reference


def test_fixed_batches_walk_each_epochs_order(tiny_root, tmp_path):
    _, run = _run(tiny_root, tmp_path, {"name": "dpo", "beta": 0.1})
    items = run.batches.items
    source = FixedBatches(items, batch_size=8, seed=3)
    per_epoch = len(items) // 8
    for step in (0, 1, per_epoch - 1, per_epoch, per_epoch + 2):
        epoch, offset = divmod(step, per_epoch)
        expected = epoch_order(len(items), 3, epoch)[offset * 8 : (offset + 1) * 8]
        batch = source.batch(step, run.policy)
        assert batch.indices == expected and batch.items is items
        assert batch.num_tokens == sum(items[i].num_tokens for i in expected)
    assert source.batch(0).indices != source.batch(per_epoch).indices  # a new order per epoch


def test_evaluate_logs_at_the_step_it_is_given(tiny_root, tmp_path):
    cfg, run = _run(tiny_root, tmp_path, {"name": "dpo", "beta": 0.1})
    trainer = Trainer(run, RunSettings.from_config(cfg))
    row = trainer.evaluate(["validation"], 6)["validation"]
    assert row["step"] == 6 and row["epoch"] == 6 / trainer.schedule.steps_per_epoch
    assert trainer.state.step == 0  # the trainer's own step is untouched
    assert _rows(run.run_dir) == [json.loads(json.dumps(row))]
    assert row["loss"] == pytest.approx(0.6931, abs=1e-3)  # pi = pi_ref: the DPO loss is log 2


def test_on_step_end_hooks_get_every_steps_row_in_order(tiny_root, tmp_path):
    cfg, run = _run(tiny_root, tmp_path, {"name": "dpo", "beta": 0.1}, max_steps=3, log_every=2)
    calls = []

    def first(trainer, row):
        calls.append(("first", row["step"], trainer.state.step, trainer.state.tokens_seen))

    def second(trainer, row):
        calls.append(("second", row["step"], dict(row)))

    trainer = Trainer(run, RunSettings.from_config(cfg), Hooks(on_step_end=[first, second]))
    trainer.fit()
    assert [c[:2] for c in calls] == [(name, s) for s in (1, 2, 3) for name in ("first", "second")]
    firsts = [c for c in calls if c[0] == "first"]
    assert all(step == state_step for _, step, state_step, _ in firsts)
    tokens = [c[3] for c in firsts]
    assert 0 < tokens[0] < tokens[1] < tokens[2] == trainer.state.tokens_seen
    hook_rows = [c[2] for c in calls if c[0] == "second"]
    assert {"split", "step", "epoch", "loss", "grad_norm", "lr"} <= set(hook_rows[0])
    logged = [r for r in _rows(run.run_dir) if r["split"] == "train"]
    assert logged == [hook_rows[1]]  # log_every=2: step 2 alone is logged, as the hook saw it
    state = torch.load(list_checkpoints(run.run_dir)[-1] / "state.pt", weights_only=True)
    assert state["batches"] == {}  # the fixed source's order needs no state


def test_run_training_passes_step_hooks_to_the_trainer(tiny_root, tmp_path):
    cfg = make_config(tiny_root, tmp_path / "cache", {"name": "dpo", "beta": 0.1}, max_steps=2)
    seen = []
    summary = run_training(
        cfg, tmp_path / "run", on_step_end=[lambda trainer, row: seen.append(row["step"])]
    )
    assert summary["status"] == "finished" and seen == [1, 2]
