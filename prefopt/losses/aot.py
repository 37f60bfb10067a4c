"""AOT: alignment via optimal transport, a DPO-style loss on quantiles matched across the batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from prefopt.losses.base import LossOutput, PairedLogps, PreferenceLoss
from prefopt.losses.functional import logratios
from prefopt.losses.registry import register_loss
from prefopt.losses.validation import require_in_interval, require_positive


def quantile_gaps(values: Tensor, baseline: Tensor) -> Tensor:
    """values_i minus the baseline quantile of the same rank: values_i - sort(baseline)[rank_i].

    rank_i is the position of values_i in the sorted ``values``, so the gaps, in any order, are
    sort(values) - sort(baseline), each given to the example whose value holds that rank. Both
    tensors are (B,); the result is (B,).
    """
    ranks = torch.argsort(torch.argsort(values.detach(), stable=True))  # (B,)
    return values - torch.sort(baseline).values[ranks]


class AOTBase(PreferenceLoss):
    """The logistic loss on quantile gaps both AOT variants share; subclasses pick the two
    distributions to compare."""

    def __init__(self, *, beta: float = 0.1, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.beta = require_positive("beta", beta)
        self.label_smoothing = require_in_interval(
            "label_smoothing", label_smoothing, 0.0, 0.5, "[0, 0.5)"
        )

    def compared(self, inputs: PairedLogps) -> tuple[Tensor, Tensor]:
        """The (B,) values that should dominate and the (B,) values they are compared with."""
        raise NotImplementedError

    def compute(self, inputs: PairedLogps) -> LossOutput:
        gaps = self.beta * quantile_gaps(*self.compared(inputs))  # (B,)
        eps = self.label_smoothing
        losses = -(1.0 - eps) * F.logsigmoid(gaps) - eps * F.logsigmoid(-gaps)
        chosen, rejected = logratios(inputs)  # (B,), (B,)
        return LossOutput(losses, self.beta * chosen, self.beta * rejected, {})


@register_loss
class AOTLoss(AOTBase):
    """Distributional Preference Alignment of LLMs via Optimal Transport (AOT, paired).

    Melnyk et al., arXiv 2406.05882.

    Built, with the policy's margin m_i = chosen_logps_i - rejected_logps_i, the reference's
    margin m_ref,i likewise, and m_ref,(k) the k-th smallest reference margin of the batch:

        L_i = -(1 - ε) log σ(β g_i) - ε log σ(-β g_i),   g_i = m_i - m_ref,(rank of m_i)

    This is the paper's paired AOT with the logistic loss and hard sorting, as TRL's ``aot``:
    the policy's margin distribution is pushed to dominate the reference's in first order by
    matching the two batches' quantiles. So the loss depends on the whole batch: changing any
    example's reference margin can change every other example's loss, and a batch of one is
    DPO. The mean equals TRL's mean over sorted gaps; each rank's term is given to the example
    holding that rank, so permuting the batch permutes the losses and a weight multiplies its
    example's term. Ties are broken by batch order; sorting is not differentiable at ties of
    the reference margins (the gradient goes to one of the tied examples). The paper's soft
    sorting and its other losses h are not built. Implicit rewards:
    β(chosen_logps - ref_chosen_logps), likewise for the rejected response (as TRL logs them).

    Hyperparameters:
        beta: scale of the quantile gaps, > 0; TRL's default is 0.1.
        label_smoothing: ε in [0, 0.5), the assumed label-flip rate, as in conservative DPO;
            0 is the paper's logistic loss.
    """

    name = "aot"
    requires_reference = True
    data_format = "paired"
    stateful = False
    min_batch_size = 2
    uses_lengths = False
    whole_batch = True

    def compared(self, inputs: PairedLogps) -> tuple[Tensor, Tensor]:
        margins = inputs.chosen_logps - inputs.rejected_logps  # (B,)
        ref_margins = inputs.ref_chosen_logps - inputs.ref_rejected_logps  # (B,)
        return margins, ref_margins


@register_loss
class AOTUnpairedLoss(AOTBase):
    """Distributional Preference Alignment of LLMs via Optimal Transport (AOT, unpaired).

    Melnyk et al., arXiv 2406.05882.

    Built, with Δ_w,i = chosen_logps_i - ref_chosen_logps_i, Δ_l,i likewise and Δ_l,(k) the
    k-th smallest rejected log-ratio of the batch:

        L_i = -(1 - ε) log σ(β g_i) - ε log σ(-β g_i),   g_i = Δ_w,i - Δ_l,(rank of Δ_w,i)

    This is the paper's unpaired AOT with the logistic loss and hard sorting, as TRL's
    ``aot_unpaired``: the distribution of chosen rewards is pushed to dominate that of rejected
    rewards in first order, sorting each separately. So the loss depends on the whole batch, and
    on which response is chosen or rejected but not on which rejected response came with which
    chosen one: shuffling the rejected column leaves the losses unchanged. It still takes
    paired data (``data_format`` "paired"), as TRL's does: it reads B chosen and B rejected
    log-ratios, and equal counts are what quantile matching by sorting needs; unpaired data
    with its unequal desirable and undesirable counts is not accepted. Each rank's term is given
    to the example whose chosen log-ratio holds that rank, so the mean equals TRL's and a weight
    multiplies its example's term; ties are broken by batch order. Implicit rewards:
    β Δ_w, β Δ_l.

    Hyperparameters:
        beta: scale of the quantile gaps, > 0; TRL's default is 0.1.
        label_smoothing: ε in [0, 0.5), the assumed label-flip rate, as in conservative DPO;
            0 is the paper's logistic loss.
    """

    name = "aot_unpaired"
    requires_reference = True
    data_format = "paired"
    stateful = False
    min_batch_size = 2
    uses_lengths = False
    whole_batch = True

    def compared(self, inputs: PairedLogps) -> tuple[Tensor, Tensor]:
        return logratios(inputs)
