"""DPO-Positive (DPOP): DPO plus a penalty when the chosen likelihood falls below the reference."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from prefopt.losses.base import LossOutput, PairedLogps, PreferenceLoss
from prefopt.losses.functional import logratios
from prefopt.losses.registry import register_loss
from prefopt.losses.validation import require_non_negative, require_positive


@register_loss
class DPOPLoss(PreferenceLoss):
    """Smaug: Fixing Failure Modes of Preference Optimisation with DPO-Positive.

    Pal et al., arXiv 2402.13228 (DPOP).

    Built, with Δ = (chosen_logps - ref_chosen_logps) - (rejected_logps - ref_rejected_logps):

        L = -log σ(β(Δ - λ max(0, ref_chosen_logps - chosen_logps)))

    This is the paper's loss (and TRL's ``dpop``). DPO can lower the chosen response's
    likelihood as long as the rejected one falls faster; the penalty, active only while the
    chosen log-prob is below the reference's, removes that. At λ = 0 it is DPO.
    Implicit rewards: β(chosen_logps - ref_chosen_logps), likewise rejected. Metrics:
    ``penalty`` (mean of max(0, ref_chosen_logps - chosen_logps)).

    Hyperparameters:
        beta: as in DPO, > 0; 0.1 is usual.
        lambda_dpop: λ >= 0, weight of the penalty; the paper's default is 50. It multiplies a
            sequence log-prob gap, so on short synthetic responses smaller values suffice.
    """

    name = "dpop"
    requires_reference = True
    data_format = "paired"
    stateful = False
    min_batch_size = 1
    uses_lengths = False

    def __init__(self, *, beta: float = 0.1, lambda_dpop: float = 50.0) -> None:
        super().__init__()
        self.beta = require_positive("beta", beta)
        self.lambda_dpop = require_non_negative("lambda_dpop", lambda_dpop)

    def compute(self, inputs: PairedLogps) -> LossOutput:
        chosen, rejected = logratios(inputs)  # (B,), (B,)
        penalty = torch.relu(inputs.ref_chosen_logps - inputs.chosen_logps)  # (B,)
        losses = -F.logsigmoid(self.beta * (chosen - rejected - self.lambda_dpop * penalty))
        metrics = {"penalty": penalty.mean()}
        return LossOutput(losses, self.beta * chosen, self.beta * rejected, metrics)
