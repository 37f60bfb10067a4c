"""APO: anchored preference optimisation, with explicit directions for each response."""

from __future__ import annotations

import torch

from prefopt.losses.base import BetaLoss, LossOutput, PairedLogps
from prefopt.losses.functional import logratios
from prefopt.losses.registry import register_loss


@register_loss
class APOZeroLoss(BetaLoss):
    """Anchored Preference Optimization and Contrastive Revisions (APO-zero).

    D'Oosterlinck et al., arXiv 2408.06266, "Anchored Preference Optimization and Contrastive
    Revisions: Addressing Underspecification in Alignment".

    Built, with r_w = β(chosen_logps - ref_chosen_logps) and r_l likewise:

        L = (1 - σ(r_w)) + σ(r_l)

    This is the paper's APO-zero (TRL's ``apo_zero``): anchored at the reference, it raises the
    chosen likelihood and lowers the rejected one independently; use it when the chosen
    responses are better than the model's own outputs. Implicit rewards: r_w, r_l.

    Hyperparameters:
        beta: reward scale, > 0; 0.1 as in DPO is usual.
    """

    name = "apo_zero"
    requires_reference = True
    data_format = "paired"
    stateful = False
    min_batch_size = 1
    uses_lengths = False

    def compute(self, inputs: PairedLogps) -> LossOutput:
        chosen, rejected = logratios(inputs)  # (B,), (B,)
        chosen_rewards, rejected_rewards = self.beta * chosen, self.beta * rejected
        losses = torch.sigmoid(-chosen_rewards) + torch.sigmoid(rejected_rewards)
        return LossOutput(losses, chosen_rewards, rejected_rewards, {})


@register_loss
class APODownLoss(BetaLoss):
    """Anchored Preference Optimization and Contrastive Revisions (APO-down).

    D'Oosterlinck et al., arXiv 2408.06266, "Anchored Preference Optimization and Contrastive
    Revisions: Addressing Underspecification in Alignment".

    Built, with r_w = β(chosen_logps - ref_chosen_logps) and r_l likewise:

        L = σ(r_w) + (1 - σ(r_w - r_l))

    This is the paper's APO-down (TRL's ``apo_down``), for data whose chosen responses are
    worse than the model's own outputs: the first term lowers the chosen likelihood, the second
    keeps the chosen response above the rejected one. So ∂L/∂rejected_logps > 0 always, while
    ∂L/∂chosen_logps = β(σ'(r_w) - σ'(r_w - r_l)) is positive (chosen pushed down) whenever
    |r_w - r_l| > |r_w|, for example once the rejected response has fallen below the reference
    (r_l < 0 <= r_w), and zero when the policy equals the reference. Implicit rewards: r_w, r_l.

    Hyperparameters:
        beta: reward scale, > 0; 0.1 as in DPO is usual.
    """

    name = "apo_down"
    requires_reference = True
    data_format = "paired"
    stateful = False
    min_batch_size = 1
    uses_lengths = False

    def compute(self, inputs: PairedLogps) -> LossOutput:
        chosen, rejected = logratios(inputs)  # (B,), (B,)
        chosen_rewards, rejected_rewards = self.beta * chosen, self.beta * rejected
        losses = torch.sigmoid(chosen_rewards) + torch.sigmoid(rejected_rewards - chosen_rewards)
        return LossOutput(losses, chosen_rewards, rejected_rewards, {})
