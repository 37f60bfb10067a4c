"""The one job both tools run: a model built from a config and a word-level tokenizer, random-word
pairs in a TRL-format JSONL that both tokenize to the same ids, batches in prefopt's epoch order,
and the tokens trained on, from the data: 2 * len(prompt) + len(chosen + eos) + len(rejected + eos).
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from transformers import LlamaConfig, LlamaForCausalLM

from prefopt.tasks.preferences import write_jsonl
from prefopt.tasks.pretrain import build_gpt2
from prefopt.tasks.wordlevel import EOS, PAD, UNK, build_word_tokenizer
from prefopt.train import CONFIG_DIR
from prefopt.trainer.batching import epoch_order

SPECIAL_TOKENS = len((PAD, EOS, UNK))  # the word-level tokenizer's ids before the words
LIMITS = ("max_prompt_length", "max_response_length", "max_length")  # prefopt's data limits


@dataclass(frozen=True)
class Workload:
    """Model shape, data shape and optimiser settings of one benchmark job."""

    architecture: str = "gpt2"  # gpt2, or llama (RMSNorm, SwiGLU MLP, rotary positions)
    n_layer: int = 4  # transformer blocks
    n_embd: int = 256  # hidden width
    n_head: int = 4  # attention heads
    intermediate_size: int = 0  # llama's MLP width (gpt2's is 4 x n_embd)
    vocab_size: int = 4096  # word-level vocabulary, special tokens included
    prompt_words: tuple[int, int] = (16, 48)  # prompt length range in tokens (inclusive)
    response_words: tuple[int, int] = (8, 56)  # response length range before the EOS token
    batch_size: int = 8  # pairs per optimiser step, one micro-batch
    steps: int = 12  # optimiser steps of one run
    lr: float = 1e-5  # AdamW learning rate, constant, no warm-up
    beta: float = 0.1  # DPO beta
    reference_batch_size: int = 32  # pairs per forward when precomputing reference log-probs
    seed: int = 0  # seeds the model's initial weights, the data and the batch order
    device: str = "cpu"  # cpu or cuda
    precision: str = "fp32"  # fp32; or bf16: fp32 weights, bf16 autocast on both sides (GPU)

    @property
    def num_pairs(self) -> int:
        """One epoch holds exactly ``steps`` batches."""
        return self.steps * self.batch_size

    @property
    def max_length(self) -> int:
        """Longest prompt + response + EOS."""
        return self.prompt_words[1] + self.response_words[1] + 1

    def words(self) -> list[str]:
        """The vocabulary's ordinary words (after the special tokens)."""
        return [f"w{i}" for i in range(self.vocab_size - SPECIAL_TOKENS)]


# The GPU job: a Llama shape of 374M parameters (341M without the input embedding), 16 pairs of
# 128 prompt + 256 response tokens (EOS included) per step, bf16 autocast.
GPU = Workload(
    architecture="llama", n_layer=24, n_embd=1024, n_head=16, intermediate_size=2816,
    vocab_size=32000, prompt_words=(128, 128), response_words=(255, 255),
    batch_size=16, reference_batch_size=16, device="cuda", precision="bf16",
)  # fmt: skip
PRESETS = {  # --preset -> the job; tiny_gpu runs GPU's code path on a CPU in seconds (the tests)
    "cpu": Workload(),
    "gpu": GPU,
    "tiny_gpu": replace(
        GPU, n_layer=2, n_embd=64, n_head=4, intermediate_size=176,
        vocab_size=512, prompt_words=(8, 8), response_words=(15, 15),
        batch_size=4, reference_batch_size=4, device="cpu", precision="fp32",
    ),
}  # fmt: skip


def build_model(work: Workload, tokenizer):
    """The workload's randomly initialised model (dropout 0; untied embeddings for llama)."""
    positions = max(128, work.max_length)
    shape = {"n_layer": work.n_layer, "n_embd": work.n_embd, "n_head": work.n_head}
    if work.architecture == "gpt2":
        return build_gpt2(tokenizer, n_positions=positions, **shape)
    if work.architecture != "llama":
        raise ValueError(f"architecture must be gpt2 or llama, got {work.architecture!r}")
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=work.n_embd, intermediate_size=work.intermediate_size,
        num_hidden_layers=work.n_layer, num_attention_heads=work.n_head,
        num_key_value_heads=work.n_head, max_position_embeddings=positions,
        tie_word_embeddings=False, attention_dropout=0.0, bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    return LlamaForCausalLM(config)


