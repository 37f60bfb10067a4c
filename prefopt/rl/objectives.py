"""PPO's clipped policy and value losses, and RLOO's policy loss.

Proximal Policy Optimization Algorithms.
Schulman, Wolski, Dhariwal, Radford, Klimov, arXiv 1707.06347.
Back to Basics: Revisiting REINFORCE Style Optimization for Learning from Human Feedback in LLMs.
Ahmadian, Cremer, Galle, Fadaee, Kreutzer, Pietquin, Ustun, Hooker, arXiv 2402.14740.

With the ratio rho = exp(log pi - log pi_old) of the policy being trained to the one that sampled,
and eps_low, eps_high the clip range (both eps in the paper):

    L_clip = -min(rho * A, clip(rho, 1 - eps_low, 1 + eps_high) * A)

PPO (``ppo_policy_loss``) applies it per token, with A the (whitened) GAE advantage, and averages
over all response tokens of the batch (TRL's former PPOTrainer; a token-level mean, so long
responses weigh more than in a per-sequence mean). The value loss (``value_loss``), as TRL and
OpenRLHF build it, with V_old the rollout's values and c the value clip range:

    L_V = 0.5 * mean_t max((V - G)^2, (V_old + clip(V - V_old, -c, c) - G)^2)

(the 0.5 makes its gradient V - G; TRL then scales it by ``vf_coef``, the caller's business).

RLOO (``rloo_policy_loss``) applies L_clip per sequence, rho = exp(sum_t log pi - sum_t log
pi_old) and A the leave-one-out advantage, averaged over sequences: TRL 1.16's RLOOTrainer loss.
On a fresh rollout (pi_old = pi, one update per batch) rho = 1, the loss's value is -mean(A) and
its gradient is exactly REINFORCE's, -mean_i A_i * grad sum_t log pi(y_i,t), the paper's
estimator; the clip only acts on later updates of the same rollout.

Diagnostics: ``clip_fraction`` is the share of tokens (PPO) or sequences (RLOO) whose term is
clipped (rho past 1 + eps_high with A > 0 or below 1 - eps_low with A < 0: no gradient there);
``approx_kl`` is Schulman's k3 estimate of KL(pi_old || pi), mean of (rho - 1) - log rho.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from prefopt.rl.masks import masked_mean, response_lengths

VALUE_LOSS_SCALE = 0.5  # L_V's factor: its gradient is V - G (TRL, OpenRLHF)


@dataclass(frozen=True)
class PolicyLoss:
    """A clipped policy loss and its diagnostics (all () scalars; the diagnostics detached)."""

    loss: torch.Tensor
    clip_fraction: torch.Tensor
    approx_kl: torch.Tensor  # k3 estimate of KL(pi_old || pi)
    ratio_mean: torch.Tensor


@dataclass(frozen=True)
class ValueLoss:
    """PPO's clipped value loss and the share of tokens where the clipped error is larger."""

    loss: torch.Tensor  # ()
    clip_fraction: torch.Tensor  # (), detached


