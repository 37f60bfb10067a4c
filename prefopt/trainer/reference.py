"""pi_ref, the reference model: one :class:`Reference` type, built by :func:`build_reference`.

A run's reference answers ``logps(batch) -> (2B,)``, the sums of response-token log-probs under
pi_ref of a collated batch's sequences, and ``module()``, pi_ref as a causal LM for sampling and KL.
The trainer never cares which of the three modes (``trainer.reference``) answers:

- ``frozen_copy``: a :class:`LiveReference` over a separate frozen copy of pi_ref;
- ``lora_disabled``: a :class:`LiveReference` over the LoRA policy itself, adapter switched off;
- ``cached``: a :class:`CachedReference` reading a table computed once by one of the two above
  (:mod:`prefopt.trainer.reference_tables`), shared by a whole sweep over loss, beta, learning rate
  and seed.

:class:`PiRef` holds the run's one live pi_ref, made on first use (a cached run whose tables all hit
and that samples nothing loads no model) and released once nothing needs it.

Beyond fixed pairs:

- A reference that moves during training (TR-DPO, :mod:`prefopt.trainer.reference_sync`):
  ``LiveReference.update_from(policy, alpha)`` interpolates a frozen copy's weights with the
  (unwrapped) policy's, LoRA deltas merged. The training reference is then a copy of its own, so
  evaluation keeps scoring against the original pi_ref; a table and the adapter-off base cannot
  move that way, and the config check refuses them.
- Per-token log-probs (LD-DPO's shared-prefix and tail sums): every reference answers
  ``token_logps(batch) -> (2B, L)``, aligned on each response's first token. A table entry is a
  safetensors file of named tensors with one row per item: ``logps`` (N, 2) always, and
  ``token_logps`` (N, 2, L_max) right-padded when a loss asks for it; an entry without the column
  is recomputed with it once and serves both kinds of loss afterwards.
- pi_ref log-probs of freshly sampled responses (PPO, RLOO): ``logps`` of a batch without ``index``
  (never in a table). A live reference computes it as for any batch; a cached reference asks its
  ``live`` (the run's :class:`PiRef`), which loads pi_ref on the first such batch and keeps it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import torch

from prefopt.errors import ConfigError
from prefopt.models.logprobs import response_token_logps, sequence_logps
from prefopt.trainer.items import TrainItem

if TYPE_CHECKING:
    from prefopt.trainer.reference_tables import ReferenceTables

REFERENCE_MODES = ("frozen_copy", "lora_disabled", "cached")
LIVE_MODES = ("frozen_copy", "lora_disabled")  # the modes that compute pi_ref on the fly


class Reference(Protocol):
    """pi_ref as the trainer and evaluation see it."""

    def logps(self, batch: dict) -> torch.Tensor:
        """(2B,) pi_ref log-probs of the batch's sequences (a collated batch, or fresh samples)."""
        ...

    def token_logps(self, batch: dict) -> torch.Tensor:
        """(2B, L) pi_ref log-prob of each response token, aligned on the response's first token."""
        ...

    def module(self) -> torch.nn.Module:
        """pi_ref as a causal LM, for sampling and KL."""
        ...


class AdapterDisabledModel(torch.nn.Module):
    """pi_ref as a module: the peft policy with its adapter disabled at every forward."""

    def __init__(self, peft_model: torch.nn.Module):
        super().__init__()
        self.peft_model = peft_model  # the sampler reads the forward's signature through it

    def forward(self, *args, **kwargs):
        with self.peft_model.disable_adapter():
            return self.peft_model(*args, **kwargs)


class LiveReference:
    """pi_ref computed on the fly by a model: a frozen copy, or the LoRA policy with adapters off."""

    def __init__(self, model: torch.nn.Module, adapter_off: bool = False):
        self.model = model
        self.adapter_off = adapter_off
        self._module = AdapterDisabledModel(model) if adapter_off else model

    def module(self) -> torch.nn.Module:
        """The model itself, or the policy behind an adapter-disabling forward."""
        return self._module

    @contextlib.contextmanager
    def _as_pi_ref(self):
        """The model in eval mode with its adapter off where it has one; its mode restored."""
        context = self.model.disable_adapter() if self.adapter_off else contextlib.nullcontext()
        was_training = self.model.training
        self.model.eval()
        try:
            with context:
                yield self.model
        finally:
            self.model.train(was_training)

    @torch.no_grad()
    def logps(self, batch: dict) -> torch.Tensor:
        """(2B,) reference log-probs of the batch's sequences."""
        with self._as_pi_ref() as model:
            logps, _ = sequence_logps(
                model, batch["input_ids"], batch["attention_mask"], batch["response_mask"]
            )
        return logps.float()

    @torch.no_grad()
    def token_logps(self, batch: dict) -> torch.Tensor:
        """(2B, L) fp32 log-prob of each response token, column j the j-th token of the response
        and 0 past its end (L the batch's longest response); its row sums are :meth:`logps`."""
        with self._as_pi_ref() as model:
            logps, _, _ = response_token_logps(
                model, batch["input_ids"], batch["attention_mask"], batch["response_mask"]
            )
        return logps

    @torch.no_grad()
    def update_from(self, policy: torch.nn.Module, alpha: float) -> None:
        """Move a frozen copy towards the (unwrapped) policy: pi_ref <- alpha pi + (1 - alpha)
        pi_ref, each weight interpolated with the policy's (merged weights for a LoRA policy)."""
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha={alpha} is not in [0, 1]")
        if self.adapter_off:
            raise ValueError("the adapter-off reference is the policy's own base; it cannot move")
        targets = dict(self.model.named_parameters())
        for name, weight in _merged_weights(policy).items():
            if name not in targets:
                raise ValueError(f"the policy's weight {name} is not in the reference model")
            targets[name].lerp_(weight.to(targets[name]), alpha)


