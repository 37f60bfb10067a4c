"""Every loss takes the same optimiser steps over the same pairs: an unpaired loss fed paired data
counts its batch in pairs (two items each) unless trainer.batch_counts=items."""

from tiny import make_config

from prefopt.trainer.run import run_training


def test_kto_on_pairs_takes_the_steps_dpo_takes(tiny_root, tmp_path):
    steps = {}
    runs = {
        "dpo": ({"name": "dpo", "beta": 0.1}, {}),
        "kto": ({"name": "kto", "beta": 0.1}, {}),
        "kto_items": ({"name": "kto", "beta": 0.1}, {"batch_counts": "items"}),
    }
    for name, (loss, trainer) in runs.items():
        cfg = make_config(tiny_root, tmp_path / "cache", loss, **trainer)
        steps[name] = run_training(cfg, tmp_path / name)["steps"]
    assert steps["kto"] == steps["dpo"] > 0
    assert steps["kto_items"] >= 2 * steps["dpo"]  # two items per pair, batches of items
