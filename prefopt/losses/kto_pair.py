"""Paired KTO: the KTO value function on both responses of a pair, KL baselines from the batch."""

from __future__ import annotations

import torch

from prefopt.losses.base import BetaLoss, LossOutput, PairedLogps
from prefopt.losses.functional import logratios
from prefopt.losses.registry import register_loss


@register_loss
class KTOPairLoss(BetaLoss):
    """KTO: Model Alignment as Prospect Theoretic Optimization (paired).

    Ethayarajh et al., arXiv 2402.01306.

    Built, with Δ_w = chosen_logps - ref_chosen_logps, Δ_l likewise, and the batch baselines
    z_w = max(0, mean(Δ_w)), z_l = max(0, mean(Δ_l)):

        L = ½ [(1 - σ(β(Δ_w - z_l))) + (1 - σ(β(z_w - Δ_l)))]

    This is the ``kto_pair`` loss of TRL <= 0.8's ``DPOTrainer.dpo_loss``, which
    LLaMA-Factory's ``pref_loss: kto_pair`` runs (``CustomDPOTrainer.compute_preference_loss``
    in ``src/llamafactory/train/dpo/trainer.py`` hands it to that ``dpo_loss``; later TRL
    releases dropped it): each pair is one desirable and one undesirable example, and each
    half's KL baseline is estimated from the other half of the batch. TRL returns the 2B terms
    and takes their mean; here a pair's loss is the mean of its two terms, so the batch means
    agree. Differences from the paper's KTO (and from ``kto`` here): the baselines are
    back-propagated, as in that code, instead of held fixed; they are the batch's matched
    log-ratios, not mismatched prompt-response pairs; there are no λ_D/λ_U weights. The
    baselines are estimated over the batch this loss is called with (in the trainer, one
    micro-batch on one process), as ``kto``'s z0 is; with one pair they are that pair's own
    log-ratios. Implicit rewards: β Δ_w, β Δ_l. Metrics: ``kl_chosen`` z_w, ``kl_rejected`` z_l.

    Hyperparameters:
        beta: sharpness of the value function, > 0; TRL's default and the KTO paper's is 0.1.
    """

    name = "kto_pair"
    requires_reference = True
    data_format = "paired"
    stateful = False
    min_batch_size = 1
    uses_lengths = False

    def compute(self, inputs: PairedLogps) -> LossOutput:
        chosen, rejected = logratios(inputs)  # (B,), (B,)
        kl_chosen = chosen.mean().clamp(min=0)  # ()
        kl_rejected = rejected.mean().clamp(min=0)  # ()
        chosen_losses = torch.sigmoid(-self.beta * (chosen - kl_rejected))  # 1 - σ(x) = σ(-x)
        rejected_losses = torch.sigmoid(-self.beta * (kl_chosen - rejected))
        losses = 0.5 * (chosen_losses + rejected_losses)  # (B,)
        metrics = {"kl_chosen": kl_chosen, "kl_rejected": kl_rejected}
        return LossOutput(losses, self.beta * chosen, self.beta * rejected, metrics)
