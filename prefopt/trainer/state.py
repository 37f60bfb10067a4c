"""What a run keeps track of: its step schedule, its restorable state, its held-out splits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from prefopt.trainer.items import TrainItem


@dataclass
class HeldOut:
    """One evaluation split: pairs for implicit-reward metrics, items in the loss's own format."""

    pairs: Sequence[TrainItem]
    loss_items: Sequence[TrainItem]
    pair_reference: object
    loss_reference: object


@dataclass
class Schedule:
    """Step counts derived from the data size and the trainer config."""

    steps_per_epoch: int
    total_steps: int
    eval_interval: int
    accumulation: int
    micro_batch_size: int

    @classmethod
    def from_config(cls, num_items: int, cfg, eval_every, world_size: int) -> Schedule:
        batch_size = int(cfg.batch_size)
        micro = int(cfg.micro_batch_size or batch_size // world_size)
        if batch_size % (micro * world_size):
            raise ValueError(
                f"trainer.batch_size={batch_size} must be a multiple of "
                f"micro_batch_size ({micro}) x processes ({world_size})"
            )
        if num_items < batch_size:
            raise ValueError(f"{num_items} training items is fewer than one batch ({batch_size})")
        steps_per_epoch = num_items // batch_size
        total = steps_per_epoch * int(cfg.epochs)
        if cfg.get("max_steps"):
            total = min(total, int(cfg.max_steps))
        if isinstance(eval_every, float):
            interval = max(1, round(eval_every * steps_per_epoch))
        else:
            interval = max(1, int(eval_every))
        return cls(steps_per_epoch, total, interval, batch_size // (micro * world_size), micro)


@dataclass
class TrainState:
    """What a checkpoint restores besides weights and optimiser."""

    step: int = 0
    tokens_seen: int = 0
    best: dict = field(default_factory=dict)
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
