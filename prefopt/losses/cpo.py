"""CPO: a reference-free DPO-style preference term plus NLL on the chosen response."""

from __future__ import annotations

import torch.nn.functional as F

from prefopt.losses.base import LossOutput, PairedLogps, PreferenceLoss
from prefopt.losses.registry import register_loss
from prefopt.losses.validation import require_in_interval, require_non_negative, require_positive


@register_loss
class CPOLoss(PreferenceLoss):
    """Contrastive Preference Optimization: Pushing the Boundaries of LLM Performance in Machine Translation.

    Xu et al., arXiv 2401.08417.

    Built, with m = chosen_logps - rejected_logps (sequence sums) and
    nll = -chosen_logps / chosen_lengths:

        L = -(1 - ε) log σ(βm) - ε log σ(-βm) + α nll

    Paper: L = L_prefer + L_NLL with L_prefer = -log σ(βm), DPO with the reference taken as
    uniform, which is ε = 0 and α = 1. As TRL's ``CPOTrainer`` (``loss_type="sigmoid"``) the NLL
    is a per-token mean, weighted by ``cpo_alpha``, and ε is its label smoothing. Difference: the
    NLL is each example's mean over its own tokens, so the loss stays per example; TRL averages
    cross-entropy over all chosen tokens of the batch, weighting long responses more (equal when
    the chosen responses have equal lengths). TRL's ``alpha`` (AlphaPO's reward shape) is built
    on ``simpo``, as TRL's ``loss_type="alphapo"``; not here. Implicit rewards:
    β chosen_logps, β rejected_logps (as TRL). Metric: ``nll`` (mean).

    Hyperparameters:
        beta: scale of the log-prob margin, > 0; the paper and TRL use 0.1.
        cpo_alpha: α >= 0, weight of the NLL (behaviour-cloning) term; the paper's is 1 (TRL's
            default), 0 leaves the preference term alone.
        label_smoothing: ε in [0, 0.5), the assumed label-flip rate, as in conservative DPO;
            0 is the paper's loss.
    """

    name = "cpo"
    requires_reference = False
    data_format = "paired"
    stateful = False
    min_batch_size = 1
    uses_lengths = True

    def __init__(
        self, *, beta: float = 0.1, cpo_alpha: float = 1.0, label_smoothing: float = 0.0
    ) -> None:
        super().__init__()
        self.beta = require_positive("beta", beta)
        self.cpo_alpha = require_non_negative("cpo_alpha", cpo_alpha)
        self.label_smoothing = require_in_interval(
            "label_smoothing", label_smoothing, 0.0, 0.5, "[0, 0.5)"
        )

    def compute(self, inputs: PairedLogps) -> LossOutput:
        margin = self.beta * (inputs.chosen_logps - inputs.rejected_logps)  # (B,)
        eps = self.label_smoothing
        preference = -(1.0 - eps) * F.logsigmoid(margin) - eps * F.logsigmoid(-margin)  # (B,)
        nll = -inputs.chosen_logps / inputs.chosen_lengths  # (B,)
        losses = preference + self.cpo_alpha * nll
        rewards = (self.beta * inputs.chosen_logps, self.beta * inputs.rejected_logps)
        return LossOutput(losses, *rewards, {"nll": nll.mean()})
