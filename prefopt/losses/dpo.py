"""DPO and conservative DPO (cDPO)."""

from __future__ import annotations

import torch.nn.functional as F

from prefopt.losses.base import LossOutput, PairedLogps, PreferenceLoss
from prefopt.losses.functional import logratios
from prefopt.losses.registry import register_loss
from prefopt.losses.validation import require_bool, require_in_interval, require_positive


@register_loss
class DPOLoss(PreferenceLoss):
    """Direct Preference Optimization: Your Language Model is Secretly a Reward Model.

    Rafailov et al., arXiv 2305.18290.

    Built, with Δ = (chosen_logps - ref_chosen_logps) - (rejected_logps - ref_rejected_logps)
    and the probability y that the chosen response is the better one:

        L = -y log σ(βΔ) - (1 - y) log σ(-βΔ),   y = 1 - ε   (y = (1 - ε) p + ε (1 - p) with
                                                             soft labels p from ``weights``)

    Paper (Eq. 7): L = -log σ(βΔ), which is ε = 0 without soft labels. ε > 0 is conservative DPO
    (cDPO, Mitchell's note on DPO with noisy preferences): labels flipped with probability ε.
    Implicit rewards: β(chosen_logps - ref_chosen_logps), likewise for the rejected response.

    Hyperparameters:
        beta: inverse strength of the KL penalty to the reference, > 0. The paper uses 0.1
            (0.5 for TL;DR summarisation); 0.01 to 0.5 is the usual range.
        label_smoothing: ε, the assumed label-noise rate, in [0, 0.5); 0 is plain DPO, 0.1 to
            0.3 are typical for noisy data. At 0.5 the labels carry no information.
        soft_labels: if true, ``weights`` are the probability p in [0, 1] that the chosen
            response is preferred (for example an annotator agreement rate) and enter the
            label y instead of multiplying the loss.
    """

    name = "dpo"
    requires_reference = True
    data_format = "paired"
    stateful = False
    min_batch_size = 1
    uses_lengths = False

    def __init__(
        self, *, beta: float = 0.1, label_smoothing: float = 0.0, soft_labels: bool = False
    ) -> None:
        super().__init__()
        self.beta = require_positive("beta", beta)
        self.label_smoothing = require_in_interval(
            "label_smoothing", label_smoothing, 0.0, 0.5, "[0, 0.5)"
        )
        self.soft_labels = require_bool("soft_labels", soft_labels)

    @property
    def weights_are_labels(self) -> bool:
        return self.soft_labels

    def compute(self, inputs: PairedLogps) -> LossOutput:
        chosen, rejected = logratios(inputs)  # (B,), (B,)
        margin = self.beta * (chosen - rejected)  # (B,)
        label = 1.0 - self.label_smoothing
        if self.soft_labels and inputs.weights is not None:
            p = inputs.weights  # (B,)
            if bool(((p < 0) | (p > 1)).any()):
                raise ValueError("dpo: with soft_labels=True, weights must lie in [0, 1]")
            label = label * p + self.label_smoothing * (1.0 - p)  # (B,)
        losses = -label * F.logsigmoid(margin) - (1.0 - label) * F.logsigmoid(-margin)
        return LossOutput(losses, self.beta * chosen, self.beta * rejected, {})
