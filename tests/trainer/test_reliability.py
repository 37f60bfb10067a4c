"""Reliability of a run: a full disk during a checkpoint, unsafe pickles, bf16 on extreme batches."""

import errno
import json
import math

import pytest
import torch
from tiny import make_config

from prefopt.losses import PairedLogps, build_loss
from prefopt.trainer import checkpoint as checkpoint_module
from prefopt.trainer import run as run_module
from prefopt.trainer.checkpoint import list_checkpoints, load_checkpoint


def test_full_disk_during_a_checkpoint_keeps_the_last_good_one(tiny_root, tmp_path, monkeypatch):
    cfg = make_config(tiny_root, tmp_path / "cache", {"name": "dpo", "beta": 0.1})
    real_save = checkpoint_module.torch.save
    calls = {"n": 0}

    def disk_full_on_third(obj, path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # checkpoints at steps 0 and 4 succeed; step 8's write fails midway
            with open(path, "wb") as handle:
                handle.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module.torch, "save", disk_full_on_third)
    with pytest.raises(OSError, match="No space left"):
        run_module.run_training(cfg, tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed" and "No space left" in summary["error"]
    kept = list_checkpoints(tmp_path / "run")  # the half-written step_0000008.tmp is removed
    assert [p.name for p in kept] == ["step_0000004"]
    monkeypatch.setattr(checkpoint_module.torch, "save", real_save)
    finished = run_module.run_training(cfg, tmp_path / "run")  # resumes from step 4
    assert finished["status"] == "finished" and finished["steps"] == 12


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_checkpoint_state_refuses_arbitrary_pickles(tiny_root, tmp_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_root / "model")
    path = tmp_path / "checkpoints" / "step_0000001"
    checkpoint_module.save_checkpoint(tmp_path, 1, model, {"step": 1}, keep_last=1)
    torch.save({"step": 1, "evil": _Payload()}, path / "state.pt")
    with pytest.raises(Exception, match="(?i)weights_only|unsupported|global"):
        load_checkpoint(path, model)


def test_bf16_training_stays_finite(tiny_root, tmp_path):
    cfg = make_config(
        tiny_root, tmp_path / "cache", {"name": "dpo", "beta": 0.1}, precision="bf16", max_steps=4
    )
    summary = run_module.run_training(cfg, tmp_path / "bf16")
    assert summary["status"] == "finished"
    assert math.isfinite(summary["final"]["validation"]["loss"])


@pytest.mark.parametrize("name", ["dpo", "ipo", "kto", "orpo", "simpo"])
def test_losses_finite_on_extreme_bf16_batches(name):
    loss = build_loss(name)
    extreme = torch.tensor([-1e4, -1e-3, -50.0, -1e4], dtype=torch.bfloat16, requires_grad=True)
    other = torch.tensor([-1e-3, -1e4, -50.0, -1e4], dtype=torch.bfloat16, requires_grad=True)
    lengths = torch.tensor([1, 200, 7, 1])
    if loss.data_format == "paired":
        inputs = PairedLogps(extreme, other, lengths, lengths, other.detach(), extreme.detach())
    else:
        from prefopt.losses import UnpairedLogps

        inputs = UnpairedLogps(
            extreme,
            lengths,
            torch.tensor([True, False, True, False]),
            other.detach(),
            other.detach(),
            extreme.detach(),
        )
    out = loss(inputs)
    out.losses.sum().backward()
    assert torch.isfinite(out.losses).all() and torch.isfinite(extreme.grad).all()
