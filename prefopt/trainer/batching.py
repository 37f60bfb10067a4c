"""Batches: an epoch's order, and collation of items into one padded forward."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from prefopt.models.logprobs import build_batch
from prefopt.trainer.items import TrainItem


def epoch_order(num_items: int, seed: int, epoch: int) -> list[int]:
    """A permutation of the items for ``epoch``, a function of (seed, epoch) only (exact resume)."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(num_items, generator=generator).tolist()


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
