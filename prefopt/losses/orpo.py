"""ORPO: NLL on the chosen response plus an odds-ratio preference term, no reference model."""

from __future__ import annotations

import torch.nn.functional as F

from prefopt.losses.base import LossOutput, PairedLogps, PreferenceLoss
from prefopt.losses.functional import log_odds, mean_token_logps
from prefopt.losses.registry import register_loss
from prefopt.losses.validation import require_positive


@register_loss
class ORPOLoss(PreferenceLoss):
    """ORPO: Monolithic Preference Optimization without Reference Model.

    Hong et al., arXiv 2403.07691.

    Built, with avg_w = chosen_logps / chosen_lengths (likewise avg_l) and
    log odds(a) = a - log(1 - exp(a)):

        L = -avg_w - β log σ(log odds(avg_w) - log odds(avg_l))

    Paper: L = L_SFT + λ L_OR with the same odds from mean token log-probs; β here is
    the paper's λ. Differences: the NLL term is each example's mean over its own tokens (the
    paper and TRL average cross-entropy over all tokens of the batch, weighting long responses
    more), so the loss stays per example; log(1 - exp(a)) is computed in fp32 with a stable
    log1mexp and a clamped to at most -1e-6 (``MAX_MEAN_LOGP``) so odds stay finite when a
    token probability reaches 1. Implicit rewards: β avg_w, β avg_l (as TRL). Metrics: ``nll``
    (mean -avg_w) and ``log_odds_ratio`` (mean).

    Hyperparameters:
        beta: λ, weight of the odds-ratio term against the NLL, > 0. The paper uses 0.25
            (Phi-2), 0.2 (Llama-2-7B) and 0.1 (Mistral-7B); 0.05 to 1 is the usual range.
    """

    name = "orpo"
    requires_reference = False
    data_format = "paired"
    stateful = False
    min_batch_size = 1
    uses_lengths = True

    def __init__(self, *, beta: float = 0.2) -> None:
        super().__init__()
        self.beta = require_positive("beta", beta)

    def compute(self, inputs: PairedLogps) -> LossOutput:
        avg_chosen, avg_rejected = mean_token_logps(inputs)  # (B,), (B,)
        log_odds_ratio = log_odds(avg_chosen) - log_odds(avg_rejected)  # (B,)
        nll = -avg_chosen  # (B,)
        losses = nll - self.beta * F.logsigmoid(log_odds_ratio)
        metrics = {"nll": nll.mean(), "log_odds_ratio": log_odds_ratio.mean()}
        return LossOutput(losses, self.beta * avg_chosen, self.beta * avg_rejected, metrics)
