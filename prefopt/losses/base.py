"""The loss interface: input and output records, capability flags and the shared forward.

Every preference loss is a ``torch.nn.Module`` subclass of :class:`PreferenceLoss`. It declares
its capabilities as class attributes set in its own class body (the registry refuses a class that
inherits them silently), takes its hyperparameters as keyword-only constructor arguments with
defaults (so ``hyperparameters()`` can list them), and implements ``compute``. The shared
``forward`` validates the inputs, casts them up to fp32, calls ``compute``, multiplies the
per-example losses by ``weights`` and detaches rewards and metrics.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from prefopt.losses.validation import (
    check_batch,
    check_desirable,
    check_floating,
    check_lengths,
    check_present,
    check_token_batch,
    require_positive,
)

DataFormat = Literal["paired", "unpaired"]

#: Class attributes every loss sets in its own class body.
CAPABILITY_FLAGS = ("name", "requires_reference", "data_format", "stateful", "min_batch_size")


#: Per-token quantities a loss may ask for in ``token_inputs`` (see :class:`ResponseTokens`).
TOKEN_INPUTS = ("logps", "ref_logps", "log_sum_sq_probs")


@dataclass(frozen=True)
class ResponseTokens:
    """Per-token quantities of a batch of pairs' responses; every tensor is (B, L).

    Column j belongs to the j-th token of the response (aligned on its first token), L is the
    longest response of the batch and entries past a response's length are 0. ``*_logps`` are the
    policy's token log-probs (their row sums are :class:`PairedLogps`'s sums), ``ref_*_logps`` the
    reference's, ``*_log_sum_sq_probs`` the policy's log sum_v p(v)^2 over the vocabulary at each
    position (no gradient).
    """

    chosen_logps: Tensor | None = None  # (B, L)
    rejected_logps: Tensor | None = None  # (B, L)
    ref_chosen_logps: Tensor | None = None  # (B, L)
    ref_rejected_logps: Tensor | None = None  # (B, L)
    chosen_log_sum_sq_probs: Tensor | None = None  # (B, L)
    rejected_log_sum_sq_probs: Tensor | None = None  # (B, L)

    def fields_for(self, token_inputs: frozenset[str]) -> dict[str, Tensor | None]:
        """The tensors that the names in ``token_inputs`` (from :data:`TOKEN_INPUTS`) stand for."""
        names = {name: (f"chosen_{name}", f"rejected_{name}") for name in TOKEN_INPUTS}
        names["ref_logps"] = ("ref_chosen_logps", "ref_rejected_logps")
        return {key: getattr(self, key) for name in sorted(token_inputs) for key in names[name]}


@dataclass(frozen=True)
class PairedLogps:
    """Sequence log-probabilities of a batch of preference pairs; every tensor is (B,).

    ``*_logps`` are sums of response-token log-probs, ``*_lengths`` response token counts,
    ``ref_*`` the same sums under the reference model (None for reference-free losses) and
    ``weights`` optional per-example weights (or soft labels for a loss that defines them) and
    ``tokens`` the per-token quantities a loss asks for in its ``token_inputs``.
    """

    chosen_logps: Tensor  # (B,)
    rejected_logps: Tensor  # (B,)
    chosen_lengths: Tensor | None = None  # (B,)
    rejected_lengths: Tensor | None = None  # (B,)
    ref_chosen_logps: Tensor | None = None  # (B,)
    ref_rejected_logps: Tensor | None = None  # (B,)
    weights: Tensor | None = None  # (B,)
    tokens: ResponseTokens | None = None


@dataclass(frozen=True)
class UnpairedLogps:
    """Sequence log-probabilities of single responses labelled desirable or not; tensors are (B,).

    ``kl_logps``/``ref_kl_logps`` score mismatched prompt-response pairs (for example the batch's
    completions rotated by one) and give KTO-style losses their KL baseline z0.
    """

    logps: Tensor  # (B,)
    lengths: Tensor | None  # (B,)
    desirable: Tensor  # (B,) bool
    ref_logps: Tensor | None = None  # (B,)
    kl_logps: Tensor | None = None  # (B,)
    ref_kl_logps: Tensor | None = None  # (B,)
    weights: Tensor | None = None  # (B,)


@dataclass(frozen=True)
class LossOutput:
    """What a loss returns: per-example losses for the caller to reduce, detached rewards, metrics.

    For unpaired losses ``chosen_rewards``/``rejected_rewards`` hold the rewards of the desirable
    and undesirable examples (each possibly empty).
    """

    losses: Tensor  # (B,)
    chosen_rewards: Tensor  # (B,) paired; (n_desirable,) unpaired
    rejected_rewards: Tensor  # (B,) paired; (n_undesirable,) unpaired
    metrics: dict[str, Tensor]  # name -> detached scalar


class PreferenceLoss(nn.Module):
    """Base class of every preference loss.

    Subclasses set, in their own body, ``name``, ``requires_reference``, ``data_format``
    (``"paired"`` or ``"unpaired"``), ``stateful`` and ``min_batch_size``; ``uses_lengths`` says
    whether token counts are read (then they must be given and positive); ``whole_batch`` that an
    example's loss depends on the other examples of the batch (a sort or a statistic across it), so
    the trainer refuses to split a batch into micro-batches or over processes; ``token_inputs``
    names the per-token quantities a paired loss reads (:data:`TOKEN_INPUTS`), which the trainer
    then computes and passes in ``PairedLogps.tokens``; ``control_tokens`` (a paired loss's
    ``(chosen token, rejected token)`` or None) are added to the tokenizer, put first in each
    training response, and end every prompt the policy generates from (the chosen one). ``stateful``: state is
    kept in registered buffers, updated only in training mode, so that the trainer's checkpoints
    save it with ``state_dict()``; the registry checks the flag against the built loss's
    ``state_dict()``. Hyperparameters are keyword-only ``__init__`` arguments with defaults,
    stored as attributes of the same name.
    """

    name: ClassVar[str]
    requires_reference: ClassVar[bool]
    data_format: ClassVar[DataFormat]
    stateful: ClassVar[bool]
    min_batch_size: ClassVar[int]
    uses_lengths: ClassVar[bool] = False
    whole_batch: ClassVar[bool] = False
    token_inputs: ClassVar[frozenset[str]] = frozenset()
    control_tokens: ClassVar[tuple[str, str] | None] = None

    @property
    def weights_are_labels(self) -> bool:
        """True when ``compute`` reads ``weights`` itself (soft labels) instead of multiplying."""
        return False

    @classmethod
    def hyperparameters(cls) -> dict[str, Any]:
        """Hyperparameter names and defaults, read from the keyword-only ``__init__`` arguments."""
        parameters = inspect.signature(cls.__init__).parameters.values()
        return {p.name: p.default for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}

    def hyperparameter_values(self) -> dict[str, Any]:
        """The hyperparameters this instance was built with."""
        return {key: getattr(self, key) for key in self.hyperparameters()}

    def extra_repr(self) -> str:
        return ", ".join(f"{key}={value!r}" for key, value in self.hyperparameter_values().items())

    def forward(self, inputs: PairedLogps | UnpairedLogps) -> LossOutput:
        self.validate(inputs)
        out = self.compute(_upcast(inputs))
        losses = out.losses
        if inputs.weights is not None and not self.weights_are_labels:
            losses = losses * inputs.weights.to(losses.dtype)
        return LossOutput(
            losses=losses,
            chosen_rewards=out.chosen_rewards.detach(),
            rejected_rewards=out.rejected_rewards.detach(),
            metrics={key: value.detach() for key, value in out.metrics.items()},
        )

    def validate(self, inputs: PairedLogps | UnpairedLogps) -> None:
        """Raise ValueError unless ``inputs`` suit this loss's data format and capabilities."""
        expected = PairedLogps if self.data_format == "paired" else UnpairedLogps
        if not isinstance(inputs, expected):
            raise ValueError(
                f"{self.name}: data_format is {self.data_format!r}, so it takes "
                f"{expected.__name__}, got {type(inputs).__name__}"
            )
        tensors = {f.name: getattr(inputs, f.name) for f in fields(inputs) if f.name != "tokens"}
        batch_size = check_batch(self.name, tensors, self.min_batch_size)
        if isinstance(inputs, PairedLogps):
            logps = ("chosen_logps", "rejected_logps", "ref_chosen_logps", "ref_rejected_logps")
            references = ("ref_chosen_logps", "ref_rejected_logps")
            lengths = ("chosen_lengths", "rejected_lengths")
        else:
            check_desirable(self.name, inputs.desirable)
            logps = ("logps", "ref_logps", "kl_logps", "ref_kl_logps")
            references = ("ref_logps",)
            lengths = ("lengths",)
        check_floating(self.name, {key: tensors[key] for key in logps})
        if self.requires_reference:
            check_present(
                self.name,
                {key: tensors[key] for key in references},
                "this loss requires reference log-probs",
            )
        if self.uses_lengths:
            check_lengths(self.name, {key: tensors[key] for key in lengths})
        if self.token_inputs:
            per_token = (inputs.tokens or ResponseTokens()).fields_for(self.token_inputs)
            check_present(self.name, per_token, "this loss reads per-token quantities")
            check_token_batch(self.name, per_token, batch_size)

    def compute(self, inputs: Any) -> LossOutput:
        """The loss on validated inputs whose floating tensors are at least fp32."""
        raise NotImplementedError(f"{type(self).__name__} must implement compute()")


