"""csft through the trainer: conditioned items train end to end (once the policy's embeddings
cover the control tokens); generation after the good token: tests/eval/test_conditioned_generation.py."""

import json

from tiny import make_config

from prefopt.trainer.run import run_training


def test_csft_trains_end_to_end(tiny_root, tmp_path):
    cfg = make_config(tiny_root, tmp_path / "cache", {"name": "csft"}, max_steps=3)  # cached
    summary = run_training(cfg, tmp_path / "run")
    assert summary["status"] == "finished"
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if r["split"] == "train"]
    assert len(losses) == 3 and losses[-1] < losses[0]
