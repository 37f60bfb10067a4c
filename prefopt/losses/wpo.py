"""WPO: DPO with each pair weighted by its probability under the current policy."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from prefopt.losses.base import BetaLoss, LossOutput, PairedLogps
from prefopt.losses.functional import logratios
from prefopt.losses.registry import register_loss


def policy_weight(token_logps: Tensor, log_sum_sq_probs: Tensor, lengths: Tensor) -> Tensor:
    """(B,) exp of the mean over a response's tokens of log π(y_j) - log sum_v π(v)^2, from (B, L)
    response-aligned tensors (0 past each length) and lengths (B,); no gradient."""
    with torch.no_grad():
        aligned = (token_logps - log_sum_sq_probs).sum(-1) / lengths.clamp(min=1)  # (B,)
        return aligned.exp()


@register_loss
class WPOLoss(BetaLoss):
    """WPO: Enhancing RLHF with Weighted Preference Optimization.

    Zhou et al., arXiv 2406.11827.

    Built: the DPO loss of each pair weighted by how likely the current policy is to produce the
    pair, so that off-policy pairs count as if they were sampled on-policy:

        w(y) = exp( (1/|y|) sum_j [ log π(y_j | x, y_<j) - log sum_v π(v | x, y_<j)^2 ] ),
        L = -w(y_w) w(y_l) log σ(β Δ),

    with Δ DPO's log-ratio gap and the weights not back-propagated. Subtracting log sum_v π(v)^2
    (the paper's weight alignment, its Eq. 2; sum_v π(v)^2 = E_{v~π} π(v)) compares each token's
    probability with the expected probability of a token the policy samples there, so that a
    response sampled from the policy gets a weight near 1 however peaked its distributions are.
    The weights are not clipped, as in TRL 1.16's ``use_weighting``; TRL applies them to any of
    its loss types, prefopt to the DPO loss the paper uses. Rewards: β(log π - log π_ref), as DPO's;
    ``metrics["policy_weight"]`` is the mean of w(y_w) w(y_l).

    Hyperparameters:
        beta: inverse strength of the KL penalty to the reference, > 0, as in DPO.
    """

    name = "wpo"
    requires_reference = True
    data_format = "paired"
    stateful = False
    min_batch_size = 1
    uses_lengths = True
    token_inputs = frozenset({"logps", "log_sum_sq_probs"})

    def compute(self, inputs: PairedLogps) -> LossOutput:
        tokens = inputs.tokens
        chosen, rejected = logratios(inputs)  # (B,), (B,)
        weights = policy_weight(
            tokens.chosen_logps, tokens.chosen_log_sum_sq_probs, inputs.chosen_lengths
        ) * policy_weight(
            tokens.rejected_logps, tokens.rejected_log_sum_sq_probs, inputs.rejected_lengths
        )  # (B,)
        losses = -weights * F.logsigmoid(self.beta * (chosen - rejected))  # (B,)
        metrics = {"policy_weight": weights.mean()}
        return LossOutput(losses, self.beta * chosen, self.beta * rejected, metrics)
