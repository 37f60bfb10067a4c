"""SimPO and AlphaPO: a reward from length-averaged log-probs, a target margin, no reference model."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from prefopt.losses.base import LossOutput, PairedLogps, PreferenceLoss
from prefopt.losses.functional import mean_token_logps
from prefopt.losses.registry import register_loss
from prefopt.losses.validation import require_finite, require_non_negative, require_positive


@register_loss
class SimPOLoss(PreferenceLoss):
    """SimPO: Simple Preference Optimization with a Reference-Free Reward.

    Meng et al., arXiv 2405.14734.

    Built, with avg_w = chosen_logps / chosen_lengths (likewise avg_l) and AlphaPO's reward
    shape r_α(a) = (1 - exp(-α a)) / α (r_0(a) = a):

        L = -log σ(β (r_α(avg_w) - r_α(avg_l)) - γ)

    At α = 0 this is the paper's objective with an absolute margin γ, as TRL and LLaMA-Factory
    take it. The official repository and HALOs take ``gamma_beta_ratio`` = γ/β instead: multiply
    it by β to get this γ. α ≠ 0 is AlphaPO (Gupta et al., arXiv 2501.03884, "AlphaPO: Reward
    Shape Matters for LLM Alignment"): r_α is the paper's (1 - p^-α) / α with p = exp(avg) the
    per-token geometric-mean probability, as TRL's ``CPOTrainer`` builds ``loss_type="alphapo"``
    (SimPO with ``alpha`` and no NLL term). Implicit rewards: β r_α(avg_w), β r_α(avg_l).

    Hyperparameters:
        beta: reward scale, > 0. The repository's configs use 2.0 to 2.5 (10 in its v0.2).
        gamma: target reward margin γ >= 0, absolute. The repository's γ/β ratios of 0.1 to 0.8
            give γ of roughly 0.2 to 2 at β = 2 to 2.5.
        alpha: AlphaPO's α, any finite number; 0 is SimPO's log-prob reward. r_α has slope
            exp(-α a) in the mean log-prob a <= 0: α > 0 makes it steeper for unlikely responses
            (unbounded below, growing like exp(α |a|)), α < 0 flattens it there (bounded below
            by 1/α).
    """

    name = "simpo"
    requires_reference = False
    data_format = "paired"
    stateful = False
    min_batch_size = 1
    uses_lengths = True

    def __init__(self, *, beta: float = 2.0, gamma: float = 0.5, alpha: float = 0.0) -> None:
        super().__init__()
        self.beta = require_positive("beta", beta)
        self.gamma = require_non_negative("gamma", gamma)
        self.alpha = require_finite("alpha", alpha)

    def reward_shape(self, mean_logps: Tensor) -> Tensor:
        """r_α of the (B,) mean token log-probs: (1 - exp(-α a)) / α, or a itself at α = 0."""
        if self.alpha == 0.0:
            return mean_logps
        return -torch.expm1(-self.alpha * mean_logps) / self.alpha

    def compute(self, inputs: PairedLogps) -> LossOutput:
        avg_chosen, avg_rejected = mean_token_logps(inputs)  # (B,), (B,)
        chosen, rejected = self.reward_shape(avg_chosen), self.reward_shape(avg_rejected)
        losses = -F.logsigmoid(self.beta * (chosen - rejected) - self.gamma)
        return LossOutput(losses, self.beta * chosen, self.beta * rejected, {})
