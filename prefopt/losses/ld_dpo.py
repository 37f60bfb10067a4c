"""LD-DPO: DPO on length-desensitised sequence log-probs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from prefopt.losses.base import LossOutput, PairedLogps, PreferenceLoss
from prefopt.losses.registry import register_loss
from prefopt.losses.validation import require_in_interval, require_positive


def desensitised_logps(tokens: Tensor, shared_lengths: Tensor, alpha: float) -> Tensor:
    """(B,) sums of (B, L) response-aligned token log-probs, tokens past ``shared_lengths`` (B,)
    weighted by ``alpha``: sum_{j < l_p} x_j + alpha sum_{j >= l_p} x_j."""
    positions = torch.arange(tokens.shape[1], device=tokens.device)  # (L,)
    shared = positions < shared_lengths.unsqueeze(1)  # (B, L)
    return (tokens * shared).sum(-1) + alpha * (tokens * ~shared).sum(-1)


@register_loss
class LDDPOLoss(PreferenceLoss):
    """Length Desensitization in Direct Preference Optimization.

    Liu et al., arXiv 2409.06411.

    Built, with l_p = min(|y_w|, |y_l|) the length both responses of a pair reach and, for the
    policy and the reference alike,

        log p̂(y|x) = sum_{j <= l_p} log p(y_j | x, y_<j) + α sum_{j > l_p} log p(y_j | x, y_<j),

    the DPO loss on these log-probs: L = -log σ(β Δ̂), Δ̂ = (log p̂_θ(y_w) - log p̂_ref(y_w))
    - (log p̂_θ(y_l) - log p̂_ref(y_l)). The tokens one response has beyond the other's length
    (the "verbosity" part of the pair) count α times; α = 1 is DPO. Rewards: β (log p̂_θ - log
    p̂_ref) of each response. As TRL 1.16's ``ld_alpha`` (policy and reference both discounted);
    TRL combines it with any of its loss types, prefopt with the DPO loss the paper uses. The
    reference's per-token log-probs are read live or from the reference cache's per-token table.

    Hyperparameters:
        beta: inverse strength of the KL penalty to the reference, > 0, as in DPO.
        ld_alpha: α in [0, 1], the weight of the tokens past the shared length; the paper tunes
            it per model (a smaller α for a model whose DPO responses grow more).
    """

    name = "ld_dpo"
    requires_reference = True
    data_format = "paired"
    stateful = False
    min_batch_size = 1
    uses_lengths = True
    token_inputs = frozenset({"logps", "ref_logps"})

    def __init__(self, *, beta: float = 0.1, ld_alpha: float = 0.5) -> None:
        super().__init__()
        self.beta = require_positive("beta", beta)
        self.ld_alpha = require_in_interval("ld_alpha", ld_alpha, 0.0, 1.0, "[0, 1]")

    def compute(self, inputs: PairedLogps) -> LossOutput:
        tokens = inputs.tokens
        shared = torch.minimum(inputs.chosen_lengths, inputs.rejected_lengths)  # (B,)
        alpha = self.ld_alpha
        chosen = desensitised_logps(tokens.chosen_logps, shared, alpha) - desensitised_logps(
            tokens.ref_chosen_logps, shared, alpha
        )  # (B,)
        rejected = desensitised_logps(tokens.rejected_logps, shared, alpha) - desensitised_logps(
            tokens.ref_rejected_logps, shared, alpha
        )  # (B,)
        losses = -F.logsigmoid(self.beta * (chosen - rejected))  # (B,)
        return LossOutput(losses, self.beta * chosen, self.beta * rejected, {})
