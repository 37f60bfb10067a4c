"""Held-out preference metrics that compare across losses.

Whatever the loss, each held-out pair is scored with the same DPO-style implicit reward, the log-ratio
against pi_ref: Δ_w = log pi(y_w|x) - log pi_ref(y_w|x), Δ_l likewise. reward_accuracy = mean[Δ_w > Δ_l]
(a tie counts one half), reward_margin = mean[Δ_w - Δ_l]: the definitions of the training rows
(:func:`prefopt.trainer.step.metric_sums`), as are loss_reward_accuracy and loss_reward_margin, of the
loss's own rewards (a paired loss that gives one per pair). The held-out loss is the run's own loss on
the same pairs (in its own data format), computed by the training step's forward
(:func:`prefopt.trainer.step.forward_loss`), for a paired loss in the same pass as the implicit
rewards. A run trained by an objective of its own (an online algorithm such as RLOO) has no preference
loss: its rows hold the implicit-reward metrics without ``loss`` and ``loss_reward_*``.
bayes_accuracy = mean[max(p, 1 - p)] over pairs
whose true preference probability p is known: the accuracy ceiling of any model on these labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from prefopt.losses import PreferenceLoss
from prefopt.trainer.batching import collate, to_device
from prefopt.trainer.items import TrainItem
from prefopt.trainer.step import accuracy_and_margin, forward_loss, policy_logps


@torch.no_grad()
def heldout_metrics(
    policy: torch.nn.Module,
    loss_fn: PreferenceLoss | None,
    pairs: Sequence[TrainItem],
    loss_items: Sequence[TrainItem],
    pair_reference,
    loss_reference,
    pad_id: int,
    batch_size: int,
    device: torch.device,
) -> dict[str, float]:
    """Implicit-reward accuracy and margin on ``pairs``, and the loss on ``loss_items``.

    When ``loss_items`` is ``pairs`` (a paired loss), the loss comes from the same forward; with
    ``loss_fn`` None there is no loss.
    """
    was_training = policy.training
    policy.eval()
    if loss_fn is not None:
        loss_fn.eval()
    shared = loss_fn is not None and loss_items is pairs
    deltas_w, deltas_l, chosen, rejected, losses, own_margins = [], [], [], [], [], []
    # Length-sorted chunks keep padding small; every metric is a mean over all pairs.
    order = sorted(range(len(pairs)), key=lambda i: pairs[i].num_tokens)
    for start in range(0, len(order), batch_size):
        batch = to_device(collate(pairs, order[start : start + batch_size], pad_id), device)
        if shared:  # the loss and the implicit rewards from one forward
            out, logps, _, ref = forward_loss(policy, loss_fn, pair_reference, batch)
            losses.append(out.losses)
            if out.chosen_rewards.numel() == out.rejected_rewards.numel() == len(out.losses):
                own_margins.append(out.chosen_rewards - out.rejected_rewards)
        else:
            (logps, _), ref = policy_logps(policy, batch), None
        if ref is None:  # a reference-free loss, or the loss's items are not these pairs
            ref = pair_reference.logps(batch)
        b = logps.shape[0] // 2
        deltas_w.append(logps[:b] - ref[:b])
        deltas_l.append(logps[b:] - ref[b:])
        chosen.append(logps[:b])
        rejected.append(logps[b:])
    for start in range(0, 0 if shared or loss_fn is None else len(loss_items), batch_size):
        indices = range(start, min(start + batch_size, len(loss_items)))
        batch = to_device(collate(loss_items, indices, pad_id), device)
        out, *_ = forward_loss(policy, loss_fn, loss_reference, batch)
        losses.append(out.losses)
    policy.train(was_training)
    if loss_fn is not None:
        loss_fn.train(was_training)
    dw, dl = torch.cat(deltas_w), torch.cat(deltas_l)  # (N,)
    correct, margin = accuracy_and_margin(dw - dl)
    metrics = {"loss": torch.cat(losses).mean().item()} if losses else {}
    metrics |= {
        "reward_accuracy": correct.item() / len(dw),
        "reward_margin": margin.item() / len(dw),
        "chosen_rewards": dw.mean().item(),
        "rejected_rewards": dl.mean().item(),
        "chosen_logps": torch.cat(chosen).mean().item(),
        "rejected_logps": torch.cat(rejected).mean().item(),
    }
    if own_margins:
        correct, margin = accuracy_and_margin(torch.cat(own_margins))
        metrics["loss_reward_accuracy"] = correct.item() / len(dw)
        metrics["loss_reward_margin"] = margin.item() / len(dw)
    probs = [it.meta.get("preference_prob") for it in pairs]
    if probs and all(p is not None for p in probs):
        p = torch.tensor(probs, dtype=torch.float64)
        metrics["bayes_accuracy"] = torch.maximum(p, 1 - p).mean().item()
    return metrics
