"""Conditional SFT (csft): fine-tuning on both responses, each after a control token."""

from __future__ import annotations

from prefopt.losses.base import LossOutput, PairedLogps, PreferenceLoss
from prefopt.losses.functional import mean_token_logps
from prefopt.losses.registry import register_loss

GOOD_TOKEN = "<|good|>"
BAD_TOKEN = "<|bad|>"


@register_loss
class ConditionalSFTLoss(PreferenceLoss):
    """Conditional SFT: NLL of both responses, each conditioned on a good or bad control token.

    Korbak, Shi, Chen, Bhalerao, Buckley, Phang, Bowman, Perez, arXiv 2302.08582 ("Pretraining
    Language Models with Human Preferences", conditional training), in the form of HALOs' csft
    (ContextualAI/HALOs: ``config/loss/csft.yaml`` and ``ConditionalSFTDataLoader`` in
    ``train/dataloader.py``, trained by its ``SFTTrainer``).

    The data pipeline puts the control token first in each response: the chosen response is
    ``<|good|> y_w``, the rejected one ``<|bad|> y_l`` (the tokens are added to the tokenizer and
    the policy's embeddings when missing). Every generation of the policy continues a prompt that
    ends with ``<|good|>``; pi_ref samples the plain prompt, and what the judges see has no control
    token. With logps and lengths counting the control token (it is a response token, as in HALOs),
    the loss is built as

        L = -(chosen_logps + rejected_logps) / (chosen_lengths + rejected_lengths),

    the mean token NLL over the pair's two conditioned responses. HALOs averages token NLL over all
    responses of the batch; this is each pair's own token mean, so the loss stays per example.
    ∂L/∂chosen_logps = ∂L/∂rejected_logps = -1/(len_w + len_l) < 0: both likelihoods rise, each
    given its own control token. No reference model, no hyperparameters. "Rewards" are avg_w and
    avg_l (mean token log-probs), as for sft.
    """

    name = "csft"
    requires_reference = False
    data_format = "paired"
    stateful = False
    min_batch_size = 1
    uses_lengths = True
    control_tokens = (GOOD_TOKEN, BAD_TOKEN)

    def __init__(self) -> None:
        super().__init__()

    def compute(self, inputs: PairedLogps) -> LossOutput:
        tokens = inputs.chosen_lengths + inputs.rejected_lengths  # (B,)
        losses = -(inputs.chosen_logps + inputs.rejected_logps) / tokens  # (B,)
        avg_chosen, avg_rejected = mean_token_logps(inputs)  # (B,), (B,)
        return LossOutput(losses, avg_chosen, avg_rejected, {})
