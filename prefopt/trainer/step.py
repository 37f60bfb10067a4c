"""One forward of the policy and the loss plugin on a collated batch, and a step's metrics.

The loss's capability flags decide everything loss-specific: ``requires_reference`` whether
reference log-probs are fetched, ``data_format`` whether the two halves of the batch are (chosen,
rejected) or (completion, mismatched completion), ``token_inputs`` which per-token quantities are
computed. The trainer never looks at a loss's name. Training and the held-out pair metrics
(:mod:`prefopt.eval.heldout`) share these forwards.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from prefopt.losses import LossOutput, PairedLogps, PreferenceLoss, ResponseTokens, UnpairedLogps
from prefopt.models.logprobs import response_token_logps, sequence_logps


def loss_inputs(
    loss_fn: PreferenceLoss,
    logps: torch.Tensor,
    lengths: torch.Tensor,
    ref_logps: torch.Tensor | None,
    batch: dict,
    tokens: dict[str, torch.Tensor] | None = None,
) -> PairedLogps | UnpairedLogps:
    """Split (2B,) policy and reference log-probs, and (2B, L) per-token ``tokens`` (named as in
    :data:`prefopt.losses.base.TOKEN_INPUTS`), into the loss's input type."""
    b = logps.shape[0] // 2
    ref_first = ref_second = None
    if ref_logps is not None:
        ref_first, ref_second = ref_logps[:b], ref_logps[b:]
    weights = batch["weights"].to(logps.device) if batch["weights"] is not None else None
    if loss_fn.data_format == "paired":
        return PairedLogps(
            chosen_logps=logps[:b],
            rejected_logps=logps[b:],
            chosen_lengths=lengths[:b],
            rejected_lengths=lengths[b:],
            ref_chosen_logps=ref_first,
            ref_rejected_logps=ref_second,
            weights=weights,
            tokens=None if tokens is None else response_tokens(tokens, b),
        )
    if batch["desirable"] is None:
        raise ValueError("an unpaired loss needs unpaired items (with desirable labels)")
    return UnpairedLogps(
        logps=logps[:b],
        lengths=lengths[:b],
        desirable=batch["desirable"].to(logps.device),
        ref_logps=ref_first,
        kl_logps=logps[b:].detach(),  # z0 is not back-propagated
        ref_kl_logps=ref_second,
        weights=weights,
    )


def response_tokens(tokens: dict[str, torch.Tensor], b: int) -> ResponseTokens:
    """(2B, L) per-token quantities split into the chosen (first B) and rejected halves."""
    ref = tokens.get("ref_logps")
    sq = tokens.get("log_sum_sq_probs")
    return ResponseTokens(
        chosen_logps=tokens["logps"][:b],
        rejected_logps=tokens["logps"][b:],
        ref_chosen_logps=None if ref is None else ref[:b],
        ref_rejected_logps=None if ref is None else ref[b:],
        chosen_log_sum_sq_probs=None if sq is None else sq[:b],
        rejected_log_sum_sq_probs=None if sq is None else sq[b:],
    )


