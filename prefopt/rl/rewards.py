"""The KL-regularised reward of sampled responses, per token (PPO) and per sequence (RLOO).

Training language models to follow instructions with human feedback (InstructGPT).
Ouyang, Wu, Jiang, Almeida, Wainwright, Mishkin et al., arXiv 2203.02155.
Fine-Tuning Language Models from Human Preferences.
Ziegler, Stiennon, Wu, Brown, Radford, Amodei, Christiano, Irving, arXiv 1909.08593.

The RL objective is E[s(x, y)] - beta * KL(pi || pi_ref), with s the score of the whole response
(a reward model's or the gold reward). As built here (InstructGPT; OpenRLHF's ``compute_reward``;
TRL's former PPOTrainer), for response tokens t = 0 .. n-1 (n the response's length):

    s'    = s - missing_eos_penalty * [the response did not end with EOS]
    r_t   = -beta * kl_t + s' * [t = n - 1]          (token_rewards, (B, T))
    R     = s' - beta * sum_t kl_t                   (sequence_rewards, (B,), RLOO's reward)

and 0 on padding. The per-token KL estimator, with log-probs of the sampled token under the policy
that sampled it (log pi) and the reference (log pi_ref):

    k1:  kl_t = log pi - log pi_ref                  (unbiased; negative on some tokens)
    k3:  kl_t = (rho - 1) - log rho,  rho = pi_ref / pi   (Schulman's "Approximating KL
         divergence" estimator: unbiased and never negative)

TRL 1.16's RLOOTrainer uses k1 in its sequence reward (its ``beta``; it has no EOS penalty).
Responses cut off at the length limit without EOS: ``missing_eos_penalty`` is subtracted from
their score, as TRL's ``missing_eos_penalty`` (its former PPOTrainer, its online DPO trainer); the
default 0 (TRL's None) leaves them scored like the others. Rewards are constants of the rollout:
the log-probs are detached here.
"""

from __future__ import annotations

import torch

from prefopt.rl.masks import response_lengths

KL_ESTIMATORS = ("k1", "k3")
DEFAULT_MISSING_EOS_PENALTY = 0.0  # subtracted from the score of a response without EOS


def token_kl(
    logps: torch.Tensor, ref_logps: torch.Tensor, mask: torch.Tensor, estimator: str = "k1"
) -> torch.Tensor:
    """Per-token KL estimate kl_t of the module docstring, 0 on padding.

    logps, ref_logps (B, T) fp: log-probs of the sampled tokens under the policy and the reference;
    mask (B, T) bool, right-padded. Returns (B, T), detached.
    """
    if estimator not in KL_ESTIMATORS:
        raise ValueError(f"unknown KL estimator {estimator!r}; choose one of {KL_ESTIMATORS}")
    if logps.shape != ref_logps.shape or logps.shape != mask.shape:
        raise ValueError(
            f"logps {tuple(logps.shape)}, ref_logps {tuple(ref_logps.shape)} and mask "
            f"{tuple(mask.shape)} must have one shape (B, T)"
        )
    response_lengths(mask)
    mask = mask.bool()
    log_ratio = torch.where(mask, logps.detach() - ref_logps.detach(), 0.0)  # (B, T): log pi/pi_ref
    if estimator == "k1":
        return log_ratio
    return torch.expm1(-log_ratio) + log_ratio  # (B, T): (rho - 1) - log rho, 0 on padding


def penalised_scores(
    scores: torch.Tensor,
    ended_with_eos: torch.Tensor,
    missing_eos_penalty: float = DEFAULT_MISSING_EOS_PENALTY,
) -> torch.Tensor:
    """s' = s - missing_eos_penalty on responses without EOS. scores (B,), ended_with_eos (B,) bool."""
    if scores.dim() != 1 or ended_with_eos.shape != scores.shape:
        raise ValueError(
            f"scores {tuple(scores.shape)} and ended_with_eos {tuple(ended_with_eos.shape)} must "
            "both be (B,)"
        )
    if missing_eos_penalty < 0:
        raise ValueError(f"missing_eos_penalty must be >= 0; got {missing_eos_penalty}")
    penalty = torch.where(ended_with_eos.bool(), 0.0, missing_eos_penalty)  # (B,)
    return scores.detach() - penalty.to(scores)  # (B,)


def token_rewards(
    scores: torch.Tensor,
    logps: torch.Tensor,
    ref_logps: torch.Tensor,
    mask: torch.Tensor,
    kl_coef: float,
    ended_with_eos: torch.Tensor,
    missing_eos_penalty: float = DEFAULT_MISSING_EOS_PENALTY,
    estimator: str = "k1",
) -> torch.Tensor:
    """PPO's per-token rewards r_t = -beta * kl_t, plus s' on each response's last token.

    scores (B,); logps, ref_logps (B, T); mask (B, T) bool, right-padded; ended_with_eos (B,) bool.
    Returns (B, T), 0 on padding.
    """
    _check_kl_coef(kl_coef)
    kl = token_kl(logps, ref_logps, mask, estimator)  # (B, T)
    last = response_lengths(mask) - 1  # (B,)
    final = penalised_scores(scores, ended_with_eos, missing_eos_penalty)  # (B,)
    rewards = -kl_coef * kl  # (B, T)
    return rewards.scatter_add(1, last.unsqueeze(1), final.unsqueeze(1).to(rewards))  # (B, T)


def sequence_rewards(
    scores: torch.Tensor,
    logps: torch.Tensor,
    ref_logps: torch.Tensor,
    mask: torch.Tensor,
    kl_coef: float,
    ended_with_eos: torch.Tensor,
    missing_eos_penalty: float = DEFAULT_MISSING_EOS_PENALTY,
    estimator: str = "k1",
) -> torch.Tensor:
    """RLOO's sequence reward R = s' - beta * sum_t kl_t. Shapes as :func:`token_rewards`; -> (B,)."""
    _check_kl_coef(kl_coef)
    kl = token_kl(logps, ref_logps, mask, estimator).sum(-1)  # (B,)
    return penalised_scores(scores, ended_with_eos, missing_eos_penalty) - kl_coef * kl  # (B,)


def _check_kl_coef(kl_coef: float) -> None:
    if kl_coef < 0:
        raise ValueError(f"kl_coef (beta) must be >= 0; got {kl_coef}")
