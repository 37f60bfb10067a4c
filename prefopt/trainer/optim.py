"""Optimiser and learning-rate schedule, the same for every loss."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

SCHEDULES = ("constant", "linear", "cosine")
OPTIMIZERS = ("adamw", "rmsprop", "sgd")


def build_optimizer(params, cfg: Mapping) -> torch.optim.Optimizer:
    """AdamW (default), RMSprop (the DPO paper's choice) or SGD over the trainable parameters."""
    name = cfg["optimizer"]
    params = [p for p in params if p.requires_grad]
    if name == "adamw":
        return torch.optim.AdamW(
            params,
            lr=cfg["lr"],
            betas=tuple(cfg.get("adam_betas", (0.9, 0.999))),
            weight_decay=cfg.get("weight_decay", 0.0),
        )
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg["lr"], weight_decay=cfg.get("weight_decay", 0.0))
    if name == "sgd":
        return torch.optim.SGD(params, lr=cfg["lr"], weight_decay=cfg.get("weight_decay", 0.0))
    raise ValueError(f"unknown optimizer {name!r}; valid: {list(OPTIMIZERS)}")


def lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """Multiplier of the base learning rate at ``step``: linear warm-up, then the schedule.

    constant: 1; linear: (T - s) / (T - w); cosine: 0.5 (1 + cos(pi (s - w) / (T - w))).
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; valid: {list(SCHEDULES)}")
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    progress = min(max(progress, 0.0), 1.0)
    if schedule == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(optimizer, total_steps: int, cfg: Mapping) -> torch.optim.lr_scheduler.LambdaLR:
    """LambdaLR over :func:`lr_factor`; warm-up given as steps or as a fraction of all steps."""
    warmup = cfg.get("warmup", 0.0)
    warmup_steps = int(round(warmup * total_steps)) if isinstance(warmup, float) else int(warmup)
    schedule = cfg.get("schedule", "linear")
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, warmup_steps, schedule)
    )
