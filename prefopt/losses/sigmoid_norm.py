"""Length-normalised DPO: DPO on per-token average log-ratios (TRL's ``sigmoid_norm``)."""

from __future__ import annotations

import torch.nn.functional as F

from prefopt.losses.base import BetaLoss, LossOutput, PairedLogps
from prefopt.losses.functional import logratios
from prefopt.losses.registry import register_loss
from prefopt.losses.validation import require_non_negative


@register_loss
class SigmoidNormLoss(BetaLoss):
    """Tülu 3: Pushing Frontiers in Open Language Model Post-Training.

    Lambert et al., arXiv 2411.15124 (length-normalised DPO, Eq. 6 there).

    Built, with Δ_w = chosen_logps - ref_chosen_logps, Δ_l likewise and the response token
    counts len_w, len_l:

        L = -log σ(β (Δ_w / len_w - Δ_l / len_l) - γ)

    Each response's policy and reference log-probs are both summed over that response's tokens
    and the difference divided by its own token count: the per-token average log-ratio, with
    the chosen length for the chosen pair of sums and the rejected length for the rejected one.
    This is TRL's ``sigmoid_norm``, which divides by the completion-mask counts (clamped to at
    least 1; lengths here must be > 0). Tülu 3 writes the same objective; it follows SimPO's
    length normalisation but keeps the reference model. With SimPO's target margin γ > 0 it is
    SimPO with a reference (SimPO's loss on per-token log-ratios in place of log-probs), the
    ablation that asks what the reference does for SimPO; γ = 0 (the default) is Tülu 3's loss.
    Implicit rewards: β Δ_w / len_w and β Δ_l / len_l, the normalised terms of the loss (TRL
    logs the unnormalised β Δ_w and β Δ_l).

    Hyperparameters:
        beta: reward scale, > 0, on per-token log-ratios, which are roughly the response length
            times smaller than sequence ones. TRL's default is 0.1; Tülu 3 trains with 5.
        gamma: target margin γ >= 0 on the β-scaled rewards, absolute, as SimPO's ``gamma``; 0
            is Tülu 3's and TRL's loss.
    """

    name = "sigmoid_norm"
    requires_reference = True
    data_format = "paired"
    stateful = False
    min_batch_size = 1
    uses_lengths = True

    def __init__(self, *, beta: float = 0.1, gamma: float = 0.0) -> None:
        super().__init__(beta=beta)
        self.gamma = require_non_negative("gamma", gamma)

    def compute(self, inputs: PairedLogps) -> LossOutput:
        chosen, rejected = logratios(inputs)  # (B,), (B,)
        chosen = chosen / inputs.chosen_lengths  # (B,)
        rejected = rejected / inputs.rejected_lengths  # (B,)
        losses = -F.logsigmoid(self.beta * (chosen - rejected) - self.gamma)
        return LossOutput(losses, self.beta * chosen, self.beta * rejected, {})
