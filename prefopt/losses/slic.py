"""SLiC-HF in full: a hinge on the policy's own sequence log-probs plus an NLL regulariser."""

from __future__ import annotations

import torch

from prefopt.losses.base import LossOutput, PairedLogps, PreferenceLoss
from prefopt.losses.registry import register_loss
from prefopt.losses.validation import require_non_negative, require_positive


@register_loss
class SLiCLoss(PreferenceLoss):
    """SLiC-HF: Sequence Likelihood Calibration with Human Feedback.

    Zhao et al., arXiv 2305.10425.

    Built, with the policy's sequence log-probs log π(y_w|x) = chosen_logps and log π(y_l|x) =
    rejected_logps:

        L = max(0, δ - log π(y_w|x) + log π(y_l|x)) - λ log π(y_w|x)

    The paper's calibration loss (rank calibration with a hinge) and its cross-entropy
    regulariser, on sequence sums and with no reference model. The paper's regulariser is the
    NLL of y_ref, a target from the SFT data; preference pairs here carry no such target, so
    the regulariser's target is the chosen response. The hinge is flat once the chosen response
    leads by δ, and then only the regulariser moves the policy.
    The ``hinge`` loss is TRL's DPO-style variant: max(0, 1 - βΔ) on reference log-ratios,
    margin 1/β, no regulariser. This loss is the paper's form, without a reference.
    "Rewards" are the sequence log-probs chosen_logps and rejected_logps (unscaled).

    Hyperparameters:
        delta: the margin δ > 0 in nats by which the chosen sequence log-prob must beat the
            rejected one; the paper uses 1.
        reg_weight: λ >= 0, the weight of the chosen response's NLL; 0 leaves the bare hinge.
            The default 0.5 is a middle value; the paper tunes λ.
    """

    name = "slic"
    requires_reference = False
    data_format = "paired"
    stateful = False
    min_batch_size = 1
    uses_lengths = False

    def __init__(self, *, delta: float = 1.0, reg_weight: float = 0.5) -> None:
        super().__init__()
        self.delta = require_positive("delta", delta)
        self.reg_weight = require_non_negative("reg_weight", reg_weight)

    def compute(self, inputs: PairedLogps) -> LossOutput:
        chosen, rejected = inputs.chosen_logps, inputs.rejected_logps  # (B,), (B,)
        calibration = torch.relu(self.delta - chosen + rejected)  # (B,)
        nll = -chosen  # (B,)
        losses = calibration + self.reg_weight * nll
        metrics = {"calibration": calibration.mean(), "nll": nll.mean()}
        return LossOutput(losses, chosen, rejected, metrics)