class BetaLoss(PreferenceLoss):
    """A loss whose one hyperparameter is ``beta`` > 0 (default 0.1), the reward scale; each
    subclass still declares its capability flags and documents what beta means for it."""

    def __init__(self, *, beta: float = 0.1) -> None:
        super().__init__()
        self.beta = require_positive("beta", beta)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp32 for half-precision and fp32 inputs, fp64 kept as is."""
    return torch.promote_types(dtype, torch.float32) if dtype.is_floating_point else torch.float32


def _upcast(inputs: PairedLogps | UnpairedLogps) -> PairedLogps | UnpairedLogps:
    """Cast every floating or integer tensor (lengths included) to the compute dtype; keep bools."""
    logps = inputs.chosen_logps if isinstance(inputs, PairedLogps) else inputs.logps
    dtype = _compute_dtype(logps.dtype)
    cast = {}
    for field in fields(inputs):
        value = getattr(inputs, field.name)
        if isinstance(value, Tensor) and value.dtype != torch.bool:
            cast[field.name] = value.to(dtype)
    tokens = getattr(inputs, "tokens", None)
    if tokens is not None:
        given = {f.name: getattr(tokens, f.name) for f in fields(tokens)}
        cast["tokens"] = replace(
            tokens, **{name: value.to(dtype) for name, value in given.items() if value is not None}
        )
    return replace(inputs, **cast)
