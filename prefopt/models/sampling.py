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
differently, which rarely changes a draw (one response of 300 in one comparison). Caches that
cannot drop rows (static, quantised, linear-attention, legacy tuples) keep finished rows in the
forward, fed the pad token, as ``generate`` does. Only the settings given here shape the draws: a
checkpoint's generation_config (repetition penalty and the like) is not applied, so samples at
temperature 1 are the model's own distribution.
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
    banned_ids: Sequence[int] = (),
) -> Samples:
    """Sample one response per prompt; the same seed gives the same samples. ``banned_ids`` are
    never drawn (a conditioned policy's control tokens, which pi_ref's vocabulary lacks)."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0 (0 = off), got {top_k}")
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
    warp = _LogitsWarp(temperature, top_k, top_p, banned_ids)
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
    """softmax(logits / temperature) restricted to the top-k tokens and the top-p nucleus, the
    ``banned`` token ids left out first."""

    def __init__(self, temperature: float, top_k: int, top_p: float, banned: Sequence[int] = ()):
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        self.banned = list(banned)

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        """(b, V) fp32 logits -> (b, V) sampling probabilities."""
        if self.banned:
            logits = logits.index_fill(
                -1, torch.tensor(self.banned, device=logits.device), -torch.inf
            )
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


@dataclass
class _ForwardArgs:
    """Keyword names of a causal LM's forward that vary across models and transformers versions
    (read from the forward of the transformers model inside peft and adapter-off wrappers)."""

    cache: str  # the KV cache: ``cache`` from transformers 5 on, ``past_key_values`` before
    positions: bool  # whether the forward takes position_ids (generate passes them only then)
    last_logits_only: dict  # ask for the last position's logits only, where supported

    @classmethod
    def of(cls, model) -> _ForwardArgs:
        inner = getattr(model, "peft_model", model)  # AdapterDisabledModel holds the peft model
        base = inner.get_base_model() if hasattr(inner, "get_base_model") else inner
        params = inspect.signature(base.forward).parameters
        keep = next((n for n in ("logits_to_keep", "num_logits_to_keep") if n in params), None)
        return cls(
            cache="cache" if "cache" in params else "past_key_values",
            positions="position_ids" in params,
            last_logits_only={keep: 1} if keep else {},
        )

    def position_kwargs(self, positions: torch.Tensor) -> dict:
        return {"position_ids": positions} if self.positions else {}

    def cache_of(self, out):
        cache = out.get(self.cache)
        if cache is None:
            raise TypeError(f"the model's forward returned no KV cache ({self.cache!r})")
        return cache


def _can_drop_rows(cache) -> bool:
    """Whether finished rows can leave ``cache``: a dynamic cache of keys and values only (no
    static, quantised or linear-attention state, whose extra tensors would keep every row)."""
    if not hasattr(cache, "batch_select_indices"):
        return False  # a legacy tuple of tensors
    layers = getattr(cache, "layers", None)
    if layers is None:  # transformers 4: one list of keys and values per layer
        return type(cache).__name__ == "DynamicCache"
    return all(
        type(layer).__name__ in ("DynamicLayer", "DynamicSlidingWindowLayer") for layer in layers
    )


def _decode(model, chunk, max_new_tokens, warp, eos_id, pad_id, device):
    """Sample one batch of left-padded prompts; returns (b, T) tokens and (b,) response lengths.

    Rows that emitted EOS leave the forward where the cache allows it; elsewhere they stay and are
    fed the pad token, as in ``generate``. Either way every row gets a draw at every step.
    """
    b, width = len(chunk), max(len(p) for p in chunk)
    input_ids = torch.full((b, width), pad_id, dtype=torch.long)  # (b, P)
    attention_mask = torch.zeros((b, width), dtype=torch.long)  # (b, P)
    for i, prompt in enumerate(chunk):
        input_ids[i, width - len(prompt) :] = torch.tensor(list(prompt), dtype=torch.long)
        attention_mask[i, width - len(prompt) :] = 1
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    positions = (attention_mask.cumsum(-1) - 1).masked_fill(attention_mask == 0, 1)  # (b, P)
    args = _ForwardArgs.of(model)
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        use_cache=True,
        **args.position_kwargs(positions),
        **args.last_logits_only,
    )
    cache = args.cache_of(out)
    drop_rows = _can_drop_rows(cache)
    logits = out.logits[:, -1].float()  # (r, V): r rows in the forward, b at first
    on = logits.device  # bookkeeping lives with the logits
    tokens = torch.full((b, max_new_tokens), pad_id, dtype=torch.long, device=on)  # (b, T)
    lengths = torch.full((b,), max_new_tokens, dtype=torch.long, device=on)  # (b,)
    done = torch.zeros(b, dtype=torch.bool, device=on)  # (b,) emitted EOS
    rows = torch.arange(b, device=on)  # (r,) batch row of each row in the forward
    probs = torch.ones((b, logits.shape[-1]), device=on)  # (b, V) rows out of the forward: any
    last_position = positions[:, -1:]  # (r, 1)
    for t in range(max_new_tokens):
        probs[rows] = warp.probs(logits)
        drawn = torch.multinomial(probs, 1)[rows, 0]  # (r,): one draw per batch row, as generate
        running = ~done[rows]  # (r,)
        tokens[rows[running], t] = drawn[running]
        ended = running & (drawn == eos_id)  # (r,)
        lengths[rows[ended]] = t + 1
        done[rows[ended]] = True
        if bool(done.all()) or t + 1 == max_new_tokens:
            break
        feed = drawn.masked_fill(done[rows], pad_id)  # (r,) finished rows kept in: the pad token
        if drop_rows and bool(ended.any()):
            keep = (~done[rows]).nonzero()[:, 0]  # (r',)
            cache.batch_select_indices(keep.to(device))
            rows, feed = rows[keep], feed[keep]
            attention_mask, last_position = attention_mask[keep.to(device)], last_position[keep]
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones((len(rows), 1))], 1)
        last_position = last_position + 1
        out = model(
            input_ids=feed[:, None].to(device),
            attention_mask=attention_mask,
            use_cache=True,
            **args.position_kwargs(last_position),
            **{args.cache: cache},
        )
        cache = args.cache_of(out)
        logits = out.logits[:, -1].float()
    return tokens.cpu(), lengths.cpu()


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
    EOS: what :func:`sample_responses` is checked and timed against. ``generate`` also applies a
    checkpoint's generation_config (a repetition penalty, say), which sample_responses ignores."""
    eos_id, pad_id = tokenizer.eos_token_id, tokenizer.pad_token_id
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for start in range(0, len(prompt_ids), batch_size):
            chunk = [list(p) for p in prompt_ids[start : start + batch_size]]
            width = max(len(p) for p in chunk)
            ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in chunk])  # (b, P)
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk])  # (b, P)
            rows = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                do_sample=True,
                max_new_tokens=max_new_tokens,
                eos_token_id=eos_id,
                pad_token_id=pad_id,
                temperature=temperature,
                top_k=top_k or None,
                top_p=top_p,
            )[:, width:].tolist()
            out += [row[: row.index(eos_id) + 1] if eos_id in row else row for row in rows]
    model.train(was_training)
    return out
