"""The one job both tools run: a model built from a config (GPT-2 on a CPU, a Llama shape on a GPU),
a word-level tokenizer, preference pairs.

Everything both sides must share lives here: the model and tokenizer (saved with save_pretrained and
loaded by each tool itself), the data (a TRL-format JSONL that both tools read and tokenize to the same
ids), the order in which pairs form batches (prefopt's own epoch order, fed to TRL through a sampler), and
the count of tokens trained on:

    tokens(pair) = 2 * len(prompt) + len(chosen + eos) + len(rejected + eos)

the non-padding tokens of the chosen and the rejected sequence (the prompt is in both).
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from prefopt.tasks.wordlevel import EOS, PAD, UNK

CONF = Path(__file__).resolve().parents[2] / "conf"
SPECIAL = [PAD, EOS, UNK]


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

    def to_dict(self) -> dict:
        return asdict(self)


# The GPU job: a Llama shape of 374M parameters (341M without the input embedding), 16 pairs of
# 128 prompt + 256 response tokens (EOS included) per step, bf16 autocast.
GPU_WORKLOAD = {
    "architecture": "llama",
    "n_layer": 24,
    "n_embd": 1024,
    "n_head": 16,
    "intermediate_size": 2816,
    "vocab_size": 32000,
    "prompt_words": (128, 128),
    "response_words": (255, 255),
    "batch_size": 16,
    "reference_batch_size": 16,
    "device": "cuda",
    "precision": "bf16",
}
# The same code path on a CPU in seconds: what the tests run.
TINY_GPU_WORKLOAD = {
    **GPU_WORKLOAD,
    "n_layer": 2,
    "n_embd": 64,
    "n_head": 4,
    "intermediate_size": 176,
    "vocab_size": 512,
    "prompt_words": (8, 8),
    "response_words": (15, 15),
    "batch_size": 4,
    "reference_batch_size": 4,
    "device": "cpu",
    "precision": "fp32",
}


def words(vocab_size: int) -> list[str]:
    """The vocabulary's ordinary words (after the special tokens)."""
    if vocab_size <= len(SPECIAL) + 1:
        raise ValueError(f"vocab_size={vocab_size} must exceed {len(SPECIAL) + 1}")
    return [f"w{i}" for i in range(vocab_size - len(SPECIAL))]


def model_config(work: Workload, vocab: dict):
    """The transformers config of the workload's model (dropout 0, untied embeddings for llama)."""
    from transformers import GPT2Config, LlamaConfig

    ids = {"bos_token_id": vocab[EOS], "eos_token_id": vocab[EOS], "pad_token_id": vocab[PAD]}
    if work.architecture == "llama":
        return LlamaConfig(
            vocab_size=work.vocab_size,
            hidden_size=work.n_embd,
            intermediate_size=work.intermediate_size,
            num_hidden_layers=work.n_layer,
            num_attention_heads=work.n_head,
            num_key_value_heads=work.n_head,
            max_position_embeddings=max(128, work.max_length),
            tie_word_embeddings=False,
            attention_dropout=0.0,
            **ids,
        )
    if work.architecture != "gpt2":
        raise ValueError(f"architecture must be gpt2 or llama, got {work.architecture!r}")
    return GPT2Config(
        vocab_size=work.vocab_size,
        n_layer=work.n_layer,
        n_embd=work.n_embd,
        n_head=work.n_head,
        n_positions=max(128, work.max_length),
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        **ids,
    )


def flops_per_token(work: Workload) -> dict:
    """Model FLOPs per token: 6N for a trained (policy) token, 2N for a reference forward's token.

    N counts the parameters that multiply every token: all but the input embedding (a lookup),
    whose matrix still counts once where it is tied to the LM head (GPT-2).
    """
    import torch
    from transformers import AutoModelForCausalLM

    vocab = {w: i for i, w in enumerate(SPECIAL + words(work.vocab_size))}
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(model_config(work, vocab))
    total = sum(p.numel() for p in model.parameters())  # a tied matrix once
    embedding, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    n = total if embedding is head else total - embedding.numel()
    return {"parameters": total, "n": n, "policy": 6 * n, "reference": 2 * n}


def build_model_dir(path: Path, work: Workload) -> Path:
    """Save a randomly initialised model (dropout 0) and its word-level tokenizer with save_pretrained."""
    import torch
    from transformers import AutoModelForCausalLM

    from prefopt.tasks.wordlevel import build_word_tokenizer

    tokenizer = build_word_tokenizer(words(work.vocab_size))
    torch.manual_seed(work.seed)
    path.mkdir(parents=True, exist_ok=True)
    AutoModelForCausalLM.from_config(model_config(work, tokenizer.get_vocab())).save_pretrained(
        path
    )
    tokenizer.save_pretrained(path)
    return path