def clipped_surrogate(
    log_ratio: torch.Tensor, advantages: torch.Tensor, eps_low: float, eps_high: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Elementwise L_clip, rho and whether the term is clipped, for log rho and A of one shape."""
    if not (0.0 < eps_low < 1.0 and eps_high > 0.0):
        raise ValueError(f"need 0 < eps_low < 1 and eps_high > 0; got {eps_low}, {eps_high}")
    ratio = torch.exp(log_ratio)  # (...)
    advantages = advantages.detach()
    unclipped = ratio * advantages  # (...)
    clipped = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high) * advantages  # (...)
    return -torch.minimum(unclipped, clipped), ratio, clipped < unclipped


def ppo_policy_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float,
    clip_eps_high: float | None = None,
) -> PolicyLoss:
    """PPO's per-token clipped surrogate, averaged over the batch's response tokens.

    logps (B, T) fp with gradient: the policy's log-probs of the sampled tokens; old_logps (B, T):
    the sampling policy's; advantages (B, T); mask (B, T) bool, right-padded. ``clip_eps_high``
    defaults to ``clip_eps`` (symmetric clip).
    """
    if not logps.shape == old_logps.shape == advantages.shape == mask.shape:
        raise ValueError(
            f"logps {tuple(logps.shape)}, old_logps {tuple(old_logps.shape)}, advantages "
            f"{tuple(advantages.shape)} and mask {tuple(mask.shape)} must have one shape (B, T)"
        )
    response_lengths(mask)
    mask = mask.bool()
    log_ratio = torch.where(mask, logps - old_logps.detach(), 0.0)  # (B, T)
    advantages = torch.where(mask, advantages, 0.0)  # (B, T)
    high = clip_eps if clip_eps_high is None else clip_eps_high
    losses, ratio, clipped = clipped_surrogate(log_ratio, advantages, clip_eps, high)  # (B, T) x3
    return _policy_loss(masked_mean(losses, mask), ratio, clipped, mask)


def rloo_policy_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float,
    clip_eps_high: float | None = None,
) -> PolicyLoss:
    """RLOO's loss: the clipped surrogate on each sequence's ratio, averaged over sequences.

    logps, old_logps (B, T) fp (as :func:`ppo_policy_loss`); advantages (B,): one per sequence
    (:func:`prefopt.rl.advantages.rloo_advantages` flattened prompt-major); mask (B, T) bool.
    """
    if logps.shape != old_logps.shape or logps.shape != mask.shape:
        raise ValueError(
            f"logps {tuple(logps.shape)}, old_logps {tuple(old_logps.shape)} and mask "
            f"{tuple(mask.shape)} must have one shape (B, T)"
        )
    if advantages.shape != logps.shape[:1]:
        raise ValueError(
            f"advantages must be (B,) = {tuple(logps.shape[:1])}; got {tuple(advantages.shape)}"
        )
    response_lengths(mask)
    mask = mask.bool()
    log_ratio = torch.where(mask, logps - old_logps.detach(), 0.0).sum(-1)  # (B,)
    high = clip_eps if clip_eps_high is None else clip_eps_high
    losses, ratio, clipped = clipped_surrogate(log_ratio, advantages, clip_eps, high)  # (B,) x3
    every = torch.ones_like(clipped)  # (B,)
    return _policy_loss(losses.mean(), ratio, clipped, every)


def _policy_loss(loss, ratio, clipped, mask) -> PolicyLoss:
    """PolicyLoss with the masked means of the diagnostics (ratio, clipped, mask of one shape)."""
    with torch.no_grad():
        k3 = ratio - 1.0 - torch.log(ratio)  # (...): (rho - 1) - log rho
        return PolicyLoss(
            loss=loss,
            clip_fraction=masked_mean(clipped.to(ratio.dtype), mask),
            approx_kl=masked_mean(k3, mask),
            ratio_mean=masked_mean(ratio, mask),
        )


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip_range: float,
) -> ValueLoss:
    """PPO's clipped value loss L_V of the module docstring.

    values (B, T) fp with gradient: the value model's predictions; old_values (B, T): the
    rollout's; returns (B, T): the GAE returns G; mask (B, T) bool, right-padded.
    """
    if not values.shape == old_values.shape == returns.shape == mask.shape:
        raise ValueError(
            f"values {tuple(values.shape)}, old_values {tuple(old_values.shape)}, returns "
            f"{tuple(returns.shape)} and mask {tuple(mask.shape)} must have one shape (B, T)"
        )
    response_lengths(mask)
    mask = mask.bool()
    errors, clipped = clipped_value_errors(values, old_values, returns, clip_range)  # (B, T) x2
    with torch.no_grad():
        fraction = masked_mean(clipped.to(values.dtype), mask)
    return ValueLoss(loss=masked_mean(errors, mask), clip_fraction=fraction)


def clipped_value_errors(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, clip_range: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Elementwise 0.5 max((V - G)^2, (V_old + clip(V - V_old, -c, c) - G)^2) and whether the
    clipped error is the larger, for V, V_old and G of one shape."""
    if clip_range <= 0:
        raise ValueError(f"clip_range must be > 0; got {clip_range}")
    old_values, returns = old_values.detach(), returns.detach()
    clipped_values = old_values + torch.clamp(values - old_values, -clip_range, clip_range)
    unclipped_error = (values - returns) ** 2  # (...)
    clipped_error = (clipped_values - returns) ** 2  # (...)
    errors = VALUE_LOSS_SCALE * torch.maximum(unclipped_error, clipped_error)  # (...)
    return errors, clipped_error > unclipped_error
