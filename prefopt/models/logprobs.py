"""Per-sequence log-probabilities of responses given prompts.

A causal LM's logits at position t predict token t+1, so the log-prob of response token y_t is
read from ``logits[:, t-1]``. With ``input_ids = prompt ++ response ++ pad`` (right padding) and
``response_mask`` marking the response tokens, the sequence score is

    logp(y | x) = sum_t response_mask[t] * log softmax(logits[t-1])[input_ids[t]]

computed in fp32 whatever the model's dtype.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def build_batch(
    prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]], pad_id: int
) -> dict[str, torch.Tensor]:
    """Join each prompt with its response and right-pad to the longest sequence.

    Returns ``input_ids`` (N, T) long, ``attention_mask`` (N, T) long and ``response_mask`` (N, T)
    bool, True on response tokens.
    """
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    if not prompts:
        raise ValueError("build_batch needs at least one sequence")
    lengths = [len(p) + len(r) for p, r in zip(prompts, responses, strict=True)]
    width = max(lengths)
    input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)  # (N, T)
    attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)  # (N, T)
    response_mask = torch.zeros((len(prompts), width), dtype=torch.bool)  # (N, T)
    for i, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
        if len(response) == 0:
            raise ValueError(f"sequence {i} has an empty response")
        n_prompt, n_total = len(prompt), lengths[i]
        input_ids[i, :n_total] = torch.tensor(list(prompt) + list(response), dtype=torch.long)
        attention_mask[i, :n_total] = 1
        response_mask[i, n_prompt:n_total] = True
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "response_mask": response_mask,
    }


def token_logps(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """Log-prob of each next token: ``out[:, t] = log p(input_ids[:, t+1] | input_ids[:, :t+1])``.

    logits (N, T, V), input_ids (N, T) -> (N, T-1) fp32.
    """
    shifted_logits = logits[:, :-1].float()  # (N, T-1, V)
    labels = input_ids[:, 1:].unsqueeze(-1)  # (N, T-1, 1)
    picked = torch.gather(shifted_logits, -1, labels).squeeze(-1)  # (N, T-1)
    return picked - torch.logsumexp(shifted_logits, dim=-1)  # (N, T-1)


def sequence_logps(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    response_mask: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of response-token log-probs and the number of response tokens per sequence.

    input_ids, attention_mask, response_mask: (N, T). Returns (logps (N,) fp32, lengths (N,) long).
    """
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits  # (N, T, V)
    per_token = token_logps(logits, input_ids)  # (N, T-1)
    mask = response_mask[:, 1:]  # (N, T-1): token t+1 is a response token
    logps = (per_token * mask).sum(-1)  # (N,)
    return logps, mask.sum(-1)
