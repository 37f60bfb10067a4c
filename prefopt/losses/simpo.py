"""SimPO: length-averaged log-probs as the reward, a target margin, no reference model."""

from __future__ import annotations

import torch.nn.functional as F

from prefopt.losses.base import LossOutput, PairedLogps, PreferenceLoss
from prefopt.losses.functional import mean_token_logps
from prefopt.losses.registry import register_loss
from prefopt.losses.validation import require_non_negative, require_positive


@register_loss
class SimPOLoss(PreferenceLoss):
    """SimPO: Simple Preference Optimization with a Reference-Free Reward.

    Meng et al., arXiv 2405.14734.

    Built, with avg_w = chosen_logps / chosen_lengths (likewise avg_l):

        L = -log σ(β (avg_w - avg_l) - γ)

    This is the paper's objective with an absolute margin γ, as TRL and LLaMA-Factory take it. The
    official repository and HALOs take ``gamma_beta_ratio`` = γ/β instead: multiply it by β to
    get this γ. Implicit rewards: β avg_w, β avg_l.

    Hyperparameters:
        beta: reward scale, > 0. The repository's configs use 2.0 to 2.5 (10 in its v0.2).
        gamma: target reward margin γ >= 0, absolute. The repository's γ/β ratios of 0.1 to 0.8
            give γ of roughly 0.2 to 2 at β = 2 to 2.5.
    """

    name = "simpo"
    requires_reference = False
    data_format = "paired"
    stateful = False
    min_batch_size = 1
    uses_lengths = True

    def __init__(self, *, beta: float = 2.0, gamma: float = 0.5) -> None:
        super().__init__()
        self.beta = require_positive("beta", beta)
        self.gamma = require_non_negative("gamma", gamma)

    def compute(self, inputs: PairedLogps) -> LossOutput:
        avg_chosen, avg_rejected = mean_token_logps(inputs)  # (B,), (B,)
        losses = -F.logsigmoid(self.beta * (avg_chosen - avg_rejected) - self.gamma)
        return LossOutput(losses, self.beta * avg_chosen, self.beta * avg_rejected, {})
