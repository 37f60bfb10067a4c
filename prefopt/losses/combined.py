"""A weighted sum of losses, built from config without a new class (for example DPO + 0.2 NLL)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from prefopt.losses.base import LossOutput, PairedLogps, PreferenceLoss, UnpairedLogps
from prefopt.losses.validation import require_finite


class CombinedLoss(PreferenceLoss):
    """L = sum_k weight_k * L_k, per example; for example RPO = DPO + 0.2 * NLL (``sft``).

    Each component validates its inputs and applies ``weights`` itself. Rewards come from the
    first component; metrics are prefixed by component name (``dpo/...``), and each component's
    mean loss is reported as ``<name>/loss``. It needs reference log-probs if any component does,
    is stateful if any component is, and needs the largest minimum batch size of its components.
    All components must share one data format. Built by ``build_loss_from_config`` from
    ``{"name": "combined", "components": [...]}``; it is not in the registry.
    """

    # Class-level values describe an empty combination; __init__ sets them from the components.
    name = "combined"
    requires_reference = False
    data_format = "paired"
    stateful = False
    min_batch_size = 1

    def __init__(self, losses: Sequence[PreferenceLoss], weights: Sequence[float]) -> None:
        super().__init__()
        if not losses or len(losses) != len(weights):
            raise ValueError(
                f"a combined loss needs one weight per component, got {len(losses)} losses "
                f"and {len(weights)} weights"
            )
        formats = {loss.data_format for loss in losses}
        if len(formats) > 1:
            listed = ", ".join(f"{loss.name}: {loss.data_format}" for loss in losses)
            raise ValueError(f"combined losses must share one data_format, got {listed}")
        self.components = nn.ModuleList(losses)
        self.component_weights = [require_finite("weight", w) for w in weights]
        self.component_names = _unique_names([loss.name for loss in losses])
        self.requires_reference = any(loss.requires_reference for loss in losses)
        self.data_format = formats.pop()
        self.stateful = any(loss.stateful for loss in losses)
        self.min_batch_size = max(loss.min_batch_size for loss in losses)

    def extra_repr(self) -> str:
        return "weights=" + ", ".join(
            f"{name}: {w}"
            for name, w in zip(self.component_names, self.component_weights, strict=True)
        )

    def forward(self, inputs: PairedLogps | UnpairedLogps) -> LossOutput:
        outputs = [loss(inputs) for loss in self.components]
        weighted = [w * out.losses for w, out in zip(self.component_weights, outputs, strict=True)]
        total = torch.stack(weighted).sum(dim=0)  # (B,)
        metrics = {}
        for name, out in zip(self.component_names, outputs, strict=True):
            metrics[f"{name}/loss"] = out.losses.detach().mean()
            metrics.update({f"{name}/{key}": value for key, value in out.metrics.items()})
        return LossOutput(total, outputs[0].chosen_rewards, outputs[0].rejected_rewards, metrics)


def _unique_names(names: list[str]) -> list[str]:
    """Component names, numbered where one loss appears more than once (dpo_0, dpo_1)."""
    return [f"{name}_{i}" if names.count(name) > 1 else name for i, name in enumerate(names)]
