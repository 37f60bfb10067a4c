"""Preferred-FT: fine-tuning on the chosen responses only (a baseline, and RPO's NLL term)."""

from __future__ import annotations

from prefopt.losses.base import LossOutput, PairedLogps, PreferenceLoss
from prefopt.losses.functional import mean_token_logps
from prefopt.losses.registry import register_loss


@register_loss
class SFTLoss(PreferenceLoss):
    """Preferred-FT: negative log-likelihood of the chosen response, per token.

    The baseline "Preferred-FT" of the DPO paper (Rafailov et al., "Direct Preference
    Optimization: Your Language Model is Secretly a Reward Model", arXiv 2305.18290): fine-tune
    on the preferred responses and ignore the rejected ones. Combined with DPO
    (``conf/loss/combined_rpo.yaml``) it is the NLL term of RPO.

    Built, with avg_w = chosen_logps / chosen_lengths:

        L = -avg_w

    The usual SFT loss averages token cross-entropy over all tokens of the batch; this is each
    example's mean over its own tokens, so the loss stays per example. ∂L/∂chosen_logps =
    -1/len_w < 0 and the rejected response gets no gradient. No reference model, no
    hyperparameters. "Rewards" are avg_w and avg_l (mean token log-probs, unscaled), so that
    reward accuracy and margins stay meaningful to log.
    """

    name = "sft"
    requires_reference = False
    data_format = "paired"
    stateful = False
    min_batch_size = 1
    uses_lengths = True

    def __init__(self) -> None:
        super().__init__()

    def compute(self, inputs: PairedLogps) -> LossOutput:
        avg_chosen, avg_rejected = mean_token_logps(inputs)  # (B,), (B,)
        return LossOutput(-avg_chosen, avg_chosen, avg_rejected, {})
