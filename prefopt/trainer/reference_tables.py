"""The cached reference mode's tables: pi_ref's log-probs of every item, computed once and stored.

A table is keyed by the model's fingerprint, the exact token ids of every item and the precision
(:func:`cache_key`), so any change of model, tokenizer, data, pairing or length limits recomputes it,
and a whole sweep over loss, beta, learning rate and seed shares one. An entry is a safetensors file
of named columns with one row per item: ``logps`` (N, 2) always, ``token_logps`` (N, 2, L_max) when a
loss reads per-token reference log-probs. Entries are written atomically; a corrupt one is recomputed
with a warning.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from prefopt.console import progress
from prefopt.trainer.batching import collate
from prefopt.trainer.items import TrainItem, items_digest

if TYPE_CHECKING:
    from prefopt.trainer.reference import PiRef, Reference

log = logging.getLogger(__name__)


@dataclass
class ReferenceTables:
    """Where the cached mode's tables live, how they are keyed and computed; ``keys`` records the
    key of each item set by name."""

    cache_dir: str | Path
    model_fingerprint: str
    precision: str
    pad_id: int
    batch_size: int
    device: torch.device
    keys: dict[str, str] = field(default_factory=dict, init=False)

    def columns(
        self, items: Sequence[TrainItem], name: str, pi_ref: PiRef, per_token: bool
    ) -> dict[str, torch.Tensor]:
        """The table of ``items`` (``logps`` (N, 2), with ``per_token`` also ``token_logps``
        (N, 2, L_max)), loaded or computed by ``pi_ref`` and stored."""
        key = cache_key(self.model_fingerprint, items, self.precision)
        names = ("logps", "token_logps") if per_token else ("logps",)
        columns, computed = cached_table(
            self.cache_dir,
            key,
            lambda: compute_table(
                pi_ref.live(),
                items,
                self.pad_id,
                self.batch_size,
                self.device,
                f"pi_ref {name}",
                per_token,
            ),
            names,
        )
        self.keys[name] = key
        verb = "computed" if computed else "loaded from cache (shared by the sweep)"
        log.info("reference log-probs for %s (%d items): %s [%s]", name, len(items), verb, key)
        return columns


def cache_key(model_fingerprint: str, items: Sequence[TrainItem], precision: str) -> str:
    """Key of a reference cache: model, every token id of every item, precision."""
    text = f"{model_fingerprint}|{items_digest(items)}|{precision}|{len(items)}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def compute_table(
    reference: Reference,
    items: Sequence[TrainItem],
    pad_id: int,
    batch_size: int,
    device: torch.device,
    desc: str,
    per_token: bool = False,
) -> dict[str, torch.Tensor]:
    """``logps`` (N, 2), reference log-probs of every item's two sequences; with ``per_token`` also
    ``token_logps`` (N, 2, L_max), each response's token log-probs right-padded with 0."""
    table = torch.empty((len(items), 2), dtype=torch.float32)
    tokens = None
    if per_token:
        width = max(max(len(it.first_ids), len(it.second_ids)) for it in items)
        tokens = torch.zeros((len(items), 2, width), dtype=torch.float32)
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
        if tokens is not None:
            per = reference.token_logps(batch).cpu()  # (2b, L)
            tokens[indices, 0, : per.shape[1]] = per[:b]
            tokens[indices, 1, : per.shape[1]] = per[b:]
    return {"logps": table} if tokens is None else {"logps": table, "token_logps": tokens}


def cached_table(
    cache_dir: str | Path,
    key: str,
    compute,
    names: Sequence[str] = ("logps",),
) -> tuple[dict[str, torch.Tensor], bool]:
    """Load the columns ``names`` of the entry for ``key``, or compute the entry with ``compute()``
    (a dict of columns) and store it atomically.

    An entry that cannot be read or holds no (N, 2) float ``logps`` (with N rows in every other
    column) is corrupt (entries are written whole, so something else changed it): it is recomputed
    and replaced, with a warning naming it. An entry without one of ``names`` is recomputed with it.
    Returns (columns, was_computed).
    """
    path = Path(cache_dir) / "reference_logps" / f"{key}.safetensors"
    if path.exists():
        columns, problem = _read_entry(path)
        if problem is None and all(name in columns for name in names):
            return {name: columns[name] for name in names}, False
        if problem is not None:
            log.warning(
                "reference log-prob cache %s is corrupt (%s); recomputing it", path, problem
            )
    columns = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file({name: column.contiguous() for name, column in columns.items()}, str(tmp))
    os.replace(tmp, path)
    return {name: columns[name] for name in names}, True


def _read_entry(path: Path) -> tuple[dict[str, torch.Tensor] | None, str | None]:
    """(columns, None) for a readable cache entry, else (None, what is wrong with it)."""
    try:
        columns = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    table = columns.get("logps")
    if table is None or table.ndim != 2 or table.shape[1] != 2 or not table.is_floating_point():
        shape = None if table is None else tuple(table.shape)
        return None, f"no (N, 2) float table 'logps' (found {shape})"
    ragged = [n for n, c in columns.items() if c.ndim < 2 or c.shape[:2] != table.shape]
    if ragged:
        return None, f"columns {', '.join(sorted(ragged))} have no (N, 2) leading shape"
    return columns, None
