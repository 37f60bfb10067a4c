"""Advantages: GAE over per-token rewards (PPO), whitening, and RLOO's leave-one-out baseline.

High-Dimensional Continuous Control Using Generalized Advantage Estimation.
Schulman, Moritz, Levine, Jordan, Abbeel, arXiv 1506.02438.
Back to Basics: Revisiting REINFORCE Style Optimization for Learning from Human Feedback in LLMs.
Ahmadian, Cremer, Galle, Fadaee, Kreutzer, Pietquin, Ustun, Hooker, arXiv 2402.14740.

GAE, as built over right-padded responses of n tokens (the value after the last token is 0: the
episode ends there, EOS or not):

    delta_t = r_t + gamma * V_{t+1} - V_t,   V_n = 0
    A_t     = delta_t + gamma * lam * A_{t+1},   A_n = 0
    returns_t = A_t + V_t                       (the value model's target)

gamma is the discount (1 in TRL's former PPOConfig and OpenRLHF's defaults, lam 0.95 there);
lam trades bias (lam = 0: one-step TD) against variance (lam = 1: Monte Carlo return minus V).

Whitening (TRL's former ``masked_whiten``): (x - mean) / sqrt(var + eps) over the masked entries,
var unbiased (n - 1); ``shift_mean=False`` adds the mean back (scale only), as TRL whitened rewards.

RLOO: for k samples per prompt with rewards R_1..R_k, A_i = R_i - (1 / (k - 1)) sum_{j != i} R_j,
i.e. the mean of the other k - 1 samples is the baseline (TRL 1.16's RLOOTrainer, all samples
scorable).
"""

from __future__ import annotations

import torch

from prefopt.rl.masks import masked_mean, masked_var, response_lengths

WHITEN_EPS = 1e-8  # added to the variance before the square root (TRL's masked_whiten)


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimates and returns.

    rewards, values (B, T) fp; mask (B, T) bool, right-padded. Returns (advantages (B, T),
    returns (B, T)), both detached and 0 on padding; padded rewards and values are ignored.
    """
    if rewards.shape != values.shape or rewards.shape != mask.shape:
        raise ValueError(
            f"rewards {tuple(rewards.shape)}, values {tuple(values.shape)} and mask "
            f"{tuple(mask.shape)} must have one shape (B, T)"
        )
    if not (0.0 <= gamma <= 1.0 and 0.0 <= lam <= 1.0):
        raise ValueError(f"gamma and lam must lie in [0, 1]; got gamma={gamma}, lam={lam}")
    response_lengths(mask)
    mask = mask.bool()
    rewards = torch.where(mask, rewards.detach(), 0.0)  # (B, T)
    values = torch.where(mask, values.detach(), 0.0)  # (B, T): V_t = 0 from the end of a response
    advantages = torch.zeros_like(rewards)  # (B, T)
    next_value = torch.zeros_like(rewards[:, 0])  # (B,): V_{t+1}
    next_advantage = torch.zeros_like(rewards[:, 0])  # (B,): A_{t+1}
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]  # (B,): 0 on padding
        next_advantage = delta + gamma * lam * next_advantage  # (B,)
        advantages[:, t] = next_advantage
        next_value = values[:, t]
    return advantages, advantages + values  # (B, T), (B, T)


def masked_whiten(
    values: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True
) -> torch.Tensor:
    """(values - mean) / sqrt(var + eps) over the masked entries (mean kept if not ``shift_mean``).

    values (B, T) fp; mask (B, T) bool, right-padded, with at least two True entries. -> (B, T),
    0 on padding.
    """
    if values.shape != mask.shape:
        raise ValueError(f"values {tuple(values.shape)} and mask {tuple(mask.shape)} differ")
    response_lengths(mask)
    mean, var = masked_mean(values, mask), masked_var(values, mask)  # (), ()
    whitened = (values - mean) * torch.rsqrt(var + WHITEN_EPS)  # (B, T)
    if not shift_mean:
        whitened = whitened + mean
    return torch.where(mask.bool(), whitened, 0.0)  # (B, T)


def rloo_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """Leave-one-out advantages A_i = R_i - mean_{j != i} R_j within each prompt's group.

    rewards (P, k): k sampled responses for each of P prompts. -> (P, k), detached.
    """
    if rewards.dim() != 2:
        raise ValueError(f"RLOO rewards are (prompts, k samples); got shape {tuple(rewards.shape)}")
    k = rewards.shape[1]
    if k < 2:
        raise ValueError(
            f"RLOO needs k >= 2 samples per prompt (the baseline is the mean of the other k - 1); "
            f"got k={k}"
        )
    rewards = rewards.detach()
    baselines = (rewards.sum(1, keepdim=True) - rewards) / (k - 1)  # (P, k)
    return rewards - baselines  # (P, k)
