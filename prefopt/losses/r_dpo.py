"""R-DPO: DPO with a length term that keeps the policy from buying reward with verbosity."""

from __future__ import annotations

import torch.nn.functional as F

from prefopt.losses.base import LossOutput, PairedLogps, PreferenceLoss
from prefopt.losses.functional import logratios
from prefopt.losses.registry import register_loss
from prefopt.losses.validation import require_finite, require_positive


@register_loss
class RDPOLoss(PreferenceLoss):
    """Disentangling Length from Quality in Direct Preference Optimization.

    Park et al., arXiv 2403.19159 (R-DPO).

    Built, with Δ = (chosen_logps - ref_chosen_logps) - (rejected_logps - ref_rejected_logps)
    and response token counts len_w, len_l:

        L = -log σ(βΔ + α(len_w - len_l))

    This is the paper's regularised objective with α not multiplied by β. With α > 0 a pair
    whose chosen response is longer already has a larger margin, so the loss pushes less on it
    and the length bias in the data is not learned as reward. At α = 0 it is DPO.
    Implicit rewards: β(chosen_logps - ref_chosen_logps), likewise for the rejected response.

    Hyperparameters:
        beta: as in DPO, > 0; 0.1 is usual.
        alpha: weight of the length difference, per token; small positive values (a few
            hundredths to about 1), since it multiplies token counts. Negative values reward
            longer chosen responses.
    """

    name = "r_dpo"
    requires_reference = True
    data_format = "paired"
    stateful = False
    min_batch_size = 1
    uses_lengths = True

    def __init__(self, *, beta: float = 0.1, alpha: float = 0.05) -> None:
        super().__init__()
        self.beta = require_positive("beta", beta)
        self.alpha = require_finite("alpha", alpha)

    def compute(self, inputs: PairedLogps) -> LossOutput:
        chosen, rejected = logratios(inputs)  # (B,), (B,)
        length_gap = inputs.chosen_lengths - inputs.rejected_lengths  # (B,)
        losses = -F.logsigmoid(self.beta * (chosen - rejected) + self.alpha * length_gap)
        return LossOutput(losses, self.beta * chosen, self.beta * rejected, {})
