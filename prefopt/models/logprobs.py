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


def _fsdp_wrapped(model: torch.nn.Module) -> bool:
    """FSDP (1 or 2) gathers sharded weights in the wrapped model's own forward, which must run."""
    from torch.distributed import fsdp

    kinds = tuple(
        kind
        for kind in (
            getattr(fsdp, "FullyShardedDataParallel", None),
            getattr(fsdp, "FSDPModule", None),
        )
        if kind is not None
    )
    return bool(kinds) and isinstance(model, kinds)


def _split_head(model: torch.nn.Module):
    """(backbone, lm_head) when logits are a plain linear map of the backbone's last hidden state.

    Models that scale or soft-cap logits, wrappers such as DDP and FSDP (whose forward must run for
    gradient sync or weight gathering), the adapter-off reference (whose forward disables the
    adapter) and models without a known backbone return None: they take the full-logits path.
    """
    if isinstance(model, torch.nn.parallel.DistributedDataParallel) or _fsdp_wrapped(model):
        return None
    if hasattr(model, "get_base_model"):  # peft: LoRA layers live inside the wrapped model
        model = model.get_base_model()
    config = getattr(model, "config", None)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    backbone = getattr(model, getattr(model, "base_model_prefix", ""), None)
    scaled = any(
        getattr(config, key, None) not in (None, 1.0)
        for key in ("final_logit_softcapping", "logit_scale", "output_multiplier_scale")
    )
    if not isinstance(head, torch.nn.Linear) or backbone is None or backbone is model or scaled:
        return None
    return backbone, head


def compile_backbone(model: torch.nn.Module) -> bool:
    """torch.compile (dynamic shapes) the transformer body that :func:`sequence_logps` runs.

    The compiled callable is kept on the body outside its submodules, so the model's parameters,
    state_dict and own forward (used for sampling) stay as they are. Returns False where
    sequence_logps takes the full-logits path (nothing is compiled then).
    """
    split = _split_head(model)
    if split is None:
        return False
    backbone, _ = split
    object.__setattr__(backbone, "_prefopt_compiled", torch.compile(backbone, dynamic=True))
    return True


def sequence_logps(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    response_mask: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of response-token log-probs and the number of response tokens per sequence.

    input_ids, attention_mask, response_mask: (N, T). Returns (logps (N,) fp32, lengths (N,) long).
    Where the model allows it, only the K positions that predict a response token go through the
    LM head and the log-softmax (prompt and padding positions are skipped); the result is the same.
    """
    mask = response_mask[:, 1:]  # (N, T-1): token t+1 is a response token
    split = _split_head(model)
    if split is None:
        logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
        per_token = token_logps(logits, input_ids)  # (N, T-1)
        return (per_token * mask).sum(-1), mask.sum(-1)
    rows, cols = mask.nonzero(as_tuple=True)  # (K,), (K,)
    logits = _head_logits(split, input_ids, attention_mask, rows, cols)  # (K, V)
    targets = input_ids[rows, cols + 1]  # (K,)
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, -1)
    logps = torch.zeros(input_ids.shape[0], dtype=picked.dtype, device=picked.device)
    return logps.index_add(0, rows, picked), mask.sum(-1)  # (N,)


def _head_logits(split, input_ids, attention_mask, rows, cols) -> torch.Tensor:
    """(K, V) fp32 logits at positions (rows, cols) through the (backbone, lm_head) ``split``."""
    backbone, head = split
    body = backbone.__dict__.get("_prefopt_compiled", backbone)  # compile_backbone's, if any
    hidden = body(
        input_ids=input_ids, attention_mask=attention_mask, use_cache=False
    ).last_hidden_state  # (N, T, H)
    return head(hidden[rows, cols]).float()  # (K, V): position t predicts token t+1


def response_positions(
    response_mask: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Where each response token is predicted, for quantities aligned on the response's first token.

    response_mask (N, T) bool. Returns ``rows`` (K,) and ``cols`` (K,), the K positions whose output
    predicts a response token (column ``cols + 1`` is that token), ``positions`` (K,) the token's
    index within its response, and ``width`` L, the longest response: a (K,) quantity goes to (N, L)
    by ``zeros((N, L)).index_put((rows, positions), quantity)``.
    """
    mask = response_mask[:, 1:]  # (N, T-1): token t+1 is a response token
    rows, cols = mask.nonzero(as_tuple=True)  # (K,), (K,)
    positions = mask.long().cumsum(-1)[rows, cols] - 1  # (K,): index within the response
    width = int(mask.sum(-1).max()) if mask.shape[0] else 0
    return rows, cols, positions, width


def response_token_logps(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    response_mask: torch.Tensor,
    with_log_sum_sq_probs: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Per-token log-probs of each response, aligned on the response's first token.

    input_ids, attention_mask, response_mask: (N, T). Returns ``token_logps`` (N, L) fp32, where
    column j is the log-prob of the j-th response token and L the longest response (0 past a
    response's end), ``lengths`` (N,) long, and with ``with_log_sum_sq_probs`` the log of the sum of
    squared next-token probabilities over the vocabulary, log sum_v p(v)^2, at the same positions
    (N, L) fp32 without gradient (WPO's weights), else None. Row sums of ``token_logps`` are
    :func:`sequence_logps`'s log-probs.
    """
    rows, cols, positions, width = response_positions(response_mask)
    split = _split_head(model)
    if split is None:
        logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
        logits = logits[rows, cols].float()  # (K, V)
    else:
        logits = _head_logits(split, input_ids, attention_mask, rows, cols)  # (K, V)
    log_probs = logits - torch.logsumexp(logits, -1, keepdim=True)  # (K, V)
    picked = log_probs.gather(-1, input_ids[rows, cols + 1].unsqueeze(-1)).squeeze(-1)  # (K,)
    lengths = response_mask[:, 1:].sum(-1)  # (N,)
    token_logps = picked.new_zeros((input_ids.shape[0], width)).index_put((rows, positions), picked)
    log_sum_sq = None
    if with_log_sum_sq_probs:
        with torch.no_grad():
            values = torch.logsumexp(2.0 * log_probs, -1)  # (K,)
            log_sum_sq = values.new_zeros(token_logps.shape).index_put((rows, positions), values)
    return token_logps, lengths, log_sum_sq
