"""Seeded, batched sampling of responses from a causal LM.

Prompts are left-padded so that every row continues from its last prompt token. Sampling draws
from softmax(logits / temperature), optionally restricted by top-k / top-p; only samples drawn at
temperature 1 with no top-k/top-p are samples of the model itself (the condition for an unbiased
KL estimate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class Samples:
    """Sampled responses, in prompt order (one per prompt)."""

    response_ids: list[list[int]]  # token ids of each response, EOS included when it was emitted
    texts: list[str]  # decoded responses, special tokens removed
    finished: list[bool]  # True where the response ended with EOS within max_new_tokens


@torch.no_grad()
def sample_responses(
    model: torch.nn.Module,
    tokenizer,
    prompt_ids: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    seed: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    batch_size: int = 64,
) -> Samples:
    """Sample one response per prompt; the same seed gives the same samples."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not prompt_ids:
        raise ValueError("sample_responses needs at least one prompt")
    eos_id, pad_id = tokenizer.eos_token_id, tokenizer.pad_token_id
    if eos_id is None or pad_id is None:
        raise ValueError("the tokenizer needs both an eos_token and a pad_token to sample")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    response_ids: list[list[int]] = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for start in range(0, len(prompt_ids), batch_size):
            chunk = prompt_ids[start : start + batch_size]
            width = max(len(p) for p in chunk)
            input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)  # (b, P)
            attention_mask = torch.zeros((len(chunk), width), dtype=torch.long)  # (b, P)
            for i, prompt in enumerate(chunk):
                input_ids[i, width - len(prompt) :] = torch.tensor(list(prompt), dtype=torch.long)
                attention_mask[i, width - len(prompt) :] = 1
            generated = model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention_mask.to(device),
                do_sample=True,
                temperature=temperature,
                top_k=top_k if top_k > 0 else None,
                top_p=top_p,
                max_new_tokens=max_new_tokens,
                eos_token_id=eos_id,
                pad_token_id=pad_id,
            )[:, width:].cpu()  # (b, <= max_new_tokens)
            for row in generated.tolist():
                response_ids.append(_cut_after_eos(row, eos_id))
    model.train(was_training)
    texts = tokenizer.batch_decode(response_ids, skip_special_tokens=True)
    finished = [bool(r) and r[-1] == eos_id for r in response_ids]
    return Samples(response_ids=response_ids, texts=texts, finished=finished)


def _cut_after_eos(tokens: list[int], eos_id: int) -> list[int]:
    """Keep tokens up to and including the first EOS (generate pads finished rows after it)."""
    return tokens[: tokens.index(eos_id) + 1] if eos_id in tokens else tokens
