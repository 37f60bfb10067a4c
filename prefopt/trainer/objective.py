"""What an optimiser step minimises: an :class:`Objective` over the micro-batches of a global batch.

The trainer hands each collated micro-batch to the run's objective and gets back per-item losses and
metric sums; it never asks which objective it holds. :class:`PreferenceObjective` is a preference
loss plugin (DPO and the rest) on pairs or unpaired items, with pi_ref's log-probs from the run's
reference; the online algorithms (:mod:`prefopt.online`) bring their own, such as RLOO's policy
gradient on sampled responses.
"""

from __future__ import annotations

import contextlib
from typing import Protocol

import torch

from prefopt.losses import PreferenceLoss
from prefopt.trainer.reference import Reference
from prefopt.trainer.step import forward_loss, metric_sums


class Objective(Protocol):
    """A training objective as the trainer sees it.

    ``name``: shown in progress and messages. ``min_batch_size``: the fewest items a micro-batch may
    hold. ``micro_batch(policy, inputs, autocast)``: the (B,) per-item losses of a collated
    micro-batch (the trainer sums them and divides by the global batch's size) and the batch's
    metric sums, 0-dim tensors on the device (divided by the item count for the logged row).
    ``state_dict`` / ``load_state_dict``: what checkpoints keep of it (BCO's running mean);
    ``train(mode)``: training or evaluation mode.
    """

    name: str
    min_batch_size: int

    def micro_batch(
        self, policy: torch.nn.Module, inputs: dict, autocast=contextlib.nullcontext
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...

    def train(self, mode: bool = True): ...


class PreferenceObjective:
    """A preference loss plugin on the run's items (pairs or unpaired examples), pi_ref's log-probs
    from ``reference`` where the loss reads them."""

    def __init__(self, loss_fn: PreferenceLoss, reference: Reference | None):
        self.loss_fn, self.reference = loss_fn, reference
        self.name, self.min_batch_size = loss_fn.name, loss_fn.min_batch_size

    def micro_batch(
        self, policy: torch.nn.Module, inputs: dict, autocast=contextlib.nullcontext
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss of each item (B,) and the step metrics of :func:`metric_sums`."""
        out, logps, _, ref_logps = forward_loss(
            policy, self.loss_fn, self.reference, inputs, autocast
        )
        paired = self.loss_fn.data_format == "paired"
        return out.losses, metric_sums(out, logps, ref_logps, paired)

    def state_dict(self) -> dict:
        return self.loss_fn.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.loss_fn.load_state_dict(state)

    def train(self, mode: bool = True) -> PreferenceObjective:
        self.loss_fn.train(mode)
        return self


class StatelessObjective:
    """Base of an objective with nothing to checkpoint and no train/eval mode of its own (an online
    algorithm's: its state lives in its batch source and its trained parts)."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def train(self, mode: bool = True) -> StatelessObjective:
        return self
