"""APO: anchored preference optimisation, explicit directions for each response, paired or unpaired."""

from __future__ import annotations

import torch

from prefopt.losses.base import BetaLoss, LossOutput, PairedLogps, PreferenceLoss, UnpairedLogps
from prefopt.losses.functional import logratios
from prefopt.losses.registry import register_loss
from prefopt.losses.validation import require_positive


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


@register_loss
class APOZeroUnpairedLoss(PreferenceLoss):
    """Anchored Preference Optimization and Contrastive Revisions (APO-zero, unpaired).

    D'Oosterlinck et al., arXiv 2408.06266, "Anchored Preference Optimization and Contrastive
    Revisions: Addressing Underspecification in Alignment".

    Built on single responses, with r = β(logps - ref_logps):

        desirable:    L = λ_D (1 - σ(r))
        undesirable:  L = λ_U σ(r)

    This is APO-zero's two terms applied to unpaired examples, as TRL's ``KTOTrainer`` builds
    ``loss_type="apo_zero_unpaired"``: anchored at the reference, each desirable response's
    likelihood is raised and each undesirable one's lowered, with no KL baseline (``kl_logps``
    are not read). A pair fed as its two responses gives ``apo_zero``'s loss split over two
    examples. ``chosen_rewards``/``rejected_rewards`` are r of the desirable/undesirable
    examples (possibly empty).

    Hyperparameters:
        beta: reward scale, > 0; 0.1 as in DPO is usual.
        desirable_weight: λ_D > 0, weight of desirable examples (TRL's KTO weights).
        undesirable_weight: λ_U > 0, weight of undesirable examples; raise it when they are
            scarce.
    """

    name = "apo_zero_unpaired"
    requires_reference = True
    data_format = "unpaired"
    stateful = False
    min_batch_size = 1
    uses_lengths = False

    def __init__(
        self,
        *,
        beta: float = 0.1,
        desirable_weight: float = 1.0,
        undesirable_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.beta = require_positive("beta", beta)
        self.desirable_weight = require_positive("desirable_weight", desirable_weight)
        self.undesirable_weight = require_positive("undesirable_weight", undesirable_weight)

    def compute(self, inputs: UnpairedLogps) -> LossOutput:
        rewards = self.beta * (inputs.logps - inputs.ref_logps)  # (B,)
        desirable_losses = self.desirable_weight * torch.sigmoid(-rewards)  # λ_D (1 - σ(r))
        undesirable_losses = self.undesirable_weight * torch.sigmoid(rewards)
        losses = torch.where(inputs.desirable, desirable_losses, undesirable_losses)  # (B,)
        return LossOutput(losses, rewards[inputs.desirable], rewards[~inputs.desirable], {})
