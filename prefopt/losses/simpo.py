"""SimPO and AlphaPO: a reward from length-averaged log-probs, a target margin, no reference model;
its ablations (no length normalisation, an NLL term, EOS left out of the average)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from prefopt.losses.base import LossOutput, PairedLogps, PreferenceLoss
from prefopt.losses.functional import mean_token_logps
from prefopt.losses.registry import register_loss
from prefopt.losses.validation import (
    require_bool,
    require_finite,
    require_non_negative,
    require_positive,
)


@register_loss
class SimPOLoss(PreferenceLoss):
    """SimPO: Simple Preference Optimization with a Reference-Free Reward.

    Meng et al., arXiv 2405.14734.

    Built, with avg_w = chosen_logps / chosen_lengths (likewise avg_l) and AlphaPO's reward
    shape r_α(a) = (1 - exp(-α a)) / α (r_0(a) = a):

        L = -log σ(β (r_α(avg_w) - r_α(avg_l)) - γ)

    At α = 0 this is the paper's objective with an absolute margin γ, as TRL and LLaMA-Factory
    take it. The official repository and HALOs take ``gamma_beta_ratio`` = γ/β instead: multiply
    it by β to get this γ. α ≠ 0 is AlphaPO (Gupta et al., arXiv 2501.03884, "AlphaPO: Reward
    Shape Matters for LLM Alignment"): r_α is the paper's (1 - p^-α) / α with p = exp(avg) the
    per-token geometric-mean probability, as TRL's ``CPOTrainer`` builds ``loss_type="alphapo"``
    (SimPO with ``alpha`` and no NLL term). Implicit rewards: β r_α(avg_w), β r_α(avg_l).

    Ablations (each off by default): ``length_normalize=False`` uses the summed log-probs
    logp_w, logp_l in place of avg_w, avg_l; ``nll_weight`` λ > 0 adds λ nll_w, nll_w =
    -logp_w / len_w the chosen response's per-token NLL, which is CPO-SimPO (the SimPO authors'
    CPO-SimPO recipe; TRL's CPOTrainer with ``loss_type="simpo"`` and ``cpo_alpha`` = λ).

    Hyperparameters:
        beta: reward scale, > 0. The repository's configs use 2.0 to 2.5 (10 in its v0.2).
        gamma: target reward margin γ >= 0, absolute. The repository's γ/β ratios of 0.1 to 0.8
            give γ of roughly 0.2 to 2 at β = 2 to 2.5.
        alpha: AlphaPO's α, any finite number; 0 is SimPO's log-prob reward. r_α has slope
            exp(-α a) in the mean log-prob a <= 0: α > 0 makes it steeper for unlikely responses
            (unbounded below, growing like exp(α |a|)), α < 0 flattens it there (bounded below
            by 1/α).
        length_normalize: True (SimPO) averages each response's log-probs over its tokens; False
            takes their sum, so the reward scales with length.
        nll_weight: λ >= 0, the weight of the chosen response's per-token NLL; 0 is SimPO.
    """

    name = "simpo"
    requires_reference = False
    data_format = "paired"
    stateful = False
    min_batch_size = 1
    uses_lengths = True

    def __init__(
        self,
        *,
        beta: float = 2.0,
        gamma: float = 0.5,
        alpha: float = 0.0,
        length_normalize: bool = True,
        nll_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.beta = require_positive("beta", beta)
        self.gamma = require_non_negative("gamma", gamma)
        self.alpha = require_finite("alpha", alpha)
        self.length_normalize = require_bool("length_normalize", length_normalize)
        self.nll_weight = require_non_negative("nll_weight", nll_weight)

    def reward_shape(self, mean_logps: Tensor) -> Tensor:
        """r_α of the (B,) mean token log-probs: (1 - exp(-α a)) / α, or a itself at α = 0."""
        if self.alpha == 0.0:
            return mean_logps
        return -torch.expm1(-self.alpha * mean_logps) / self.alpha

    def response_logps(self, inputs: PairedLogps) -> tuple[Tensor, Tensor]:
        """The (B,) chosen and rejected log-probs the reward reads: per-token means, or sums."""
        if self.length_normalize:
            return mean_token_logps(inputs)
        return inputs.chosen_logps, inputs.rejected_logps

    def compute(self, inputs: PairedLogps) -> LossOutput:
        avg_chosen, avg_rejected = self.response_logps(inputs)  # (B,), (B,)
        chosen, rejected = self.reward_shape(avg_chosen), self.reward_shape(avg_rejected)
        losses = -F.logsigmoid(self.beta * (chosen - rejected) - self.gamma)  # (B,)
        metrics = {}
        if self.nll_weight > 0:
            nll = -mean_token_logps(inputs)[0]  # (B,) the chosen per-token NLL
            losses = losses + self.nll_weight * nll
            metrics["nll"] = nll.mean()
        return LossOutput(losses, self.beta * chosen, self.beta * rejected, metrics)


@register_loss
class SimPOEOSExcludedLoss(SimPOLoss):
    """SimPO ablated: the end-of-sequence token left out of each response's average.

    Meng et al., arXiv 2405.14734, with avg_w = (logp_w - e_w) / (len_w - 1), e_w the log-prob of
    the chosen response's last token (its EOS, which the data pipeline appends to every response
    unless ``data.add_eos`` is false or the response was truncated), likewise avg_l; a response of
    one token averages to 0. Everything else is ``simpo``'s: it asks whether the average's EOS
    term, alike in chosen and rejected responses, decides SimPO's outcome.

    Hyperparameters (``simpo``'s):
        beta: reward scale, > 0.
        gamma: target reward margin γ >= 0, absolute.
        alpha: AlphaPO's reward shape α; 0 is SimPO's log-prob reward.
        length_normalize: True averages over the tokens before EOS; False sums them.
        nll_weight: λ >= 0, the weight of the chosen response's per-token NLL (EOS included).
    """

    name = "simpo_eos_excluded"
    requires_reference = False
    data_format = "paired"
    stateful = False
    min_batch_size = 1
    uses_lengths = True
    token_inputs = frozenset({"logps"})

    def response_logps(self, inputs: PairedLogps) -> tuple[Tensor, Tensor]:
        tokens = inputs.tokens
        pairs = (
            (tokens.chosen_logps, inputs.chosen_logps, inputs.chosen_lengths),
            (tokens.rejected_logps, inputs.rejected_logps, inputs.rejected_lengths),
        )
        means = []
        for per_token, total, lengths in pairs:  # (B, L), (B,), (B,)
            last = lengths.long().clamp(min=1) - 1  # (B,) index of each response's last token
            final = per_token.gather(1, last[:, None]).squeeze(1)  # (B,)
            kept = total - final  # (B,)
            if not self.length_normalize:
                means.append(kept)
                continue
            means.append(kept / (lengths - 1).clamp(min=1))
        return means[0], means[1]
