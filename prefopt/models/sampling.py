"""Seeded, batched sampling of responses from a causal LM.

Prompts are left-padded so that every row continues from its last prompt token. Sampling draws
from softmax(logits / temperature), optionally restricted by top-k / top-p; only samples drawn at
temperature 1 with no top-k/top-p are samples of the model itself (the condition for an unbiased
KL estimate).

The decoding loop is a plain KV-cache loop rather than ``model.generate``: rows that have emitted
EOS leave the batch (their cache rows are dropped), so a batch costs as many forwards as its
longest response but each only over the rows still running. The random draws are those of
``generate`` with the same seed (one ``torch.multinomial`` over the whole batch per step), so the
same seed gives ``generate``'s samples up to rounding: a forward over fewer rows may round logits
differently, which rarely changes a draw (one response of 300 in one comparison).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import torch

SAMPLER_VERSION = 2  # bump when a change would draw other tokens for the same seed (cache keys)


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
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if not prompt_ids:
        raise ValueError("sample_responses needs at least one prompt")
    eos_id, pad_id = tokenizer.eos_token_id, tokenizer.pad_token_id
    if eos_id is None or pad_id is None:
        raise ValueError("the tokenizer needs both an eos_token and a pad_token to sample")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    warp = _LogitsWarp(temperature, top_k, top_p)
    response_ids: list[list[int]] = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for start in range(0, len(prompt_ids), batch_size):
            chunk = prompt_ids[start : start + batch_size]
            tokens, lengths = _decode(model, chunk, max_new_tokens, warp, eos_id, pad_id, device)
            response_ids += [
                row[:n] for row, n in zip(tokens.tolist(), lengths.tolist(), strict=True)
            ]
    model.train(was_training)
    texts = tokenizer.batch_decode(response_ids, skip_special_tokens=True)
    finished = [bool(r) and r[-1] == eos_id for r in response_ids]
    return Samples(response_ids=response_ids, texts=texts, finished=finished)


class _LogitsWarp:
    """softmax(logits / temperature) restricted to the top-k tokens and the top-p nucleus."""

    def __init__(self, temperature: float, top_k: int, top_p: float):
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        """(b, V) fp32 logits -> (b, V) sampling probabilities."""
        if self.temperature != 1.0:
            logits = logits / self.temperature
        if self.top_k > 0:
            kth = torch.topk(logits, min(self.top_k, logits.shape[-1])).values[:, -1:]  # (b, 1)
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p < 1.0:
            ascending, order = torch.sort(logits, dim=-1)  # (b, V)
            mass_below = ascending.softmax(dim=-1).cumsum(dim=-1)  # (b, V)
            drop = mass_below <= 1.0 - self.top_p  # the least likely tokens outside the nucleus
            drop[:, -1] = False  # the most likely token always stays
            logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
        return logits.softmax(dim=-1)


def _decode(model, chunk, max_new_tokens, warp, eos_id, pad_id, device):
    """Sample one batch of left-padded prompts; returns (b, T) tokens and (b,) response lengths."""
    b, width = len(chunk), max(len(p) for p in chunk)
    input_ids = torch.full((b, width), pad_id, dtype=torch.long)  # (b, P)
    attention_mask = torch.zeros((b, width), dtype=torch.long)  # (b, P)
    for i, prompt in enumerate(chunk):
        input_ids[i, width - len(prompt) :] = torch.tensor(list(prompt), dtype=torch.long)
        attention_mask[i, width - len(prompt) :] = 1
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    positions = (attention_mask.cumsum(-1) - 1).masked_fill(attention_mask == 0, 1)  # (b, P)
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=positions,
        use_cache=True,
        **_last_logits_only(model),
    )
    cache_name = _cache_name(out)
    cache = out.get(cache_name)
    if not hasattr(cache, "batch_select_indices"):
        raise TypeError(
            f"{type(model).__name__} returned a {type(cache).__name__} KV cache, which cannot drop "
            "finished rows; sampling needs a transformers Cache (transformers >= 4.50)"
        )
    tokens = torch.full((b, max_new_tokens), pad_id, dtype=torch.long, device=device)  # (b, T)
    lengths = torch.full((b,), max_new_tokens, dtype=torch.long, device=device)  # (b,)
    running = torch.arange(b, device=device)  # batch row of each row still in the cache
    last_position = positions[:, -1:]  # (r, 1)
    probs = None  # (b, V): every row gets a draw each step, as generate's single multinomial does
    for t in range(max_new_tokens):
        step_probs = warp.probs(out.logits[:, -1].float())  # (r, V)
        if probs is None:
            probs = torch.ones((b, step_probs.shape[-1]), device=device)  # finished rows: any
        probs[running] = step_probs
        drawn = torch.multinomial(probs, 1)[running, 0]  # (r,)
        tokens[running, t] = drawn
        ended = drawn == eos_id  # (r,)
        lengths[running[ended]] = t + 1
        if bool(ended.all()) or t + 1 == max_new_tokens:
            break
        if bool(ended.any()):
            keep = (~ended).nonzero()[:, 0]  # (r',)
            cache.batch_select_indices(keep)
            running, drawn = running[keep], drawn[keep]
            attention_mask, last_position = attention_mask[keep], last_position[keep]
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones((len(running), 1))], 1)
        last_position = last_position + 1
        out = model(
            input_ids=drawn[:, None],
            attention_mask=attention_mask,
            position_ids=last_position,
            use_cache=True,
            **{cache_name: cache},
        )
        cache = out.get(cache_name)
    return tokens.cpu(), lengths.cpu()


def _last_logits_only(model) -> dict:
    """Forward kwargs that ask for the last position's logits only, where the model supports it
    (``logits_to_keep``, earlier ``num_logits_to_keep``); wrappers (peft) are looked through."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(base.forward).parameters
    for name in ("logits_to_keep", "num_logits_to_keep"):
        if name in params:
            return {name: 1}
    return {}


def _cache_name(out) -> str:
    """The KV cache's name in a forward's output and arguments: ``cache`` from transformers 5 on,
    ``past_key_values`` before."""
    return "cache" if "cache" in out else "past_key_values"


@torch.no_grad()
def sample_with_generate(
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
) -> list[list[int]]:
    """The same batches and seed through ``model.generate``, each response cut after its first
    EOS: what :func:`sample_responses` is checked and timed against."""
    eos_id, pad_id = tokenizer.eos_token_id, tokenizer.pad_token_id
    torch.manual_seed(seed)
    out = []
    for start in range(0, len(prompt_ids), batch_size):
        chunk = [list(p) for p in prompt_ids[start : start + batch_size]]
        width = max(len(p) for p in chunk)
        ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in chunk])  # (b, P)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk])  # (b, P)
        rows = model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=True,
            max_new_tokens=max_new_tokens,
            eos_token_id=eos_id,
            pad_token_id=pad_id,
            temperature=temperature,
            top_k=top_k or None,
            top_p=top_p,
        )[:, width:].tolist()
        out += [row[: row.index(eos_id) + 1] if eos_id in row else row for row in rows]
    return out
