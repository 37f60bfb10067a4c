"""Losses that read per-token quantities train through the trainer with each reference mode."""

import json

import pytest
from tiny import make_config

from prefopt.trainer.run import run_training


def _train_losses(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if r["split"] == "train"]


@pytest.mark.parametrize("name", ["ld_dpo", "wpo"])
def test_a_token_loss_gives_the_same_steps_with_a_live_and_a_cached_reference(
    tiny_root, tmp_path, name
):
    losses = {}
    for mode in ("frozen_copy", "cached"):
        cfg = make_config(
            tiny_root, tmp_path / "cache", {"name": name, "beta": 0.5}, max_steps=3, reference=mode
        )
        summary = run_training(cfg, tmp_path / mode)
        assert summary["status"] == "finished"
        losses[mode] = _train_losses(tmp_path / mode)
    assert len(losses["cached"]) == 3
    assert losses["cached"] == pytest.approx(losses["frozen_copy"], rel=1e-4)
