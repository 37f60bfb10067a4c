"""A tiny model, tokenizer and preference data built in the test, saved as a hub model would be."""

from __future__ import annotations

import json
import random
from pathlib import Path

from omegaconf import OmegaConf
from transformers import GPT2Config, GPT2LMHeadModel

from prefopt.tasks.wordlevel import build_word_tokenizer

CONF = Path(__file__).resolve().parents[2] / "conf"

WORDS = [
    "the",
    "film",
    "plot",
    "acting",
    "was",
    "is",
    "good",
    "great",
    "fine",
    "bad",
    "awful",
    "dull",
    "very",
    "quite",
    "and",
    "but",
    ":",
    ".",
]


def build_model_dir(path: Path, seed: int = 0) -> Path:
    """Save a 2-layer GPT-2 and a word-level tokenizer with save_pretrained."""
    tokenizer = build_word_tokenizer(WORDS)  # <pad>=0, <eos>=1, <unk>=2, then WORDS
    import torch

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_layer=2,
        n_embd=32,
        n_head=2,
        n_positions=64,
        bos_token_id=1,
        eos_token_id=1,
        pad_token_id=0,
    )
    GPT2LMHeadModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def write_pairs(path: Path, n: int, seed: int = 0) -> Path:
    """prompt/chosen/rejected JSONL where chosen uses a positive word and rejected a negative one."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        subject = rng.choice(["the film", "the plot", "the acting"])
        good, bad = rng.choice(["good", "great", "fine"]), rng.choice(["bad", "awful", "dull"])
        adverb = rng.choice(["very", "quite", ""])
        prompt = f"{subject} {'is' if i % 2 else 'was'} :"
        rows.append(
            {
                "prompt": prompt,
                "chosen": f"{adverb} {good} .".strip(),
                "rejected": f"{adverb} {bad} .".strip(),
                "preference_prob": 0.9,
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def make_config(tmp: Path, cache: Path, loss: dict, **trainer):
    """A full run config over the tiny model and data (no task, no generation evaluation); the
    trainer and eval keys it does not set have their defaults of conf/."""
    model_dir = tmp / "model"
    if not model_dir.exists():
        raise FileNotFoundError(f"build the tiny model first: {model_dir}")
    cfg = {
        "seed": 0,
        "name": "test",
        "cache_dir": str(cache),
        "device": "cpu",
        "num_threads": 1,
        "resume": "auto",
        "task": None,
        "model": {
            "name_or_path": str(model_dir),
            "revision": None,
            "trust_remote_code": False,
            "use_safetensors": True,
            "dtype": "float32",
            "attn_implementation": None,
            "gradient_checkpointing": False,
            "lora": {
                "enabled": False,
                "r": 4,
                "alpha": 8,
                "target_modules": "all-linear",
                "merge_on_save": False,
            },
        },
        "data": {
            "source": str(tmp),
            "format": "trl",
            "splits": {"train": "train.jsonl", "validation": "validation.jsonl"},
            "weight_column": None,
            "max_rows": None,
            "max_prompt_length": 16,
            "max_response_length": 16,
            "max_length": None,
            "add_eos": True,
            "add_bos": False,
            "on_bad_row": "drop",
            "drop_overlength": False,
            "max_overlap": 1.0,  # write_pairs' small grammar repeats records across splits
        },
        "loss": loss,
        "trainer": {
            **OmegaConf.load(CONF / "trainer" / "default.yaml"),
            "lr": 1e-3,
            "epochs": 2,
            "max_steps": None,
            "batch_size": 8,
            "micro_batch_size": None,
            "optimizer": "adamw",
            "adam_betas": [0.9, 0.999],
            "weight_decay": 0.0,
            "warmup": 0,
            "schedule": "constant",
            "max_grad_norm": 1.0,
            "precision": "no",
            "reference": "cached",
            "reference_batch_size": 16,
            "log_every": 1,
            "keep_checkpoints": 1,
            "save_policy": True,
            **trainer,
        },
        "eval": {
            **OmegaConf.load(CONF / "eval" / "default.yaml"),
            "generate": False,
            "eval_every": 4,
            "at_start": True,
            "pair_batch_size": 16,
        },
        "judge": {"kind": "none"},
    }
    return OmegaConf.create(cfg)


def interrupt_train_step(monkeypatch, trainer_class, call: int) -> None:
    """Make the ``call``-th call of ``trainer_class.train_step`` raise KeyboardInterrupt, as
    Ctrl-C would; ``monkeypatch.undo()`` or a fresh setattr restores it."""
    original = trainer_class.train_step
    calls = {"n": 0}

    def interrupted(self):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(trainer_class, "train_step", interrupted)