def make_pairs(work: Workload) -> list[dict]:
    """Random-word pairs; responses start with a space so TRL's prompt + response string concatenation
    tokenizes to the prompt's ids followed by the response's."""
    rng = random.Random(work.seed)
    vocab = words(work.vocab_size)

    def text(low_high: tuple[int, int]) -> str:
        return " ".join(rng.choice(vocab) for _ in range(rng.randint(*low_high)))

    return [
        {
            "prompt": text(work.prompt_words),
            "chosen": " " + text(work.response_words),
            "rejected": " " + text(work.response_words),
        }
        for _ in range(work.num_pairs)
    ]


def write_data(directory: Path, work: Workload) -> Path:
    """train.jsonl (TRL's prompt/chosen/rejected format) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "train.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in make_pairs(work)))
    return path


def pair_tokens(pair: dict) -> int:
    """Non-padding tokens of a pair's chosen and rejected sequences (each response gets an EOS)."""
    prompt = len(pair["prompt"].split())
    return 2 * prompt + len(pair["chosen"].split()) + 1 + len(pair["rejected"].split()) + 1


def batch_order(num_pairs: int, seed: int) -> list[int]:
    """Pair indices in the order prefopt's trainer visits them (epoch 0); TRL gets the same order."""
    from prefopt.trainer.batching import epoch_order

    return epoch_order(num_pairs, seed, 0)


def tokens_per_step(work: Workload, pairs: list[dict]) -> list[int]:
    """Tokens trained on in each optimiser step, in the shared batch order."""
    order = batch_order(len(pairs), work.seed)
    size = work.batch_size
    return [
        sum(pair_tokens(pairs[i]) for i in order[s * size : (s + 1) * size])
        for s in range(work.steps)
    ]


def prefopt_config(
    work: Workload,
    model_dir: Path,
    data_dir: Path,
    cache_dir: Path,
    reference: str,
    loss: list[str] | None = None,
    lora: bool = False,
    compile: bool = False,
):
    """conf/ composed for the workload (no task, no generation evaluation): the model and data
    of ``model_dir`` and ``data_dir``, ``loss`` overrides (DPO at the workload's beta when None);
    ``lora`` trains a LoRA adapter (r 8, every linear layer) instead of the whole model."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    overrides = [
        *(f"{key}={value}" for key, value in RUN.items()),
        f"seed={work.seed}",
        f"cache_dir={cache_dir}",
        f"device={work.device}",
        f"model.name_or_path={model_dir}",
        f"model.lora.enabled={lora}",
        f"data.source={data_dir}",
        *(f"data.{key}={work.max_length}" for key in LIMITS),  # every sequence fits: no cut
        *(loss or ["loss=dpo", f"loss.beta={work.beta}"]),
        f"trainer.lr={work.lr}",
        f"trainer.max_steps={work.steps}",
        f"trainer.batch_size={work.batch_size}",
        f"trainer.precision={'bf16' if work.precision == 'bf16' else 'no'}",
        f"trainer.compile={compile}",
        f"trainer.reference={reference}",
        f"trainer.reference_batch_size={work.reference_batch_size}",
        f"eval.eval_every={work.steps}",  # only after the last (timed) step
        f"eval.pair_batch_size={work.reference_batch_size}",
    ]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


LIMITS = ("max_prompt_length", "max_response_length", "max_length")
RUN = {  # the overrides of conf/ that every benchmark run shares
    "name": "bench_trl",
    "task": "none",
    "model": "hf",
    "model.dtype": "float32",
    "model.lora.r": 8,
    "model.lora.alpha": 16,
    "data": "jsonl",
    "data.format": "trl",
    "data.splits.train": "train.jsonl",  # the training file doubles as validation: no rows held out
    "data.splits.validation": "train.jsonl",
    "data.max_overlap": 1.0,  # that reuse is deliberate: the benchmark measures speed only
    "data.on_bad_row": "error",
    "num_threads": "null",  # torch's default on both sides
    "trainer.epochs": 1,
    "trainer.warmup": 0,
    "trainer.schedule": "constant",
    "trainer.log_every": 1,
    "trainer.save_policy": False,
    "eval.generate": False,
    "eval.at_start": False,
}
