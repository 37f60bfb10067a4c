"""The data a run trains and evaluates on, as TrainItems, with its data report saved."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from prefopt.data import (
    DataReport,
    TokenizedPair,
    TokenizedUnpaired,
    available_splits,
    pairs_to_unpaired,
    read_records,
    tokenize_records,
)
from prefopt.losses import PreferenceLoss
from prefopt.models.loading import load_tokenizer
from prefopt.results.store import atomic_write_json
from prefopt.trainer.items import TrainItem, items_digest, paired_items, unpaired_items
from prefopt.trainer.setup import Resolved, is_main_process

log = logging.getLogger(__name__)

KL_PAIRING_SEED = (
    0  # fixed, so the mismatched pairs (and their cached reference) are shared by seeds
)
HELDOUT_SPLITS = ("validation", "test")


@dataclass
class PreparedData:
    """Tokenizer, training items and held-out items of a run."""

    tokenizer: object
    train_items: list[TrainItem]
    heldout_pairs: dict[str, list[TrainItem]]  # implicit-reward metrics (paired data only)
    heldout_loss_items: dict[str, list[TrainItem]]  # the loss's own format
    train_records: list  # raw training records (the proxy reward model trains on them)
    eval_prompts: dict[str, list[str]]
    hashes: dict[str, str]


def _as_loss_items(examples: list, loss_fn: PreferenceLoss, split: str) -> list[TrainItem]:
    """Items in the loss's data format; paired data is split into unpaired examples if needed."""
    if not examples:
        return []
    paired = isinstance(examples[0], TokenizedPair)
    if loss_fn.data_format == "paired":
        if not paired:
            raise ValueError(
                f"loss {loss_fn.name!r} needs paired data, but the {split} split holds unpaired "
                "rows (prompt/completion/label); choose an unpaired loss such as kto"
            )
        return paired_items(examples)
    unpaired = pairs_to_unpaired(examples) if paired else examples
    return unpaired_items(unpaired, seed=KL_PAIRING_SEED)


def prepare_data(
    cfg: DictConfig, resolved: Resolved, loss_fn: PreferenceLoss, run_dir: Path
) -> PreparedData:
    """Read, check, tokenize every configured split; save data_report.json in the run."""
    tokenizer = load_tokenizer(resolved.model_path, cfg.model)
    data_cfg = resolved.data_cfg
    splits = available_splits(data_cfg)
    if "train" not in splits:
        raise ValueError(f"data config maps no train split; configured: {splits}")
    records, tokenized, reports = {}, {}, {}
    for split in splits:
        report = DataReport(split)
        records[split] = read_records(data_cfg, split, tokenizer, report)
        tokenized[split] = tokenize_records(records[split], tokenizer, data_cfg, report)
        reports[split] = report.to_dict()
        if is_main_process():
            print(report.summary())
    if is_main_process():
        atomic_write_json(run_dir / "data_report.json", reports)
    if not tokenized["train"]:
        raise ValueError("no training example survived the data checks (see data_report.json)")
    train_items = _as_loss_items(tokenized["train"], loss_fn, "train")
    heldout_pairs, heldout_loss_items = {}, {}
    for split in HELDOUT_SPLITS:
        examples = tokenized.get(split) or []
        if not examples:
            continue
        if isinstance(examples[0], TokenizedPair):
            heldout_pairs[split] = paired_items(examples)
        if not isinstance(examples[0], TokenizedUnpaired | TokenizedPair):
            raise TypeError(f"unexpected example type {type(examples[0]).__name__}")
        heldout_loss_items[split] = _as_loss_items(examples, loss_fn, split)
    prompts = resolved.eval_prompts
    if prompts is None:
        prompts = {
            split: list(dict.fromkeys(r.prompt for r in records.get(split, [])))
            for split in HELDOUT_SPLITS
            if records.get(split)
        }
    hashes = {"train": items_digest(train_items)}
    hashes.update({f"{s}_pairs": items_digest(v) for s, v in heldout_pairs.items()})
    return PreparedData(
        tokenizer, train_items, heldout_pairs, heldout_loss_items, records["train"], prompts, hashes
    )
