"""FLOPs per trained token, from the model's shapes, the same for both tools (the full account:
results/performance/README.md). Conventional (MFU): 6N per trained token and 2N per token of a
reference forward, N = every parameter but the input embedding (the LM head once where tied).
Required: (3 + reference) * forward (LoRA, frozen weights: 2 + reference), forward = 2 * (N_blocks +
H * R / T): the blocks' matrices on every token, the LM head (hidden x vocab) only on the R of a
timed step's T tokens that predict a response token; reference = 1 where a reference forward runs in
every timed step. Attention products, norms, biases, LoRA's products and the optimiser are left out.
"""

from __future__ import annotations

import torch
from workload import Workload, build_model, pair_response_tokens, tokens_per_step

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
    timed_responses = sum(tokens_per_step(work, pair_response_tokens)[1:])
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
