"""How much room pi_ref leaves: best-of-n selected by the gold reward against one pi_ref sample.

For each prompt, ``n + 1`` independent samples of pi_ref: the best of the first ``n`` by gold
reward against the last one, a win counting 1 and a tie 1/2. The win rate is the mean over
prompts. With continuous rewards and no ties it is ``n / (n + 1)`` whatever pi_ref is (the fresh
sample is the best of all ``n + 1`` with probability ``1 / (n + 1)``); it falls towards 1/2 where
pi_ref's samples tie, e.g. where most of them already reach the same (optimal) reward or fail
with the same cliff value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from prefopt.models.sampling import sample_responses
from prefopt.tasks.preferences import RewardFn

BEST_OF = 16  # samples the best-of-n selection draws per prompt (info.json: best_of_16_win_rate)


def best_of_n_wins(rewards: np.ndarray) -> np.ndarray:
    """Per prompt, 1 where the best of ``rewards[:, :-1]`` beats ``rewards[:, -1]``, 1/2 on a tie,
    else 0. ``rewards``: (P, n + 1); returns (P,)."""
    rewards = np.asarray(rewards, dtype=np.float64)  # (P, n + 1)
    if rewards.ndim != 2 or rewards.shape[1] < 2:
        raise ValueError(f"rewards must be (P, n + 1) with n >= 1, got {rewards.shape}")
    best, fresh = rewards[:, :-1].max(axis=1), rewards[:, -1]  # (P,)
    return (best > fresh) + 0.5 * (best == fresh)


def best_of_n_win_rate(
    model,
    tokenizer,
    prompts: Sequence[str],
    reward_fn: RewardFn,
    *,
    seed: int,
    max_new_tokens: int,
    temperature: float,
    batch_size: int,
    n: int = BEST_OF,
) -> float:
    """Share of ``prompts`` where the best of ``n`` samples of ``model`` by ``reward_fn`` beats one
    fresh sample (ties count 1/2), from ``n + 1`` samples per prompt drawn with ``seed``."""
    repeated = [p for p in prompts for _ in range(n + 1)]
    texts = sample_responses(
        model,
        tokenizer,
        tokenizer(repeated)["input_ids"],
        max_new_tokens=max_new_tokens,
        seed=seed,
        temperature=temperature,
        batch_size=batch_size,
    ).texts
    rewards = reward_fn(repeated, texts).reshape(len(prompts), n + 1)  # (P, n + 1)
    return float(best_of_n_wins(rewards).mean())
