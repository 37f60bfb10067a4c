"""The data a run trains and evaluates on, as TrainItems, with its data report saved."""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from prefopt.data import (
    DataError,
    DataReport,
    DataSettings,
    PreferenceRecord,
    TokenizedPair,
    TokenizedUnpaired,
    available_splits,
    pairs_to_unpaired,
    read_records,
    tokenize_records,
)
from prefopt.data.control_tokens import add_control_tokens, control_token_ids
from prefopt.losses import PreferenceLoss
from prefopt.models.loading import load_tokenizer
from prefopt.results.store import atomic_write_json
from prefopt.trainer.items import TrainItem, items_digest, paired_items, unpaired_items
from prefopt.trainer.setup import Resolved, is_main_process

log = logging.getLogger(__name__)

# Fixed seeds, so every run of a sweep holds out the same validation rows (when the data has no
# validation split) and forms the same mismatched KL pairs (whose reference log-probs are cached).
VALIDATION_SEED = 0
KL_PAIRING_SEED = 0
HELDOUT_SPLITS = ("validation", "test")


@dataclass
class PreparedData:
    """Tokenizer, training items and held-out items of a run."""

    tokenizer: object
    train_items: list[TrainItem]
    heldout_pairs: dict[str, list[TrainItem]]  # implicit-reward metrics (paired data only)
    heldout_loss_items: dict[str, list[TrainItem]]  # the loss's own format
    train_records: list  # raw training records (the proxy reward model trains on them)
    validation_records: list  # raw validation records (a reward model's held-out accuracy)
    eval_prompts: dict[str, list[str]]
    hashes: dict[str, str]
    items_per_pair: int = 1  # 2 where an unpaired loss's training items split the data's pairs


def pair_dicts(records: list) -> list[dict]:
    """The records that are pairs, as {prompt, chosen, rejected} strings and their true preference
    probability where the data knows it (a built-in task's ``preference_prob``, else None): what a
    reward model trains and is scored on."""
    return [
        {
            "prompt": r.prompt,
            "chosen": r.chosen,
            "rejected": r.rejected,
            "preference_prob": r.meta.get("preference_prob"),
        }
        for r in records
        if hasattr(r, "chosen")
    ]


