"""Hinge loss on the reference log-ratio gap (SLiC-HF's calibration loss, as TRL builds it)."""

from __future__ import annotations

import torch

from prefopt.losses.base import BetaLoss, LossOutput, PairedLogps
from prefopt.losses.functional import logratios
from prefopt.losses.registry import register_loss


@register_loss
class HingeLoss(BetaLoss):
    """SLiC-HF: Sequence Likelihood Calibration with Human Feedback.

    Zhao et al., arXiv 2305.10425.

    Built, with Δ = (chosen_logps - ref_chosen_logps) - (rejected_logps - ref_rejected_logps):

        L = max(0, 1 - βΔ)

    Paper: L = max(0, δ - log π(y_w|x) + log π(y_l|x)) - λ log π(y_ref|x), on raw policy
    log-probs with no reference, plus a regularising NLL on SFT targets. This form (TRL's
    ``hinge``) uses reference log-ratios, writes the margin δ as 1/β (the loss is β times the
    paper's hinge), and leaves the NLL term to a combination with ``sft``.
    Implicit rewards: β(chosen_logps - ref_chosen_logps), likewise for the rejected response.

    Hyperparameters:
        beta: > 0, the inverse of the margin δ = 1/β the log-ratio gap must exceed. TRL's
            default is 0.1, a margin of 10 nats.
    """

    name = "hinge"
    requires_reference = True
    data_format = "paired"
    stateful = False
    min_batch_size = 1
    uses_lengths = False

    def compute(self, inputs: PairedLogps) -> LossOutput:
        chosen, rejected = logratios(inputs)  # (B,), (B,)
        losses = torch.relu(1.0 - self.beta * (chosen - rejected))
        return LossOutput(losses, self.beta * chosen, self.beta * rejected, {})
