"""Reference log-probs: a frozen copy, the policy with its LoRA adapter disabled, or a disk cache.

Every mode answers the same question, ``logps(batch) -> (2B,)`` sums of response-token log-probs
under pi_ref, so the trainer never cares which one is in use. The cache is computed once (by a frozen
copy, or with the adapter disabled) and keyed by the model's fingerprint, the exact token ids of every
item and the precision, so any change of model, tokenizer, data, pairing or length limits recomputes it;
a whole sweep over loss, beta, learning rate and seed shares one cache. A corrupt entry is recomputed
with a warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from prefopt.console import progress
from prefopt.models.logprobs import sequence_logps
from prefopt.trainer.batching import collate
from prefopt.trainer.items import TrainItem, items_digest

log = logging.getLogger(__name__)

REFERENCE_MODES = ("frozen_copy", "lora_disabled", "cached")


class LiveReference:
    """pi_ref computed on the fly by a model (a frozen copy, or the policy with adapters off)."""

    def __init__(self, model: torch.nn.Module, adapter_off: bool = False):
        self.model = model
        self.adapter_off = adapter_off

    @torch.no_grad()
    def logps(self, batch: dict) -> torch.Tensor:
        """(2B,) reference log-probs of the batch's sequences."""
        context = self.model.disable_adapter() if self.adapter_off else contextlib.nullcontext()
        was_training = self.model.training
        self.model.eval()
        with context:
            logps, _ = sequence_logps(
                self.model, batch["input_ids"], batch["attention_mask"], batch["response_mask"]
            )
        self.model.train(was_training)
        return logps.float()


class CachedReference:
    """Reference log-probs read from a (N, 2) table computed once: column 0 first, 1 second."""

    def __init__(self, table: torch.Tensor):
        self.table = table  # (N, 2)

    def logps(self, batch: dict) -> torch.Tensor:
        """(2B,) cached log-probs for the batch's item indices."""
        rows = self.table[batch["index"]]  # (B, 2)
        return torch.cat([rows[:, 0], rows[:, 1]]).to(batch["input_ids"].device)


def cache_key(model_fingerprint: str, items: Sequence[TrainItem], precision: str) -> str:
    """Key of a reference cache: model, every token id of every item, precision."""
    text = f"{model_fingerprint}|{items_digest(items)}|{precision}|{len(items)}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def compute_table(
    reference: LiveReference,
    items: Sequence[TrainItem],
    pad_id: int,
    batch_size: int,
    device: torch.device,
    desc: str,
) -> torch.Tensor:
    """(N, 2) reference log-probs of every item's two sequences."""
    table = torch.empty((len(items), 2), dtype=torch.float32)
    # Length-sorted chunks keep padding small; results are written back by item index.
    order = sorted(range(len(items)), key=lambda i: items[i].num_tokens)
    for start in progress(range(0, len(order), batch_size), desc=desc, leave=False):
        indices = order[start : start + batch_size]
        batch = collate(items, indices, pad_id)
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        logps = reference.logps(batch).cpu()  # (2b,)
        b = len(indices)
        table[indices, 0] = logps[:b]
        table[indices, 1] = logps[b:]
    return table


def cached_table(
    cache_dir: str | Path,
    key: str,
    compute,
) -> tuple[torch.Tensor, bool]:
    """Load the table for ``key`` or compute it with ``compute()`` and store it atomically.

    An entry that cannot be read or is no (N, 2) float table is corrupt (entries are written whole,
    so something else changed it): it is recomputed and replaced, with a warning naming it.
    Returns (table, was_computed).
    """
    path = Path(cache_dir) / "reference_logps" / f"{key}.safetensors"
    if path.exists():
        table, problem = _read_table(path)
        if problem is None:
            return table, False
        log.warning("reference log-prob cache %s is corrupt (%s); recomputing it", path, problem)
    table = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file({"logps": table.contiguous()}, str(tmp))
    os.replace(tmp, path)
    return table, True


def _read_table(path: Path) -> tuple[torch.Tensor | None, str | None]:
    """(table, None) for a readable cache entry, else (None, what is wrong with it)."""
    try:
        table = load_file(str(path)).get("logps")
    except (SafetensorError, OSError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if table is None or table.ndim != 2 or table.shape[1] != 2 or not table.is_floating_point():
        shape = None if table is None else tuple(table.shape)
        return None, f"no (N, 2) float table 'logps' (found {shape})"
    return table, None
