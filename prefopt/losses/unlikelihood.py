"""Unlikelihood: NLL of the chosen response plus unlikelihood of the rejected response's tokens."""

from __future__ import annotations

import torch
from torch import Tensor

from prefopt.losses.base import LossOutput, PairedLogps, PreferenceLoss
from prefopt.losses.functional import log1mexp, mean_token_logps
from prefopt.losses.registry import register_loss
from prefopt.losses.validation import require_in_interval

#: Largest token log-prob the unlikelihood term reads: log(1 - p) is -inf at log p = 0.
MAX_TOKEN_LOGP = -1e-6


def mean_token_unlikelihood(token_logps: Tensor, lengths: Tensor) -> Tensor:
    """(B,) mean over a response's tokens of -log(1 - p(y_j)), from (B, L) response-aligned token
    log-probs (0 past each length) and lengths (B,); log p is clamped to ``MAX_TOKEN_LOGP``."""
    positions = torch.arange(token_logps.shape[1], device=token_logps.device)  # (L,)
    inside = positions < lengths.unsqueeze(1)  # (B, L)
    per_token = -log1mexp(token_logps.clamp(max=MAX_TOKEN_LOGP))  # (B, L)
    return torch.where(inside, per_token, torch.zeros_like(per_token)).sum(-1) / lengths


@register_loss
class UnlikelihoodLoss(PreferenceLoss):
    """Neural Text Generation with Unlikelihood Training.

    Welleck et al., arXiv 1908.04319; as the "Unlikelihood" baseline of Rafailov et al., "Direct
    Preference Optimization: Your Language Model is Secretly a Reward Model", arXiv 2305.18290.

    Built, with p(y_j) = p(y_j | x, y_<j) under the policy:

        L = -(1/|y_w|) sum_j log p(y_w,j) - α (1/|y_l|) sum_j log(1 - p(y_l,j))

    The first term is Preferred-FT (``sft``); the second is Welleck et al.'s token-level
    unlikelihood with the rejected response's tokens as the negative candidates, one per position.
    Each term is its own response's mean over tokens (Welleck et al. average over all tokens of the
    batch), so the loss stays per example and a long rejected response is not pushed harder than
    a short one. ∂L/∂log p(y_l,j) = (α/|y_l|) p/(1 - p) > 0: descent lowers every rejected token,
    strongly while it is likely and hardly once it is not, and the term is bounded below by 0.
    The DPO paper describes its baseline as maximising log p(y_w | x) while minimising
    log p(y_l | x), with an optional α in [0, 1] on the unlikelihood term, and puts its meaningless
    summaries down to unconstrained likelihood minimisation; prefopt minimises Welleck et al.'s
    bounded -log(1 - p) per token instead of log p(y_l | x) itself. log(1 - p) is computed with a
    stable log1mexp and log p clamped to at most -1e-6 (``MAX_TOKEN_LOGP``), so a rejected token
    of probability above 1 - 1e-6 adds -log(1 - e^-1e-6) ≈ 13.8 and no gradient. No reference
    model and no TRL equivalent. "Rewards" are avg_w and avg_l (mean token log-probs, unscaled),
    as ``sft``'s. Metrics: ``nll`` (mean -avg_w) and ``unlikelihood`` (mean of the rejected
    term before α).

    Hyperparameters:
        alpha: α in [0, 1], the weight of the unlikelihood term, as the DPO paper's optional
            coefficient; 0 is Preferred-FT, 1 (the default) weighs both terms equally.
    """

    name = "unlikelihood"
    requires_reference = False
    data_format = "paired"
    stateful = False
    min_batch_size = 1
    uses_lengths = True
    token_inputs = frozenset({"logps"})

    def __init__(self, *, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = require_in_interval("alpha", alpha, 0.0, 1.0, "[0, 1]")

    def compute(self, inputs: PairedLogps) -> LossOutput:
        avg_chosen, avg_rejected = mean_token_logps(inputs)  # (B,), (B,)
        unlikelihood = mean_token_unlikelihood(
            inputs.tokens.rejected_logps, inputs.rejected_lengths
        )  # (B,)
        losses = -avg_chosen + self.alpha * unlikelihood  # (B,)
        metrics = {"nll": (-avg_chosen).mean(), "unlikelihood": unlikelihood.mean()}
        return LossOutput(losses, avg_chosen, avg_rejected, metrics)
