"""Batches: where an optimiser step's items come from, an epoch's order, and collation.

A :class:`BatchSource` gives the trainer each step's global batch. :class:`FixedBatches` walks a fixed
data set in a seeded order per epoch; an online algorithm (PPO, RLOO, online DPO) implements the same
protocol by sampling from the current policy. The trainer saves the source's ``state_dict`` in every
checkpoint and restores it on resume, so a source whose batches depend on what it has drawn so far
(a random generator, a running baseline) resumes exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from prefopt.models.logprobs import build_batch
from prefopt.trainer.items import TrainItem

# (items, indices, pad id) -> a micro-batch's tensors (see :func:`collate`)
Collate = Callable[[Sequence, Sequence[int], int], dict]


@dataclass(frozen=True)
class GlobalBatch:
    """One optimiser step's items: ``indices`` into ``items`` (the data set, or the step's own
    samples), in the order they are split into micro-batches. ``collate_fn`` turns a micro-batch's
    indices into tensors: :func:`collate` for the data set's items, :func:`collate_fresh` for pairs
    sampled during training (no table row holds their reference log-probs), an online
    algorithm's own for its samples."""

    items: Sequence
    indices: list[int]
    collate_fn: Collate | None = None  # None: collate

    @property
    def num_tokens(self) -> int:
        """Non-padding tokens the step trains on (prompts counted once per sequence)."""
        return sum(self.items[i].num_tokens for i in self.indices)

    def collate(self, indices: Sequence[int], pad_id: int) -> dict:
        """The tensors of the micro-batch ``indices``."""
        return (self.collate_fn or collate)(self.items, indices, pad_id)


class BatchSource(Protocol):
    """Where each optimiser step's global batch comes from.

    ``size``: the items one epoch covers (it sets the schedule's steps per epoch). ``batch(step,
    policy)``: the global batch of optimiser step ``step`` (``trainer.batch_size`` items, the same on
    every process); ``policy`` is the current model, unwrapped, for sources that sample from it.
    ``state_dict`` / ``load_state_dict``: what a checkpoint must hold to give the same batches
    after a resume (tensors and plain containers only). ``metrics()``: running totals the train
    rows log (an online source's samples drawn, tokens generated and reward queries so far).
    """

    size: int

    def batch(self, step: int, policy: torch.nn.Module) -> GlobalBatch: ...

    def metrics(self) -> dict[str, float]: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class FixedBatches:
    """A fixed data set, each epoch in the order of :func:`epoch_order`; consecutive slices of
    ``batch_size`` items are the steps' batches (the tail that fills no batch is left out)."""

    def __init__(self, items: Sequence[TrainItem], batch_size: int, seed: int):
        self.items, self.batch_size, self.seed = items, batch_size, seed
        self.size = len(items)

    def batch(self, step: int, policy: torch.nn.Module | None = None) -> GlobalBatch:
        epoch, offset = divmod(step, self.size // self.batch_size)
        order = epoch_order(self.size, self.seed, epoch)
        return GlobalBatch(
            self.items, order[offset * self.batch_size : (offset + 1) * self.batch_size]
        )

    def metrics(self) -> dict[str, float]:
        return {}  # the data set's labels cost nothing during training

    def state_dict(self) -> dict:
        return {}  # the order is a function of (seed, step) alone

    def load_state_dict(self, state: dict) -> None:
        pass


def epoch_order(num_items: int, seed: int, epoch: int) -> list[int]:
    """A permutation of the items for ``epoch``, a function of (seed, epoch) only (exact resume)."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(num_items, generator=generator).tolist()


def micro_batches(indices: Sequence[int], micro_size: int, rank: int, processes: int) -> list:
    """Process ``rank``'s micro-batches of a global batch: consecutive chunks of ``micro_size``
    indices dealt round-robin over ``processes``."""
    chunks = [list(indices[i : i + micro_size]) for i in range(0, len(indices), micro_size)]
    return chunks[rank::processes]


def collate(items: Sequence[TrainItem], indices: Sequence[int], pad_id: int) -> dict:
    """Stack the first sequences then the second ones: rows [0, B) and [B, 2B) of one batch.

    Returns input_ids / attention_mask / response_mask (2B, T), ``index`` (B,) item indices,
    ``weights`` (B,) or None, ``desirable`` (B,) bool or None, ``num_tokens`` (non-padding tokens).
    """
    batch_items = [items[i] for i in indices]
    prompts = [it.prompt_ids for it in batch_items]
    responses = [it.first_ids for it in batch_items] + [it.second_ids for it in batch_items]
    batch = build_batch(prompts + prompts, responses, pad_id)
    weights = [it.weight for it in batch_items]
    batch["weights"] = (
        None if all(w is None for w in weights) else torch.tensor(weights, dtype=torch.float32)
    )
    desirable = [it.desirable for it in batch_items]
    batch["desirable"] = None if desirable[0] is None else torch.tensor(desirable, dtype=torch.bool)
    batch["index"] = torch.tensor(list(indices), dtype=torch.long)
    batch["num_tokens"] = int(batch["attention_mask"].sum())
    return batch


def collate_fresh(items: Sequence[TrainItem], indices: Sequence[int], pad_id: int) -> dict:
    """:func:`collate` of items sampled during training: ``index`` None, so that a reference
    computes their log-probs rather than reading a table's rows."""
    return {**collate(items, indices, pad_id), "index": None}


def to_device(batch: dict, device: torch.device) -> dict:
    """The batch with its tensors on ``device``."""
    return {key: v.to(device) if torch.is_tensor(v) else v for key, v in batch.items()}
