"""What a run keeps track of: its step schedule, its restorable state, its held-out splits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from prefopt.errors import ConfigError
from prefopt.eval.settings import eval_interval
from prefopt.trainer.items import TrainItem
from prefopt.trainer.reference import Reference
from prefopt.trainer.settings import TrainerSettings


@dataclass
class HeldOut:
    """One evaluation split: pairs for implicit-reward metrics, items in the loss's own format,
    and the reference that answers batches of each (None where the split has no pairs)."""

    pairs: Sequence[TrainItem]
    loss_items: Sequence[TrainItem]
    pair_reference: Reference | None
    loss_reference: Reference | None


@dataclass
class Schedule:
    """Step counts derived from the data size and the trainer config."""

    steps_per_epoch: int
    total_steps: int
    eval_interval: int
    accumulation: int
    micro_batch_size: int

    @classmethod
    def from_config(cls, num_items: int, trainer_cfg, eval_every, world_size: int) -> Schedule:
        """The schedule of ``num_items`` training items under the trainer settings (a config or
        :class:`TrainerSettings`) and ``eval.eval_every``, on ``world_size`` processes."""
        trainer = TrainerSettings.from_config(trainer_cfg, processes=world_size)
        batch_size = trainer.batch_size
        if num_items < batch_size:
            raise ConfigError(
                f"trainer.batch_size={batch_size} is more than the {num_items} training items"
            )
        steps_per_epoch = num_items // batch_size
        total = steps_per_epoch * trainer.epochs
        if trainer.max_steps is not None:
            total = min(total, trainer.max_steps)
        interval = eval_interval(eval_every, steps_per_epoch, total)
        micro = trainer.micro_batch_size_for(world_size)
        return cls(steps_per_epoch, total, interval, batch_size // (micro * world_size), micro)


@dataclass
class TrainState:
    """What a checkpoint restores besides weights and optimiser."""

    step: int = 0
    tokens_seen: int = 0
    best: dict = field(default_factory=dict)
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
