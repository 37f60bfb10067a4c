"""SPPO with hard labels: each log-ratio regressed to ±1/(2β), one round with a fixed reference."""

from __future__ import annotations

from prefopt.losses.base import BetaLoss, LossOutput, PairedLogps
from prefopt.losses.functional import logratios
from prefopt.losses.registry import register_loss


@register_loss
class SPPOHardLoss(BetaLoss):
    """Self-Play Preference Optimization for Language Model Alignment (hard-label form).

    Wu et al., arXiv 2405.00675 (SPPO).

    Built, with Δ_w = chosen_logps - ref_chosen_logps and Δ_l likewise:

        L = (Δ_w - 1/(2β))² + (Δ_l + 1/(2β))²

    This is not SPPO as published. The paper's loss is (log π(y)/π_t(y) - η(P̂(y ≻ π_t) - ½))²
    for each response, where P̂ is a win probability against the current policy π_t estimated
    from several samples by a preference model, and the reference π_t is replaced by the new
    policy after every round of self-play. This form (TRL's ``sppo_hard``) sets P̂ to 1 for
    the chosen and 0 for the rejected response, takes η = 1/β, and runs one round against a
    fixed reference. Implicit rewards: β Δ_w, β Δ_l.

    Hyperparameters:
        beta: > 0; the chosen log-ratio is regressed to 1/(2β) and the rejected one to
            -1/(2β), so small β asks for large moves (β = 0.1: ±5 nats). TRL's default is 0.1.
    """

    name = "sppo_hard"
    requires_reference = True
    data_format = "paired"
    stateful = False
    min_batch_size = 1
    uses_lengths = False

    def compute(self, inputs: PairedLogps) -> LossOutput:
        chosen, rejected = logratios(inputs)  # (B,), (B,)
        target = 1.0 / (2.0 * self.beta)
        losses = (chosen - target) ** 2 + (rejected + target) ** 2
        return LossOutput(losses, self.beta * chosen, self.beta * rejected, {})
