"""Masked reductions over right-padded responses.

A response mask (B, T) is True on the tokens of each response and False on the padding after it:
row b is ``[True] * length_b + [False] * (T - length_b)`` with ``length_b >= 1``. Every function of
:mod:`prefopt.rl` takes its masks in this form and checks it with :func:`response_lengths`.
"""

from __future__ import annotations

import torch


def response_lengths(mask: torch.Tensor) -> torch.Tensor:
    """Number of response tokens per row of a right-padded response mask (B, T) -> (B,) long.

    Raises ValueError if the mask is not 2-D, a row is empty, or a True follows a False.
    """
    if mask.dim() != 2:
        raise ValueError(f"a response mask is (B, T); got shape {tuple(mask.shape)}")
    mask = mask.bool()  # (B, T)
    lengths = mask.sum(-1)  # (B,)
    if bool((lengths == 0).any()):
        raise ValueError("every response needs at least one token; a row of the mask is all False")
    prefix = torch.arange(mask.shape[1], device=mask.device) < lengths.unsqueeze(1)  # (B, T)
    if not torch.equal(prefix, mask):
        raise ValueError("the response mask must be right-padded: True on a prefix of each row")
    return lengths


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over the True entries of ``mask`` (same shape) -> () scalar."""
    mask = mask.bool()
    return torch.where(mask, values, 0.0).sum() / mask.sum()


def masked_var(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Unbiased variance (n - 1 in the denominator) over the True entries of ``mask`` -> ().

    Raises ValueError with fewer than two entries, where it is undefined.
    """
    count = int(mask.sum())
    if count < 2:
        raise ValueError(f"a variance needs at least two masked entries; got {count}")
    centred = torch.where(
        mask.bool(), values - masked_mean(values, mask), 0.0
    )  # 0 outside the mask
    return (centred**2).sum() / (count - 1)
