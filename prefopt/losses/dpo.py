"""DPO, conservative DPO (cDPO) and f-DPO (other f-divergences than the reverse KL)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from prefopt.losses.base import LossOutput, PairedLogps, PreferenceLoss
from prefopt.losses.functional import logratios
from prefopt.losses.registry import register_loss
from prefopt.losses.validation import (
    require_bool,
    require_finite,
    require_in_interval,
    require_positive,
)

F_DIVERGENCES = ("reverse_kl", "forward_kl", "js_divergence", "alpha_divergence")
#: Largest exponent (f_alpha - 1) Δ the α-divergence score takes: exp(80) is finite in fp32.
MAX_ALPHA_EXPONENT = 80.0
#: |f_alpha - 1| below which the α-divergence is taken at its limit, the reverse KL.
ALPHA_LIMIT_TOLERANCE = 1e-6


def f_divergence_scores(logratio: Tensor, f_divergence: str, f_alpha: float) -> Tensor:
    """f'(u) at u = π/π_ref = exp(``logratio``), up to an additive constant; shape of ``logratio``.

    reverse_kl: log u. forward_kl: 1 - 1/u. js_divergence: log(2u / (1 + u)).
    alpha_divergence: (u^(a - 1) - 1) / (a - 1) with a = ``f_alpha``, log u at a = 1. The exponent
    (a - 1) log u is clamped to ``MAX_ALPHA_EXPONENT`` (forward_kl is the case a = 0).
    """
    if f_divergence == "reverse_kl":
        return logratio
    if f_divergence == "js_divergence":
        return math.log(2.0) + F.logsigmoid(logratio)
    a = 0.0 if f_divergence == "forward_kl" else f_alpha
    if abs(a - 1.0) < ALPHA_LIMIT_TOLERANCE:
        return logratio
    exponent = ((a - 1.0) * logratio).clamp(max=MAX_ALPHA_EXPONENT)
    return torch.expm1(exponent) / (a - 1.0)


@register_loss
class DPOLoss(PreferenceLoss):
    """Direct Preference Optimization: Your Language Model is Secretly a Reward Model.

    Rafailov et al., arXiv 2305.18290. f-DPO: Wang et al., "Beyond Reverse KL: Generalizing
    Direct Preference Optimization with Diverse Divergence Constraints", arXiv 2309.16240.

    Built, with u_w = π(y_w|x) / π_ref(y_w|x), u_l likewise, the f-divergence's f' and the
    probability y that the chosen response is the better one:

        Δ = f'(u_w) - f'(u_l)
        L = -y log σ(βΔ) - (1 - y) log σ(-βΔ),   y = 1 - ε   (y = (1 - ε) p + ε (1 - p) with
                                                             soft labels p from ``weights``)

    With the default reverse KL, f'(u) = log u and Δ = (chosen_logps - ref_chosen_logps) -
    (rejected_logps - ref_rejected_logps); the paper's Eq. 7, L = -log σ(βΔ), is then ε = 0
    without soft labels. ε > 0 is conservative DPO (cDPO, Mitchell's note on DPO with noisy
    preferences): labels flipped with probability ε.

    f-DPO swaps the reverse KL to the reference for another f-divergence, which replaces log u
    by f'(u) in the implicit reward (constants cancel in Δ): forward_kl 1 - 1/u,
    js_divergence log(2u / (1 + u)), alpha_divergence (u^(a-1) - 1) / (a - 1) with a =
    ``f_alpha``. That α-divergence term is TRL's code; the paper writes f'(u) = (1 - u^(-α))/α,
    the same function with the paper's α = 1 - a. TRL's docstring calls its coefficient the α of
    a "u^-α" regulariser, the paper's α, which its code contradicts except at a = 0.5 (TRL's
    default), where both conventions agree. ``f_alpha`` here is TRL's code convention: a = 1 is
    the reverse-KL limit (plain DPO), a = 0 the forward KL, a in (0, 1) the paper's α in (0, 1).
    TRL clamps (a - 1) log u at 80 in fp32 and does not clamp forward_kl; here both clamp at 80,
    so large negative log-ratios give a finite loss with zero gradient past the clamp.
    Implicit rewards: β(chosen_logps - ref_chosen_logps), likewise for the rejected response,
    whatever the f-divergence (as TRL logs them).

    Hyperparameters:
        beta: inverse strength of the KL penalty to the reference, > 0. The paper uses 0.1
            (0.5 for TL;DR summarisation); 0.01 to 0.5 is the usual range.
        label_smoothing: ε, the assumed label-noise rate, in [0, 0.5); 0 is plain DPO, 0.1 to
            0.3 are typical for noisy data. At 0.5 the labels carry no information.
        soft_labels: if true, ``weights`` are the probability p in [0, 1] that the chosen
            response is preferred (for example an annotator agreement rate) and enter the
            label y instead of multiplying the loss.
        f_divergence: the divergence to the reference, one of reverse_kl (default, DPO),
            forward_kl, js_divergence, alpha_divergence.
        f_alpha: TRL's ``f_alpha_divergence_coef`` a, read only by alpha_divergence; the paper's
            α is 1 - a. 1 is the reverse KL, 0 the forward KL; 0.5 (default, as TRL's) is where
            both conventions agree.
    """

    name = "dpo"
    requires_reference = True
    data_format = "paired"
    stateful = False
    min_batch_size = 1
    uses_lengths = False

    def __init__(
        self,
        *,
        beta: float = 0.1,
        label_smoothing: float = 0.0,
        soft_labels: bool = False,
        f_divergence: str = "reverse_kl",
        f_alpha: float = 0.5,
    ) -> None:
        super().__init__()
        self.beta = require_positive("beta", beta)
        self.label_smoothing = require_in_interval(
            "label_smoothing", label_smoothing, 0.0, 0.5, "[0, 0.5)"
        )
        self.soft_labels = require_bool("soft_labels", soft_labels)
        if f_divergence not in F_DIVERGENCES:
            raise ValueError(
                f"f_divergence must be one of {', '.join(F_DIVERGENCES)}, got {f_divergence!r}"
            )
        self.f_divergence = f_divergence
        self.f_alpha = require_finite("f_alpha", f_alpha)

    @property
    def weights_are_labels(self) -> bool:
        return self.soft_labels

    def compute(self, inputs: PairedLogps) -> LossOutput:
        chosen, rejected = logratios(inputs)  # (B,), (B,)
        chosen_score = f_divergence_scores(chosen, self.f_divergence, self.f_alpha)  # (B,)
        rejected_score = f_divergence_scores(rejected, self.f_divergence, self.f_alpha)  # (B,)
        margin = self.beta * (chosen_score - rejected_score)  # (B,)
        label = 1.0 - self.label_smoothing
        if self.soft_labels and inputs.weights is not None:
            p = inputs.weights  # (B,)
            if bool(((p < 0) | (p > 1)).any()):
                raise ValueError("dpo: with soft_labels=True, weights must lie in [0, 1]")
            label = label * p + self.label_smoothing * (1.0 - p)  # (B,)
        losses = -label * F.logsigmoid(margin) - (1.0 - label) * F.logsigmoid(-margin)
        return LossOutput(losses, self.beta * chosen, self.beta * rejected, {})
