"""Small tensor helpers shared by several losses (inputs already validated and at least fp32)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from prefopt.losses.base import PairedLogps

#: Largest mean token log-prob ORPO's odds accept: log(1 - exp(a)) is -inf at a = 0.
MAX_MEAN_LOGP = -1e-6


def logratios(inputs: PairedLogps) -> tuple[Tensor, Tensor]:
    """(Δ_w, Δ_l): policy minus reference sequence log-probs of chosen and rejected, each (B,)."""
    chosen = inputs.chosen_logps - inputs.ref_chosen_logps  # (B,)
    rejected = inputs.rejected_logps - inputs.ref_rejected_logps  # (B,)
    return chosen, rejected


def mean_token_logps(inputs: PairedLogps) -> tuple[Tensor, Tensor]:
    """(avg_w, avg_l): sequence log-probs divided by response lengths, each (B,)."""
    return (
        inputs.chosen_logps / inputs.chosen_lengths,
        inputs.rejected_logps / inputs.rejected_lengths,
    )


def log1mexp(x: Tensor) -> Tensor:
    """log(1 - exp(x)) for x < 0, accurate near 0 and for large |x| (Mächler's two branches)."""
    near_zero = x > -math.log(2.0)
    return torch.where(near_zero, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def log_odds(mean_logps: Tensor) -> Tensor:
    """log(p / (1 - p)) with log p = ``mean_logps`` clamped to ``MAX_MEAN_LOGP`` (finite odds)."""
    a = mean_logps.clamp(max=MAX_MEAN_LOGP)
    return a - log1mexp(a)