def policy_token_logps(
    policy: torch.nn.Module,
    batch: dict,
    with_log_sum_sq_probs: bool,
    autocast=contextlib.nullcontext,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """The policy's per-token response log-probs in one forward: their row sums (2B,), the lengths
    (2B,) and the per-token quantities ``logps`` (2B, L) (and ``log_sum_sq_probs`` when asked)."""
    with autocast():
        per_token, lengths, log_sq = response_token_logps(
            policy,
            batch["input_ids"],
            batch["attention_mask"],
            batch["response_mask"],
            with_log_sum_sq_probs,
        )
    tokens = {"logps": per_token}
    if log_sq is not None:
        tokens["log_sum_sq_probs"] = log_sq
    return per_token.sum(-1), lengths, tokens


def policy_logps(
    policy: torch.nn.Module, batch: dict, autocast=contextlib.nullcontext
) -> tuple[torch.Tensor, torch.Tensor]:
    """The policy's summed response log-probs (2B,) and response lengths (2B,) of a batch."""
    with autocast():
        return sequence_logps(
            policy, batch["input_ids"], batch["attention_mask"], batch["response_mask"]
        )


def forward_loss(
    policy: torch.nn.Module,
    loss_fn: PreferenceLoss,
    reference,
    batch: dict,
    autocast=contextlib.nullcontext,
) -> tuple[LossOutput, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Policy log-probs of both halves in one forward, reference log-probs if needed, the loss.

    A loss with ``token_inputs`` gets the per-token quantities it names, the reference's from one
    reference pass whose row sums are also the sequence log-probs.
    Returns (loss output, policy logps (2B,), lengths (2B,), reference logps (2B,) or None).
    """
    wanted = loss_fn.token_inputs
    tokens = None
    if wanted:
        logps, lengths, tokens = policy_token_logps(
            policy, batch, "log_sum_sq_probs" in wanted, autocast
        )
    else:
        logps, lengths = policy_logps(policy, batch, autocast)
    ref_logps = None
    if tokens is not None and "ref_logps" in wanted:
        tokens["ref_logps"] = reference.token_logps(batch)  # (2B, L)
        ref_logps = tokens["ref_logps"].sum(-1)
    elif loss_fn.requires_reference:
        ref_logps = reference.logps(batch)
    out = loss_fn(loss_inputs(loss_fn, logps.float(), lengths, ref_logps, batch, tokens))
    return out, logps, lengths, ref_logps


def accuracy_and_margin(margin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums over (B,) margins r_w - r_l: #[margin > 0] + #[margin = 0] / 2 (a tie is half right)
    and the sum of the margins."""
    margin = margin.detach().float()
    return ((margin > 0).float() + 0.5 * (margin == 0).float()).sum(), margin.sum()


def metric_sums(
    out: LossOutput, logps: torch.Tensor, ref_logps: torch.Tensor | None, paired: bool
) -> dict[str, torch.Tensor]:
    """A micro-batch's training metrics as 0-dim fp32 sums over its B items, left on the device.
    Each name means what it means in a held-out row (:mod:`prefopt.eval.heldout`):

    - loss;
    - paired data: chosen_logps, rejected_logps (the (2B,) log-probs' halves); unpaired data:
      completion_logps and kl_logps (the completions and their mismatched KL sequences);
    - reward_accuracy and reward_margin: of the DPO log-ratio Δ = log pi - log pi_ref, comparable
      across losses (paired data with a reference only);
    - loss_reward_accuracy and loss_reward_margin: of the loss's own rewards, where it gives one
      per pair (their scale and form are the loss's: β Δ for DPO, length-normalised for SimPO);
    - each of the loss's own metrics as its mean times B.

    Accuracies count a tie (margin 0, as at pi = pi_ref) as half right.
    """
    b = logps.shape[0] // 2
    first, second = (
        ("chosen_logps", "rejected_logps") if paired else ("completion_logps", "kl_logps")
    )
    sums = {
        "loss": out.losses.detach().sum(),
        first: logps[:b].detach().sum(),
        second: logps[b:].detach().sum(),
    }
    if paired and ref_logps is not None:
        deltas = logps.detach().float() - ref_logps.float()  # (2B,)
        sums["reward_accuracy"], sums["reward_margin"] = accuracy_and_margin(
            deltas[:b] - deltas[b:]
        )
    if paired and out.chosen_rewards.numel() == out.rejected_rewards.numel() == b:
        sums["loss_reward_accuracy"], sums["loss_reward_margin"] = accuracy_and_margin(
            out.chosen_rewards - out.rejected_rewards
        )
    for name, value in out.metrics.items():
        sums[name] = value.detach().float().mean() * b
    return {name: value.float() for name, value in sums.items()}


def add_sums(totals: dict[str, torch.Tensor], sums: dict[str, torch.Tensor]) -> None:
    """Add a micro-batch's metric sums into the step's ``totals`` (on the device)."""
    for name, value in sums.items():
        totals[name] = totals[name] + value if name in totals else value


@dataclass
class StepValues:
    """A step's numbers on the host, after its one device-to-host transfer."""

    sums: dict[str, float]  # metric -> sum over this process's items of the step
    chunk_losses: list[float]  # each micro-batch's scaled loss, in order
    grad_norm: float | None  # None where the backend reports none (DeepSpeed may not)


def to_host(
    sums: dict[str, torch.Tensor], chunk_losses: list[torch.Tensor], grad_norm, device
) -> StepValues:
    """Move the step's metric sums, micro-batch losses and gradient norm to the host at once.

    ``grad_norm`` is what the accelerator's clipping returned: a tensor, a DTensor (FSDP2), a
    number or None.
    """
    if hasattr(grad_norm, "full_tensor"):  # FSDP2: a DTensor
        grad_norm = grad_norm.full_tensor()
    names = list(sums)
    device_values = [sums[n] for n in names] + chunk_losses
    if torch.is_tensor(grad_norm):
        device_values.append(grad_norm.detach().float().to(device))
    values = torch.stack(device_values).tolist()
    if torch.is_tensor(grad_norm):
        grad_norm = values[-1]
    return StepValues(
        sums=dict(zip(names, values[: len(names)], strict=True)),
        chunk_losses=values[len(names) : len(names) + len(chunk_losses)],
        grad_norm=None if grad_norm is None else float(grad_norm),
    )