def _lora_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The peft LoRA layers of ``model`` (none for a plain model)."""
    from peft.tuners.lora import LoraLayer

    layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    for layer in layers:
        if any(layer.lora_bias.get(n) or n in layer.lora_variant for n in layer.active_adapters):
            raise ValueError("moving pi_ref supports plain LoRA adapters (no bias, no variant)")
    return layers


def _merged_weights(policy: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The policy's weights by the plain model's names, each LoRA delta merged into its base."""
    if not hasattr(policy, "get_base_model"):
        return dict(policy.named_parameters())
    base = policy.get_base_model()
    layers = {id(layer): layer for layer in _lora_layers(base)}
    weights = {}
    for module_name, module in base.named_modules():
        if id(module) in layers:
            merged = module.get_base_layer().weight.clone()
            for name in module.active_adapters:
                merged += module.get_delta_weight(name).to(merged)
            weights[f"{module_name}.weight"] = merged
    for name, weight in base.named_parameters():
        if "lora_" in name:
            continue
        plain = name.replace(".base_layer.", ".")
        weights.setdefault(plain, weight)
    return weights


class CachedReference:
    """Reference log-probs read from a table computed once: ``logps`` (N, 2), column 0 the first
    sequence, 1 the second, and any other named quantity with N rows. A batch without ``index``
    (fresh samples) goes to ``live``, a callable giving the live reference."""

    def __init__(
        self,
        table: torch.Tensor,
        live: Callable[[], LiveReference] | None = None,
        **columns: torch.Tensor,
    ):
        self.columns = {"logps": table, **columns}
        self.live = live

    @property
    def table(self) -> torch.Tensor:
        """(N, 2) reference log-probs of every item's two sequences."""
        return self.columns["logps"]

    def rows(self, name: str, batch: dict) -> torch.Tensor:
        """(2B, ...) column ``name`` for the batch's item indices: first sequences, then second."""
        rows = self.columns[name][batch["index"]]  # (B, 2, ...)
        return torch.cat([rows[:, 0], rows[:, 1]]).to(batch["input_ids"].device)

    def logps(self, batch: dict) -> torch.Tensor:
        """(2B,) cached log-probs for the batch's item indices; a fresh batch's from ``live``."""
        if batch.get("index") is None:
            return self._live().logps(batch)
        return self.rows("logps", batch)

    def token_logps(self, batch: dict) -> torch.Tensor:
        """(2B, L) cached per-token log-probs (L the batch's longest response); a fresh batch's
        from ``live``."""
        if batch.get("index") is None:
            return self._live().token_logps(batch)
        if "token_logps" not in self.columns:
            raise ValueError("this cached reference was built without per-token log-probs")
        width = int(batch["response_mask"][:, 1:].sum(-1).max())
        return self.rows("token_logps", batch)[:, :width]

    def module(self) -> torch.nn.Module:
        """The live pi_ref's module."""
        return self._live().module()

    def _live(self) -> LiveReference:
        if self.live is None:
            raise ValueError(
                "this cached reference has no live model for batches outside its table"
            )
        return self.live()


@dataclass
class PiRef:
    """A run's one live pi_ref, made on first use and kept until :meth:`release`.

    ``adapter_off``: the LoRA ``policy`` with its adapter disabled (no model is loaded); otherwise
    a frozen copy from ``load_model()``.
    """

    policy: torch.nn.Module | None
    load_model: Callable[[], torch.nn.Module] | None
    adapter_off: bool
    _live: LiveReference | None = field(default=None, init=False, repr=False)

    def live(self) -> LiveReference:
        """The live reference, loading the frozen copy on the first call."""
        if self._live is None:
            if self.adapter_off:
                self._live = LiveReference(self.policy, adapter_off=True)
            else:
                self._live = LiveReference(self.load_model())
        return self._live

    def module(self) -> torch.nn.Module:
        """pi_ref as a causal LM (loaded on the first call)."""
        return self.live().module()

    def release(self) -> None:
        """Drop a loaded copy; a later call loads it again."""
        self._live = None


def adapter_off_for(mode: str, lora_on_pi_ref: bool) -> bool:
    """Whether pi_ref is the LoRA policy with its adapter off: in lora_disabled mode, and in cached
    mode when the adapter sits on pi_ref itself (``lora_on_pi_ref``; the tables are filled before
    the adapter changes)."""
    return mode == "lora_disabled" or (mode == "cached" and lora_on_pi_ref)


def build_reference(
    mode: str,
    pi_ref: PiRef,
    items: Sequence[TrainItem],
    name: str,
    tables: ReferenceTables | None,
    per_token: bool = False,
) -> Reference:
    """The reference that answers batches collated from ``items`` (``name`` in messages and keys).

    Live modes give the run's one live reference whatever the items; ``cached`` reads ``tables``
    (with ``per_token``, tables that also hold per-token log-probs).
    """
    if mode not in REFERENCE_MODES:
        raise ConfigError(f"trainer.reference={mode} is not one of {', '.join(REFERENCE_MODES)}")
    if mode in LIVE_MODES:
        return pi_ref.live()
    if tables is None:
        raise ValueError("trainer.reference=cached needs its tables")
    columns = tables.columns(items, name, pi_ref, per_token)
    return CachedReference(columns.pop("logps"), pi_ref.live, **columns)
