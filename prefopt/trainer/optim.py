"""Optimiser and learning-rate schedule, the same for every loss."""

from __future__ import annotations

import math

import torch

from prefopt.trainer.settings import SCHEDULES, TrainerSettings


def build_optimizer(params, trainer_cfg) -> torch.optim.Optimizer:
    """AdamW, RMSprop (the DPO paper's choice) or SGD over the trainable parameters, as
    ``trainer.optimizer`` says (``trainer_cfg``: the trainer config or its settings)."""
    settings = TrainerSettings.from_config(trainer_cfg)
    params = [p for p in params if p.requires_grad]
    lr, decay = settings.lr, settings.weight_decay
    if settings.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=settings.adam_betas, weight_decay=decay)
    if settings.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=decay)
    return torch.optim.SGD(params, lr=lr, weight_decay=decay)


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


def build_scheduler(optimizer, total_steps: int, trainer_cfg) -> torch.optim.lr_scheduler.LambdaLR:
    """LambdaLR over :func:`lr_factor` with ``trainer.warmup`` and ``trainer.schedule``."""
    settings = TrainerSettings.from_config(trainer_cfg)
    warmup_steps, schedule = settings.warmup_steps(total_steps), settings.schedule
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, warmup_steps, schedule)
    )
