"""Robust DPO (rDPO): an unbiased DPO loss under labels flipped at a known rate."""

from __future__ import annotations

import torch.nn.functional as F

from prefopt.losses.base import LossOutput, PairedLogps, PreferenceLoss
from prefopt.losses.functional import logratios
from prefopt.losses.registry import register_loss
from prefopt.losses.validation import require_in_interval, require_positive


@register_loss
class RobustDPOLoss(PreferenceLoss):
    """Provably Robust DPO: Aligning Language Models with Noisy Feedback.

    Chowdhury et al., arXiv 2403.00409 (rDPO).

    Built, with Δ = (chosen_logps - ref_chosen_logps) - (rejected_logps - ref_rejected_logps):

        L = ((1 - ε)(-log σ(βΔ)) - ε(-log σ(-βΔ))) / (1 - 2ε)

    This is the paper's loss (as TRL's ``robust``): an unbiased estimate of the clean DPO loss
    when each label is flipped with probability ε. It differs from conservative DPO
    (``dpo`` with ``label_smoothing``), which adds the flipped term instead of subtracting it;
    rDPO's loss is not bounded below for ε > 0. At ε = 0 it is DPO.
    Implicit rewards: β(chosen_logps - ref_chosen_logps), likewise for the rejected response.

    Hyperparameters:
        beta: as in DPO, > 0; 0.1 is usual.
        label_smoothing: ε, the label-flip rate, in [0, 0.5); set it to the estimated rate of
            wrongly ordered pairs in the data.
    """

    name = "robust"
    requires_reference = True
    data_format = "paired"
    stateful = False
    min_batch_size = 1
    uses_lengths = False

    def __init__(self, *, beta: float = 0.1, label_smoothing: float = 0.1) -> None:
        super().__init__()
        self.beta = require_positive("beta", beta)
        self.label_smoothing = require_in_interval(
            "label_smoothing", label_smoothing, 0.0, 0.5, "[0, 0.5)"
        )

    def compute(self, inputs: PairedLogps) -> LossOutput:
        chosen, rejected = logratios(inputs)  # (B,), (B,)
        margin = self.beta * (chosen - rejected)  # (B,)
        eps = self.label_smoothing
        losses = (-(1 - eps) * F.logsigmoid(margin) + eps * F.logsigmoid(-margin)) / (1 - 2 * eps)
        return LossOutput(losses, self.beta * chosen, self.beta * rejected, {})
