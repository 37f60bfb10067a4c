"""The `trainer` config group, checked (conf/trainer/default.yaml holds each key's default and meaning).

``TrainerSettings.from_config(cfg.trainer, processes=n)`` refuses a bad key before any data or model
is touched, naming it: ``trainer.epochs=0: expected a positive integer``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from prefopt.config_keys import (
    FLAG,
    CheckedGroup,
    Rule,
    choice,
    integer,
    key,
    number,
    optional,
    sequence_of,
)
from prefopt.trainer.reference import REFERENCE_MODES

SCHEDULES = ("constant", "linear", "cosine")
OPTIMIZERS = ("adamw", "rmsprop", "sgd")
PRECISIONS = ("no", "bf16", "fp16")
BATCH_COUNTS = ("pairs", "items")  # what batch_size counts when an unpaired loss splits pairs

# An int counts optimiser steps, a float is a fraction of all of them (0.1: the first tenth).
WARMUP = Rule(
    "a number of steps (an integer >= 0) or a fraction of all steps (a float in [0, 1])",
    lambda v: integer(0).accepts(v) or (isinstance(v, float) and 0.0 <= v <= 1.0),
)


@dataclass(frozen=True)
class TrainerSettings(CheckedGroup):
    """Every key of the `trainer` group, checked; no defaults of its own (the YAML has them)."""

    GROUP = "trainer"

    lr: float = key(number(0.0, above=True))
    epochs: int = key(integer(1))
    max_steps: int | None = key(optional(integer(1), "epochs only"))
    batch_size: int = key(integer(1))
    micro_batch_size: int | None = key(optional(integer(1), "batch_size / processes"))
    optimizer: str = key(choice(OPTIMIZERS))
    adam_betas: tuple[float, float] = key(
        sequence_of(number(0.0, 1.0, below=True), "a list of two numbers in [0, 1)", length=2)
    )
    weight_decay: float = key(number(0.0))
    warmup: int | float = key(WARMUP)
    schedule: str = key(choice(SCHEDULES))
    max_grad_norm: float = key(number(0.0))
    precision: str = key(choice(PRECISIONS))
    compile: bool = key(FLAG)
    reference: str = key(choice(REFERENCE_MODES))
    reference_batch_size: int = key(integer(1))
    reference_sync_every: int = key(integer(0))
    reference_sync_alpha: float = key(number(0.0, 1.0))
    log_every: int = key(integer(1))
    keep_checkpoints: int = key(integer(1))
    save_policy: bool = key(FLAG)
    batch_counts: str = key(choice(BATCH_COUNTS))

    def check(self, processes: int = 1) -> None:
        """The batch splits evenly over ``processes`` (``micro_batch_size`` items per forward on
        each); a warm-up in steps fits in ``max_steps``."""
        micro = self.micro_batch_size_for(processes)
        if micro < 1 or self.batch_size % (micro * processes):
            raise self.error(
                f"batch_size={self.batch_size} is not a multiple of trainer.micro_batch_size="
                f"{self.micro_batch_size} x {processes} process(es) ({micro} items per forward "
                "on each process)"
            )
        if isinstance(self.warmup, int) and self.max_steps and self.warmup > self.max_steps:
            raise self.error(
                f"warmup={self.warmup} steps is longer than trainer.max_steps={self.max_steps}"
            )

    def per_pair(self, items_per_pair: int) -> TrainerSettings:
        """These settings with ``batch_size`` (and ``micro_batch_size``) counted in pairs: each
        pair of the data gave ``items_per_pair`` training items (an unpaired loss on paired data),
        so a step takes that many times the items and every loss takes the same steps over the same
        pairs. ``batch_counts=items`` keeps the counts as written."""
        if self.batch_counts == "items" or items_per_pair == 1:
            return self
        micro = self.micro_batch_size and self.micro_batch_size * items_per_pair
        return replace(self, batch_size=self.batch_size * items_per_pair, micro_batch_size=micro)

    def micro_batch_size_for(self, processes: int) -> int:
        """Items per forward on each of ``processes`` processes."""
        return self.micro_batch_size or self.batch_size // processes

    def warmup_steps(self, total_steps: int) -> int:
        """Warm-up in optimiser steps for a run of ``total_steps``: a float is a fraction of them,
        an int a count, which must fit in the run."""
        if isinstance(self.warmup, float):
            return int(round(self.warmup * total_steps))
        if self.warmup > total_steps:
            raise self.error(
                f"warmup={self.warmup} steps is longer than the run's {total_steps} steps"
            )
        return self.warmup
