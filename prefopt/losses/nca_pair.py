"""NCA on pairs: noise-contrastive alignment, which keeps chosen likelihoods from falling."""

from __future__ import annotations

import torch.nn.functional as F

from prefopt.losses.base import BetaLoss, LossOutput, PairedLogps
from prefopt.losses.functional import logratios
from prefopt.losses.registry import register_loss


@register_loss
class NCAPairLoss(BetaLoss):
    """Noise Contrastive Alignment of Language Models with Explicit Rewards.

    Chen et al., arXiv 2402.05369 (NCA).

    Built, with r_w = β(chosen_logps - ref_chosen_logps) and r_l likewise:

        L = -log σ(r_w) - ½ log σ(-r_w) - ½ log σ(-r_l)

    This is the paper's NCA for a pair with a binary preference (TRL's ``nca_pair``). Unlike
    DPO, which only scores the gap r_w - r_l, NCA scores each response's own reward, so it
    optimises absolute likelihoods: the chosen response's log-ratio is pushed up (until
    σ(r_w) is near 2/3) and the rejected one's down. The paper's general form takes K responses
    with explicit reward labels; only K = 2 with a hard label is built.
    Implicit rewards: r_w, r_l.

    Hyperparameters:
        beta: reward scale, > 0; TRL's default is 0.1.
    """

    name = "nca_pair"
    requires_reference = True
    data_format = "paired"
    stateful = False
    min_batch_size = 1
    uses_lengths = False

    def compute(self, inputs: PairedLogps) -> LossOutput:
        chosen, rejected = logratios(inputs)  # (B,), (B,)
        chosen_rewards, rejected_rewards = self.beta * chosen, self.beta * rejected
        losses = (
            -F.logsigmoid(chosen_rewards)
            - 0.5 * F.logsigmoid(-chosen_rewards)
            - 0.5 * F.logsigmoid(-rejected_rewards)
        )
        return LossOutput(losses, chosen_rewards, rejected_rewards, {})
