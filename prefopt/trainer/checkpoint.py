"""Checkpoints that survive a kill at any moment.

A checkpoint is a directory ``checkpoints/step_<N:07d>/`` holding the model weights in safetensors and
``state.pt`` (optimiser, scheduler, loss and random-number state: tensors and plain containers only,
loaded with ``weights_only=True``). It is written under a temporary name and renamed into place, so a
directory with the final name is always complete; leftovers of a killed write are removed on the next
start. Only the newest ``keep_last`` checkpoints are kept.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model

PREFIX = "step_"
LOSS_STATE_FILE = "loss_state.pt"  # the loss's state beside the best weights


def checkpoint_name(step: int) -> str:
    """The directory name of the checkpoint of ``step``: ``step_<N:07d>``."""
    return f"{PREFIX}{step:07d}"


def checkpoint_step(name: str) -> int | None:
    """The step a checkpoint name stands for (``step_12`` or ``step_0000012``); None if it is none."""
    digits = name[len(PREFIX) :]
    valid = name.startswith(PREFIX) and digits.isascii() and digits.isdigit()
    return int(digits) if valid else None


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    """Where the checkpoint of ``step`` lives."""
    return run_dir / "checkpoints" / checkpoint_name(step)


def save_checkpoint(run_dir: Path, step: int, model: torch.nn.Module, state: dict, keep_last: int):
    """Write model weights and training state for ``step`` atomically, then prune old ones."""
    final = checkpoint_dir(run_dir, step)
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / "model.safetensors"))
    torch.save(state, tmp / "state.pt")
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    for old in list_checkpoints(run_dir)[:-keep_last] if keep_last > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


def best_weights_dir(run_dir: Path) -> Path:
    """Where the weights of the best validation checkpoint are kept until the test split is scored."""
    return run_dir / "checkpoints" / "best"


def save_best_weights(run_dir: Path, model: torch.nn.Module, loss_state: dict) -> None:
    """Keep the model's current weights, and the loss's state (BCO's running mean; empty for most
    losses), as the best checkpoint's (atomic replaces)."""
    path = best_weights_dir(run_dir)
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / "model.safetensors.tmp"
    save_model(model, str(tmp))
    tmp.replace(path / "model.safetensors")
    if loss_state:  # a loss without state writes nothing more
        tmp = path / f"{LOSS_STATE_FILE}.tmp"
        torch.save(loss_state, tmp)
        tmp.replace(path / LOSS_STATE_FILE)


def load_loss_state(weights_dir: Path) -> dict:
    """The loss's state saved with a checkpoint's or the best weights ({} when none was saved)."""
    if (weights_dir / "state.pt").exists():
        return torch.load(weights_dir / "state.pt", weights_only=True)["loss"]
    if (weights_dir / LOSS_STATE_FILE).exists():
        return torch.load(weights_dir / LOSS_STATE_FILE, weights_only=True)
    return {}


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first; half-written ``.tmp`` directories are deleted."""
    for partial in (run_dir / "checkpoints").glob(f"{PREFIX}*.tmp"):
        shutil.rmtree(partial, ignore_errors=True)
    return saved_checkpoints(run_dir)


def saved_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first, touching nothing (a running trainer may be writing)."""
    root = run_dir / "checkpoints"
    done = [
        p
        for p in root.glob(f"{PREFIX}*")
        if checkpoint_step(p.name) is not None and (p / "state.pt").exists()
    ]
    return sorted(done, key=lambda p: checkpoint_step(p.name))


def load_checkpoint_weights(path: Path, model: torch.nn.Module) -> None:
    """Restore the model's weights (the policy as built for training, LoRA included) in place."""
    load_model(model, str(path / "model.safetensors"))


def load_checkpoint(path: Path, model: torch.nn.Module) -> dict:
    """Restore the model's weights in place and return the training state (no arbitrary pickle)."""
    load_checkpoint_weights(path, model)
    return torch.load(path / "state.pt", weights_only=True)