def make_pairs(work: Workload) -> list[dict]:
    """Random-word pairs; responses start with a space so TRL's prompt + response string concatenation
    tokenizes to the prompt's ids followed by the response's."""
    rng, words = random.Random(work.seed), work.words()

    def text(low_high: tuple[int, int], lead: str = "") -> str:
        """``lead``, then a random number (in ``low_high``) of random words."""
        return lead + " ".join(rng.choice(words) for _ in range(rng.randint(*low_high)))

    keys = {"prompt": (work.prompt_words, ""), "chosen": (work.response_words, " ")}
    keys["rejected"] = keys["chosen"]
    return [{key: text(*spec) for key, spec in keys.items()} for _ in range(work.num_pairs)]


def prepare(workdir: Path, work: Workload) -> None:
    """What both tools read: ``workdir``/model (model and tokenizer) and ``workdir``/data/train.jsonl."""
    tokenizer = build_word_tokenizer(work.words())
    torch.manual_seed(work.seed)
    build_model(work, tokenizer).save_pretrained(workdir / "model")
    tokenizer.save_pretrained(workdir / "model")
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    write_jsonl(workdir / "data" / "train.jsonl", make_pairs(work))


@contextmanager
def prepared(work: Workload) -> Iterator[Path]:
    """A temporary directory that ``prepare`` has filled for ``work``, removed afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        prepare(Path(tmp), work)
        yield Path(tmp)


def pair_tokens(pair: dict) -> int:
    """Non-padding tokens of a pair's chosen and rejected sequences."""
    return 2 * len(pair["prompt"].split()) + pair_response_tokens(pair)


def pair_response_tokens(pair: dict) -> int:
    """Response tokens of a pair's two sequences, EOS included: the positions a loss reads."""
    return len(pair["chosen"].split()) + 1 + len(pair["rejected"].split()) + 1


def batch_order(work: Workload) -> list[int]:
    """Pair indices in the order prefopt's trainer visits them (epoch 0); TRL gets the same order."""
    return epoch_order(work.num_pairs, work.seed, 0)


def tokens_per_step(work: Workload, count=pair_tokens) -> list[int]:
    """Tokens trained on in each optimiser step (``count`` of each pair), in the shared batch order."""
    pairs, order, size = make_pairs(work), batch_order(work), work.batch_size
    return [
        sum(count(pairs[i]) for i in order[s * size : (s + 1) * size]) for s in range(work.steps)
    ]


def prefopt_config(
    work: Workload, workdir: Path, cache_dir: Path, overrides=(), loss="dpo", beta=None
):
    """conf/ composed for the workload on what ``prepare`` left in ``workdir`` (no task, no
    generation), with a configuration's ``overrides`` and ``loss`` at ``beta`` (None: the workload's)."""
    run = [
        "name=bench_trl", "task=none", f"seed={work.seed}", f"device={work.device}",
        f"cache_dir={cache_dir}", "num_threads=null",  # torch's default threads on both sides
        "model=hf", f"model.name_or_path={workdir / 'model'}", "model.dtype=float32",
        "model.lora.r=8", "model.lora.alpha=16",
        "data=jsonl", f"data.source={workdir / 'data'}", "data.format=trl", "data.on_bad_row=error",
        # the training file doubles as validation: no rows held out, a reuse that is deliberate
        # (the benchmark measures speed only)
        "data.splits.train=train.jsonl", "data.splits.validation=train.jsonl", "data.max_overlap=1.0",
        *(f"data.{key}={work.max_length}" for key in LIMITS),  # every sequence fits: no cut
        f"loss={loss}", f"loss.beta={work.beta if beta is None else beta}",
        "trainer.epochs=1", f"trainer.max_steps={work.steps}", f"trainer.batch_size={work.batch_size}",
        f"trainer.lr={work.lr}", "trainer.warmup=0", "trainer.schedule=constant",
        f"trainer.precision={'bf16' if work.precision == 'bf16' else 'no'}",
        f"trainer.reference_batch_size={work.reference_batch_size}",
        "trainer.log_every=1", "trainer.save_policy=false",
        "eval.generate=false", "eval.at_start=false", f"eval.pair_batch_size={work.reference_batch_size}",
        f"eval.eval_every={work.steps}",  # only after the last (timed) step
    ]  # fmt: skip
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=[*run, *overrides])
