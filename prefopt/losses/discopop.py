"""DiscoPOP: the log-ratio modulated loss, a blend of DPO's logistic loss and an exponential loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from prefopt.losses.base import LossOutput, PairedLogps, PreferenceLoss
from prefopt.losses.functional import logratios
from prefopt.losses.registry import register_loss
from prefopt.losses.validation import require_positive


@register_loss
class DiscoPOPLoss(PreferenceLoss):
    """Discovering Preference Optimization Algorithms with and for Large Language Models.

    Lu et al., arXiv 2406.08414 (DiscoPOP, the log-ratio modulated loss LRML).

    Built, with x = βΔ, Δ = (chosen_logps - ref_chosen_logps) - (rejected_logps -
    ref_rejected_logps) and the mixing weight m = σ(x / τ):

        L = (1 - m) (-log σ(x)) + m exp(-x)

    This is the paper's Eq. 5 as TRL's ``discopop`` builds it (TRL cites the same equation):
    below a zero margin the loss is DPO's logistic loss, above it the exponential loss, with a
    switch of width τ. The only difference is numerical: m exp(-x) is computed as
    exp(-x + log σ(x / τ)), which stays finite where exp(-x) alone overflows and m is 0 (TRL
    gives inf · 0 = nan there). The loss is neither convex nor monotone in x: for τ = 0.05 it
    has a local minimum at x ≈ -0.12 and a local maximum at x ≈ 0.07. Between them, the
    reference (x = 0) included, the gradient lowers the chosen response and raises the rejected
    one; margins outside that band are pushed up.
    Implicit rewards: β(chosen_logps - ref_chosen_logps), likewise for the rejected response.

    Hyperparameters:
        beta: reward scale, > 0; TRL's default is 0.1.
        tau: τ > 0, TRL's ``discopop_tau``: the width of the switch between the two losses.
            The paper and TRL use 0.05; for τ > 1 the exponential part grows without bound as
            the margin falls.
    """

    name = "discopop"
    requires_reference = True
    data_format = "paired"
    stateful = False
    min_batch_size = 1
    uses_lengths = False

    def __init__(self, *, beta: float = 0.1, tau: float = 0.05) -> None:
        super().__init__()
        self.beta = require_positive("beta", beta)
        self.tau = require_positive("tau", tau)

    def compute(self, inputs: PairedLogps) -> LossOutput:
        chosen, rejected = logratios(inputs)  # (B,), (B,)
        x = self.beta * (chosen - rejected)  # (B,)
        logistic = -F.logsigmoid(x) * torch.sigmoid(-x / self.tau)  # (B,) (1 - m) (-log σ(x))
        exponential = torch.exp(F.logsigmoid(x / self.tau) - x)  # (B,) m exp(-x)
        return LossOutput(logistic + exponential, self.beta * chosen, self.beta * rejected, {})