def hold_out_validation(train: list) -> tuple[list, list]:
    """Split a validation set off the training records when the data has none.

    5% of the rows (at least 1, at most 1,000), chosen by a fixed seed so every run of a sweep holds
    out the same rows; all rows of a prompt go to the same side, so no prompt is in both.
    """
    prompts = sorted({record.prompt for record in train})
    if len(prompts) < 2:
        raise ValueError("the data has no validation split and too few prompts to hold one out")
    random.Random(VALIDATION_SEED).shuffle(prompts)
    rows_per_prompt = Counter(record.prompt for record in train)
    wanted = min(1000, max(1, len(train) // 20))
    held, count = set(), 0
    for prompt in prompts:
        if count >= wanted:
            break
        held.add(prompt)
        count += rows_per_prompt[prompt]
    kept = [r for r in train if r.prompt not in held]
    validation = [r for r in train if r.prompt in held]
    log.info(
        "data: no validation split; held out %d of %d training rows", len(validation), len(train)
    )
    return kept, validation


def _record_key(record) -> tuple:
    if isinstance(record, PreferenceRecord):
        return (record.prompt, record.chosen, record.rejected)
    return (record.prompt, record.completion, record.desirable)


def train_overlap(train: list, heldout: list, by_prompt: bool) -> int:
    """How many held-out records also occur in the training data: by prompt text (``by_prompt``)
    or as identical records (prompt, chosen, rejected; or prompt, completion, label)."""
    if by_prompt:
        seen = {record.prompt for record in train}
        return sum(record.prompt in seen for record in heldout)
    seen = {_record_key(record) for record in train}
    return sum(_record_key(record) in seen for record in heldout)


def check_overlap(overlaps: dict, records: dict, max_overlap: float, by_prompt: bool) -> None:
    """Refuse held-out splits that share more than ``max_overlap`` of their records with train."""
    for split, count in overlaps.items():
        total = len(records[split])
        if count > max_overlap * total:
            what = "prompts" if by_prompt else "records (prompt, responses and label)"
            raise DataError(
                f"{count} of {total} {split} records are also in the training data (identical "
                f"{what}): the model would be scored on what it trained on. data.max_overlap="
                f"{max_overlap} allows at most {max_overlap:.0%}; use separate files for the splits "
                "(data.splits), or raise data.max_overlap"
            )


def reserve_control_token(data_cfg: dict, loss_fn: PreferenceLoss) -> dict:
    """The data settings with one token of each response limit left for a control token, when the
    loss puts one first in each response (so every item still fits the configured limits)."""
    if loss_fn.control_tokens is None:
        return data_cfg
    limits = ("max_response_length", "max_length")
    return {
        **data_cfg,
        **{key: data_cfg[key] - 1 for key in limits if data_cfg.get(key) is not None},
    }


def _as_loss_items(
    examples: list, loss_fn: PreferenceLoss, split: str, tokenizer
) -> list[TrainItem]:
    """Items in the loss's data format; paired data is split into unpaired examples if needed,
    and a conditioned loss's responses start with its control tokens."""
    if not examples:
        return []
    paired = isinstance(examples[0], TokenizedPair)
    if loss_fn.data_format == "paired":
        if not paired:
            raise ValueError(
                f"loss {loss_fn.name!r} needs paired data, but the {split} split holds unpaired "
                "rows (prompt/completion/label); choose an unpaired loss such as kto"
            )
        control = loss_fn.control_tokens
        return paired_items(examples, control and control_token_ids(tokenizer, control))
    unpaired = pairs_to_unpaired(examples) if paired else examples
    return unpaired_items(unpaired, seed=KL_PAIRING_SEED)


def prepare_data(
    cfg: DictConfig, resolved: Resolved, loss_fn: PreferenceLoss, run_dir: Path
) -> PreparedData:
    """Read, check, tokenize every configured split; save data_report.json in the run."""
    tokenizer = load_tokenizer(resolved.model_path, cfg.model)
    add_control_tokens(tokenizer, loss_fn.control_tokens)  # the policy's embeddings follow
    data_cfg = reserve_control_token(resolved.data_cfg, loss_fn)
    splits = available_splits(data_cfg)
    if "train" not in splits:
        raise ValueError(f"data config maps no train split; configured: {splits}")
    records, tokenized, reports = {}, {}, {}
    for split in splits:
        report = DataReport(split)
        records[split] = read_records(data_cfg, split, tokenizer, report)
        if split == "train" and "validation" not in splits:
            records["train"], records["validation"] = hold_out_validation(records["train"])
        tokenized[split] = tokenize_records(records[split], tokenizer, data_cfg, report)
        reports[split] = report.to_dict()
        if is_main_process():
            log.info("%s", report.summary())
    if "validation" in records and "validation" not in splits:
        report = DataReport("validation")
        tokenized["validation"] = tokenize_records(
            records["validation"], tokenizer, data_cfg, report
        )
        reports["validation"] = {**report.to_dict(), "held_out_from": "train"}
    by_prompt = resolved.eval_prompts is not None  # a built-in task: held-out prompts are unseen
    overlaps = {
        split: train_overlap(records["train"], records[split], by_prompt)
        for split in HELDOUT_SPLITS
        if split in splits and records.get(split)
    }
    for split, count in overlaps.items():
        reports[split]["overlap_with_train"] = count
    if is_main_process():
        atomic_write_json(run_dir / "data_report.json", reports)
    check_overlap(overlaps, records, DataSettings.from_cfg(data_cfg).max_overlap, by_prompt)
    if not tokenized["train"]:
        raise ValueError("no training example survived the data checks (see data_report.json)")
    train_items = _as_loss_items(tokenized["train"], loss_fn, "train", tokenizer)
    heldout_pairs, heldout_loss_items = {}, {}
    for split in HELDOUT_SPLITS:
        examples = tokenized.get(split) or []
        if not examples:
            continue
        if isinstance(examples[0], TokenizedPair):
            heldout_pairs[split] = paired_items(examples)
        if not isinstance(examples[0], TokenizedUnpaired | TokenizedPair):
            raise TypeError(f"unexpected example type {type(examples[0]).__name__}")
        plain_pairs = loss_fn.data_format == "paired" and loss_fn.control_tokens is None
        if split in heldout_pairs and plain_pairs:
            heldout_loss_items[split] = heldout_pairs[split]  # one list: one forward in evaluation
        else:
            heldout_loss_items[split] = _as_loss_items(examples, loss_fn, split, tokenizer)
    prompts = resolved.eval_prompts
    if prompts is None:
        prompts = {
            split: list(dict.fromkeys(r.prompt for r in records.get(split, [])))
            for split in HELDOUT_SPLITS
            if records.get(split)
        }
    hashes = {"train": items_digest(train_items)}
    hashes.update({f"{s}_pairs": items_digest(v) for s, v in heldout_pairs.items()})
    split_pairs = loss_fn.data_format == "unpaired" and isinstance(
        tokenized["train"][0], TokenizedPair
    )
    return PreparedData(
        tokenizer,
        train_items,
        heldout_pairs,
        heldout_loss_items,
        records["train"],
        records.get("validation", []),
        prompts,
        hashes,
        items_per_pair=2 if split_pairs else 1,
    )
