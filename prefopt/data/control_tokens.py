"""Control tokens of a conditioned loss (csft): in the tokenizer, their ids, the embeddings to fit.

A loss that declares ``control_tokens = (chosen_token, rejected_token)`` trains on responses that
start with their token and generates after the chosen one. The tokens are special tokens, so
``decode(..., skip_special_tokens=True)`` drops them from any text that is judged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def add_control_tokens(tokenizer, tokens: Sequence[str] | None) -> int:
    """Add the ``tokens`` the tokenizer lacks as special tokens; returns how many were added."""
    missing = [token for token in tokens or () if token not in tokenizer.get_vocab()]
    if not missing:
        return 0
    return tokenizer.add_tokens(missing, special_tokens=True)


def control_token_ids(tokenizer, tokens: Sequence[str]) -> list[int]:
    """The id of each of ``tokens``; ValueError when the tokenizer does not hold one."""
    vocab = tokenizer.get_vocab()
    absent = [token for token in tokens if token not in vocab]
    if absent:
        raise ValueError(f"the tokenizer has no control token {', '.join(absent)}")
    return [vocab[token] for token in tokens]


def fit_embeddings(model: torch.nn.Module, tokenizer) -> None:
    """Grow the model's token embeddings (and tied output layer) to cover the whole tokenizer."""
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
