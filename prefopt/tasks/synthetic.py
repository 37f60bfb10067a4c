"""What the built-in tasks share: a pi_ref trained from scratch on the task's generated language and
cached as a stage, and preference data sampled from it, labelled and written.

A task's config names the fields read here: ``seed``, ``n_layer``, ``n_embd``, ``n_head``,
``max_new_tokens`` (pi_ref), ``n_train_pairs``, ``n_eval_pairs``, ``min_reward_gap``,
``sampling_temperature``, ``sampling_batch_size``, ``label_temperature``, ``flip_rate`` (data).
Seeds: pi_ref's initialisation ``seed``; split ``i`` of ``SPLITS`` samples with ``10 * seed + i + 1``
and labels with ``[seed, 2, i]``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

from prefopt.tasks.base import EVAL_SPLITS, SPLITS, Task, TaskArtifacts
from prefopt.tasks.cache import build_cached, config_hash, json_problem, model_dir_problem
from prefopt.tasks.preferences import (
    RewardFn,
    SampledPairs,
    pair_records,
    sample_pairs,
    unpaired_records,
    write_jsonl,
)
from prefopt.tasks.pretrain import build_gpt2
from prefopt.tasks.wordlevel import build_word_tokenizer

STAGE_FACTS = "pretrain.json"  # facts of a cached model's training, kept with its weights


@contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` torch CPU threads, then restore the setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def settings_hash(task: Task, fields: Sequence[str]) -> str:
    """Hash of the task's name, code version and the config ``fields`` a stage depends on."""
    cfg = dataclasses.asdict(task.config)
    return config_hash({"name": task.name, "version": task.version, **{k: cfg[k] for k in fields}})


def cached_model_stage(
    cache_dir: Path, task: Task, stage: str, fields: Sequence[str], build: Callable[[Path], None]
) -> Path:
    """The directory of a model stage (``<cache_dir>/tasks/stages/<task>-<stage>-<hash of fields>``),
    built once by ``build(tmp)``, which saves a model, its tokenizer and ``STAGE_FACTS``."""
    root = cache_dir / "tasks" / "stages" / f"{task.name}-{stage}-{settings_hash(task, fields)}"
    build_cached(
        root,
        build,
        check=lambda found: model_dir_problem(found) or json_problem(found / STAGE_FACTS),
    )
    return root


def new_pi_ref(
    words: Sequence[str], cfg, prompt_tokens: int
) -> tuple[torch.nn.Module, PreTrainedTokenizerFast]:
    """A freshly initialised GPT-2 (seeded by ``cfg.seed``) and the word-level tokenizer of ``words``,
    with room for a prompt of ``prompt_tokens`` and long policies."""
    tokenizer = build_word_tokenizer(words)
    torch.manual_seed(cfg.seed)
    model = build_gpt2(
        tokenizer,
        n_layer=cfg.n_layer,
        n_embd=cfg.n_embd,
        n_head=cfg.n_head,
        n_positions=max(128, 2 * (prompt_tokens + cfg.max_new_tokens)),
    )
    return model, tokenizer


def save_model_stage(
    out: Path, model: torch.nn.Module, tokenizer: PreTrainedTokenizerFast, facts: dict
) -> None:
    """Save a trained model, its tokenizer and the facts of its training (``STAGE_FACTS``)."""
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / STAGE_FACTS).write_text(json.dumps(facts, sort_keys=True) + "\n")


def pretrain_facts(
    model: torch.nn.Module, tokenizer: PreTrainedTokenizerFast, losses: Sequence[float]
) -> dict:
    """Size of pi_ref and its final pre-training loss (mean of the last 20 steps)."""
    return {
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "pretrain_final_loss": round(float(np.mean(losses[-20:])), 4),
    }


def install_model_stage(stage: Path, model_dir: Path):
    """Copy a cached stage to ``model_dir``; return (its facts, the model, its tokenizer)."""
    shutil.copytree(stage, model_dir)
    facts = json.loads((model_dir / STAGE_FACTS).read_text())
    (model_dir / STAGE_FACTS).unlink()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    return facts, model, tokenizer


def sample_split_pairs(
    model, tokenizer, splits: dict[str, list[str]], reward_fn: RewardFn, cfg
) -> dict[str, SampledPairs]:
    """Pairs of pi_ref samples for the prompts of every split (``n_train_pairs`` or ``n_eval_pairs``)."""
    return {
        split: sample_pairs(
            model,
            tokenizer,
            splits[split],
            reward_fn,
            n_pairs=cfg.n_train_pairs if split == "train" else cfg.n_eval_pairs,
            min_gap=cfg.min_reward_gap,
            seed=cfg.seed * 10 + index + 1,
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.sampling_temperature,
            batch_size=cfg.sampling_batch_size,
        )
        for index, split in enumerate(SPLITS)
    }


def write_pair_data(
    layout: TaskArtifacts, splits: dict[str, list[str]], sampled: dict[str, SampledPairs], cfg
) -> dict:
    """Label the sampled pairs; write pairs, unpaired completions and held-out prompts; return the
    facts of the data: ``unpaired_threshold`` and per split ``splits`` (sizes, Bayes accuracy, label
    agreement, ``chosen_longer``, desirable share)."""
    train = sampled["train"]
    threshold = float(np.median(np.concatenate([train.reward_a, train.reward_b])))
    facts: dict = {"unpaired_threshold": threshold, "splits": {}}
    for index, split in enumerate(SPLITS):
        label_rng = np.random.default_rng([cfg.seed, 2, index])
        flip_rate = cfg.flip_rate if split == "train" else 0.0  # noise in the training labels only
        records, bayes = pair_records(
            sampled[split], label_rng, temperature=cfg.label_temperature, flip_rate=flip_rate
        )
        unpaired = unpaired_records(
            sampled[split],
            label_rng,
            threshold=threshold,
            temperature=cfg.label_temperature,
            flip_rate=flip_rate,
        )
        write_jsonl(layout.data_files[split], records)
        write_jsonl(layout.unpaired_files[split], unpaired)
        facts["splits"][split] = {
            "n_pairs": len(records),
            "n_unpaired": len(unpaired),
            "bayes_accuracy": round(bayes, 4),
            "label_agreement": float(np.mean([not r["flipped"] for r in records])),
            "chosen_longer": chosen_longer(records),
            "desirable": float(np.mean([u["label"] for u in unpaired])),
        }
    for split in EVAL_SPLITS:
        write_jsonl(layout.prompt_files[split], [{"prompt": p} for p in splits[split]])
    return facts


def chosen_longer(records: list[dict]) -> float:
    """Fraction of pairs whose chosen response has more words, among pairs of unequal length."""
    diff = np.array([len(r["chosen"].split()) - len(r["rejected"].split()) for r in records])
    return float(np.mean(diff[diff != 0] > 0)) if np.any(diff != 0) else float("nan")
