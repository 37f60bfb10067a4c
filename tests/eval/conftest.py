"""Tiny models for evaluation tests: a word-level tokenizer and GPT-2s built from configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GPT2Config,
    GPT2ForSequenceClassification,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
)

from prefopt.eval import Judge
from prefopt.tasks.wordlevel import build_word_tokenizer

WORDS = [
    "good",
    "bad",
    "the",
    "a",
    "cat",
    "dog",
    "sat",
    "ran",
    "is",
    "was",
    "very",
    "not",
    "and",
    "on",
    "mat",
    "hat",
    "big",
    "small",
    "red",
    "blue",
    "A",
    "B",
    "Which",
    "response",
    "better",
    "Prompt",
    "Response",
    "The",
]
PROMPTS = [
    f"the {animal} {verb} on the {thing}"
    for animal in ("cat", "dog")
    for verb in ("sat", "ran", "is", "was")
    for thing in ("mat", "hat", "red", "blue", "big", "small")
]


def build_tokenizer() -> PreTrainedTokenizerFast:
    """The package's word-level tokenizer over WORDS: <pad>=0, <eos>=1, <unk>=2, then the words."""
    return build_word_tokenizer(WORDS)


def gpt2_config(tokenizer, n_embd: int = 32, n_layer: int = 2) -> GPT2Config:
    return GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=256,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=2,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread (two contend on a shared 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """A saved tiny causal LM (pi_ref) with its tokenizer."""
    path = tmp_path_factory.mktemp("pi_ref")
    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    model = GPT2LMHeadModel(gpt2_config(tokenizer))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory):
    """A saved tiny sequence-classification reward model with its tokenizer."""
    path = tmp_path_factory.mktemp("reward_model")
    tokenizer = build_tokenizer()
    torch.manual_seed(1)
    config = gpt2_config(tokenizer)
    config.num_labels = 1
    GPT2ForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def tokenizer(model_dir):
    return AutoTokenizer.from_pretrained(model_dir)


def load_model(path):
    model = AutoModelForCausalLM.from_pretrained(path)
    model.eval()
    return model


class WordCountJudge(Judge):
    """Toy pointwise judge: the reward is the number of words in the response."""

    name = "word_count"

    def score(self, prompts, responses):
        return np.array([len(r.split()) for r in responses], dtype=float)


class GoodWordJudge(Judge):
    """Toy pointwise judge: reward = count of "good" minus count of "bad"; reports has_good."""

    name = "good_word"

    def score(self, prompts, responses):
        return np.array(
            [r.split().count("good") - r.split().count("bad") for r in responses], float
        )

    def response_metrics(self, prompts, responses):
        return {"has_good": np.array(["good" in r.split() for r in responses])}


class StandInTask:
    """Stand-in for the built-in task: gold reward = number of "good" words; artifacts on disk."""

    def __init__(self, model_dir=None, root=None):
        self.model_dir, self.root = model_dir, root

    def gold_reward(self, prompts, responses):
        return np.array([r.split().count("good") for r in responses], float)

    def response_metrics(self, prompts, responses):
        return {"grammatical": np.array([not r.startswith("bad") for r in responses])}

    def prepare(self, cache_dir):
        import json
        from types import SimpleNamespace

        self.root.mkdir(parents=True, exist_ok=True)
        prompt_files = {}
        for split, prompts in (("validation", PROMPTS[:24]), ("test", PROMPTS[24:])):
            prompt_files[split] = self.root / f"{split}_prompts.jsonl"
            prompt_files[split].write_text(
                "".join(json.dumps({"prompt": p}) + "\n" for p in prompts)
            )
        train = self.root / "train.jsonl"
        rows = [{"prompt": p, "chosen": "good good", "rejected": "bad bad"} for p in PROMPTS]
        train.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return SimpleNamespace(
            root=self.root,
            model_dir=self.model_dir,
            data_files={"train": train},
            unpaired_files={"train": train},
            prompt_files=prompt_files,
            config_hash="standin",
            info={},
        )
