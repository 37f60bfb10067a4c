"""Fixtures for the data tests: a small byte-level BPE tokenizer built here, and a variant."""

from __future__ import annotations

import copy

import pytest
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}{{ eos_token }}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
TRAINING_TEXT = [
    "the cat sat on the mat and the dog sat on the log",
    "Human: what is the capital of France? Assistant: the capital of France is Paris",
    "a good answer is short and a bad answer is long and wrong",
    "hello world, hello there, how are you today?",
]


@pytest.fixture(scope="session")
def tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE (any text encodes) with merges, so joint tokenization would merge tokens;
    special tokens <bos>, <eos>, <pad>; a simple chat template."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "<bos>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(TRAINING_TEXT, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>"
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


@pytest.fixture(scope="session")
def silent_tokenizer(tokenizer) -> PreTrainedTokenizerFast:
    """The fixture tokenizer with a normalizer that deletes "~", so "~~~" encodes to no tokens."""
    silent = copy.deepcopy(tokenizer)
    silent.backend_tokenizer.normalizer = normalizers.Replace("~", "")
    return silent
