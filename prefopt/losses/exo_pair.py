"""EXO on pairs: reverse KL from the model's preference to a smoothed label distribution."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from prefopt.losses.base import LossOutput, PairedLogps, PreferenceLoss
from prefopt.losses.functional import logratios
from prefopt.losses.registry import register_loss
from prefopt.losses.validation import require_in_interval, require_positive


@register_loss
class EXOPairLoss(PreferenceLoss):
    """Towards Efficient Exact Optimization of Language Model Alignment.

    Ji et al., arXiv 2402.00856 (EXO).

    Built, with Δ = (chosen_logps - ref_chosen_logps) - (rejected_logps - ref_rejected_logps)
    and q = σ(βΔ), the model's probability that the chosen response wins:

        L = q (log q - log(1 - ε)) + (1 - q)(log(1 - q) - log ε)

    that is KL(Bernoulli(q) || Bernoulli(1 - ε)), with log q = log σ(βΔ) and
    log(1 - q) = log σ(-βΔ) for stability. This is the paper's EXO for K = 2 responses with a
    binary label smoothed by ε (TRL's ``exo_pair``); the paper's general form compares K
    responses against a target from explicit rewards. Unlike DPO's forward KL, the reverse KL
    is mode-seeking. Implicit rewards: β(chosen_logps - ref_chosen_logps), likewise rejected.

    Hyperparameters:
        beta: reward scale, > 0; 0.1 as in DPO is usual.
        label_smoothing: ε in (0, 0.5), the target probability that the rejected response wins.
            It must be > 0: log ε is -inf at 0. 1e-3 is TRL's default.
    """

    name = "exo_pair"
    requires_reference = True
    data_format = "paired"
    stateful = False
    min_batch_size = 1
    uses_lengths = False

    def __init__(self, *, beta: float = 0.1, label_smoothing: float = 1e-3) -> None:
        super().__init__()
        self.beta = require_positive("beta", beta)
        self.label_smoothing = require_in_interval(
            "label_smoothing", label_smoothing, 0.0, 0.5, "(0, 0.5)"
        )

    def compute(self, inputs: PairedLogps) -> LossOutput:
        chosen, rejected = logratios(inputs)  # (B,), (B,)
        margin = self.beta * (chosen - rejected)  # (B,)
        eps = self.label_smoothing
        chosen_wins = torch.sigmoid(margin) * (F.logsigmoid(margin) - math.log(1 - eps))
        rejected_wins = torch.sigmoid(-margin) * (F.logsigmoid(-margin) - math.log(eps))
        losses = chosen_wins + rejected_wins  # (B,)
        return LossOutput(losses, self.beta * chosen, self.beta * rejected, {})
