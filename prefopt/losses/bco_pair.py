"""BCO on pairs: each response classified against a reward shift δ (a running mean of rewards)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from prefopt.losses.base import LossOutput, PairedLogps, PreferenceLoss
from prefopt.losses.functional import logratios
from prefopt.losses.registry import register_loss
from prefopt.losses.validation import require_bool, require_positive


@register_loss
class BCOPairLoss(PreferenceLoss):
    """Binary Classifier Optimization for Large Language Model Alignment.

    Jung et al., arXiv 2404.04656 (BCO), in the paired form of TRL's ``bco_pair``.

    Built, with rewards r_w = β(chosen_logps - ref_chosen_logps), r_l likewise, and δ:

        L = -log σ(r_w - δ) - log σ(-(r_l - δ))

    ``running_mean=True`` (the paper): δ is the mean of the per-batch mean rewards (chosen and
    rejected together) over every training batch so far, the current one included; it is kept
    in buffers (``running_mean_reward``, ``num_batches``), so ``state_dict()`` saves it, and it
    is updated only in training mode (evaluation uses the stored value, 0 before any training
    batch). It is kept per process: in the trainer each micro-batch on each process is one
    batch, its mean not averaged across processes, and a checkpoint holds the main process's δ,
    which every process resumes from.
    ``running_mean=False``: δ = 0, TRL 1.16's form.
    Paper: the same binary cross-entropy on unpaired desirable/undesirable responses, with δ the
    moving average of rewards, plus density-ratio matching between the two prompt
    distributions, which this paired form does not need and does not build.
    Metrics: ``delta``.

    Hyperparameters:
        beta: reward scale, > 0; 0.1 as in DPO is usual.
        running_mean: shift rewards by their running mean δ (true, the paper) or not (false).
    """

    name = "bco_pair"
    requires_reference = True
    data_format = "paired"
    stateful = True
    min_batch_size = 1
    uses_lengths = False

    def __init__(self, *, beta: float = 0.1, running_mean: bool = True) -> None:
        super().__init__()
        self.beta = require_positive("beta", beta)
        self.running_mean = require_bool("running_mean", running_mean)
        self.register_buffer("running_mean_reward", torch.zeros((), dtype=torch.float64))
        self.register_buffer("num_batches", torch.zeros((), dtype=torch.int64))

    def compute(self, inputs: PairedLogps) -> LossOutput:
        chosen, rejected = logratios(inputs)  # (B,), (B,)
        chosen_rewards, rejected_rewards = self.beta * chosen, self.beta * rejected
        if self.running_mean:
            if self.training:
                self._update(torch.cat([chosen_rewards, rejected_rewards]).mean().detach())
            delta = self.running_mean_reward.to(chosen_rewards)  # ()
        else:
            delta = torch.zeros((), dtype=chosen_rewards.dtype, device=chosen_rewards.device)
        losses = -F.logsigmoid(chosen_rewards - delta) - F.logsigmoid(-(rejected_rewards - delta))
        return LossOutput(losses, chosen_rewards, rejected_rewards, {"delta": delta})

    @torch.no_grad()
    def _update(self, batch_mean: torch.Tensor) -> None:
        """Fold one batch's mean reward into the cumulative mean."""
        self.num_batches += 1
        step = (
            batch_mean.to(self.running_mean_reward) - self.running_mean_reward
        ) / self.num_batches
        self.running_mean_reward += step
