"""FLOPs per trained token of the benchmark's job, counted from the model's shapes, the same way
for both tools (what a tool computes beyond the job earns it nothing).

Conventional (model FLOPs utilisation, MFU): 6N per trained token, 2N per token of a reference
forward; N = every parameter but the input embedding (a lookup), the LM head included (counted once
where it is tied to the input embedding, GPT-2), on every token.

Required (what the job needs): a forward costs 2 FLOPs per weight per token it multiplies. The
blocks' weight matrices (attention projections, MLP; N_blocks entries) multiply every token; the LM
head (hidden x vocab = H entries) only the positions whose log-prob a loss reads, those predicting a
response token (R of a timed step's T tokens: chosen + EOS and rejected + EOS of each pair). So per
trained token, on average over the timed steps 2..S,

    forward  = 2 * (N_blocks + H * R / T)
    required = (3 + reference) * forward   (policy forward, backward to activations and to weights)
    LoRA:      (2 + reference) * forward   (frozen weights: the backward to activations only)

with reference = 1 where a reference forward runs in every timed step, 0 where cached reference
log-probs were computed before them. Left out of both counts: attention's score and value products
(4 x layers x context x hidden per token and forward, a few per cent on the CPU preset), biases,
norms, position embeddings, LoRA's low-rank products and the optimiser; the fractions of a
matrix-product rate they give are lower bounds.
"""

from __future__ import annotations

import torch
from workload import Workload, build_model, response_tokens_per_step, tokens_per_step

from prefopt.tasks.wordlevel import build_word_tokenizer


def flops_per_token(work: Workload) -> dict:
    """The model's counts: ``parameters``, ``n`` (N), ``n_blocks``, ``head`` (H), ``hidden``,
    ``widest`` (the largest output width of a matrix product: MLP width or vocabulary), the timed
    steps' ``response_share`` (R / T), and the conventional ``policy`` (6N) and ``reference`` (2N)."""
    with torch.device("meta"):
        model = build_model(work, build_word_tokenizer(work.words()))
    total = sum(p.numel() for p in model.parameters())  # a tied matrix once
    embedding, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    n = total if embedding is head else total - embedding.numel()
    lookups = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    blocks = [
        p for p in model.parameters() if p.dim() == 2 and id(p) not in lookups and p is not head
    ]
    timed_tokens = sum(tokens_per_step(work)[1:])  # steps 2..S
    timed_responses = sum(response_tokens_per_step(work)[1:])
    return {
        "parameters": total,
        "n": n,
        "n_blocks": sum(p.numel() for p in blocks),
        "head": head.numel(),
        "hidden": head.shape[1],
        "widest": max(head.shape[0], *(max(p.shape) for p in blocks)),
        "response_share": timed_responses / timed_tokens,
        "policy": 6 * n,
        "reference": 2 * n,
    }


def required_per_token(flops: dict, reference: bool, lora: bool) -> float:
    """Required FLOPs per trained token (the module's formula) from ``flops_per_token``'s counts."""
    forward = 2 * (flops["n_blocks"] + flops["head"] * flops["response_share"])
    return ((2 if lora else 3) + reference) * forward
