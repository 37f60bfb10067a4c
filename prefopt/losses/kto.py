"""KTO: prospect-theoretic loss on single responses labelled desirable or undesirable."""

from __future__ import annotations

import torch

from prefopt.losses.base import LossOutput, PreferenceLoss, UnpairedLogps
from prefopt.losses.registry import register_loss
from prefopt.losses.validation import check_present, require_positive


@register_loss
class KTOLoss(PreferenceLoss):
    """KTO: Model Alignment as Prospect Theoretic Optimization.

    Ethayarajh et al., arXiv 2402.01306.

    Built, with r = logps - ref_logps per example and the KL baseline
    z0 = max(0, mean(kl_logps - ref_kl_logps)) over the batch's mismatched prompt-response
    pairs, not back-propagated:

        desirable:    L = λ_D (1 - σ(β(r - z0)))
        undesirable:  L = λ_U (1 - σ(β(z0 - r)))

    This is the paper's loss, λ_y (1 - v(x, y)) with its value function v. As in the
    paper's and TRL's code, z0 is a batch estimate, so a batch needs at least 2 examples; the
    caller builds the mismatched pairs (rotate completions by one within the batch). z0 is
    estimated over the batch this loss is called with: in the trainer, one micro-batch on one
    process, not averaged across processes (TRL averages it across devices), so it depends on
    ``micro_batch_size`` and the number of processes. The paper's λ_U/λ_D are the
    ``undesirable_weight``/``desirable_weight`` here. ``chosen_rewards``/``rejected_rewards``
    are β r of the desirable/undesirable examples (possibly empty); ``metrics["kl"]`` is z0.

    Hyperparameters:
        beta: sharpness of the value function, > 0; the paper uses 0.1.
        desirable_weight: λ_D > 0, weight of desirable examples.
        undesirable_weight: λ_U > 0, weight of undesirable examples. The paper advises
            λ_D n_D / (λ_U n_U) at or a little above 1 for n_D desirable and n_U undesirable
            examples (TRL warns outside [1, 4/3]).
    """

    name = "kto"
    requires_reference = True
    data_format = "unpaired"
    stateful = False
    min_batch_size = 2
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

    def validate(self, inputs: UnpairedLogps) -> None:
        super().validate(inputs)
        check_present(
            self.name,
            {"kl_logps": inputs.kl_logps, "ref_kl_logps": inputs.ref_kl_logps},
            "the KL baseline z0 needs log-probs of mismatched pairs",
        )

    def compute(self, inputs: UnpairedLogps) -> LossOutput:
        logratios = inputs.logps - inputs.ref_logps  # (B,)
        z0 = (inputs.kl_logps - inputs.ref_kl_logps).mean().clamp(min=0).detach()  # ()
        desirable_losses = self.desirable_weight * torch.sigmoid(-self.beta * (logratios - z0))
        undesirable_losses = self.undesirable_weight * torch.sigmoid(-self.beta * (z0 - logratios))
        losses = torch.where(inputs.desirable, desirable_losses, undesirable_losses)  # (B,)
        rewards = self.beta * logratios  # (B,)
        return LossOutput(losses, rewards[inputs.desirable], rewards[~inputs.desirable], {"kl": z0})
