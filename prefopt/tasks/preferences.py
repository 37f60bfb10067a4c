"""Preference pairs and unpaired labels sampled from pi_ref and labelled by a gold reward.

Two independent samples a, b for the same prompt, with gold rewards r_a, r_b, form a pair if
``|r_a - r_b| >= min_gap``. The label follows Bradley-Terry with a temperature T,

    P(a > b) = sigmoid((r_a - r_b) / T)        (T = 0: the higher reward wins),

and is then flipped with probability ``flip_rate``. The Bayes-optimal accuracy of a set of pairs
(the best any reward model can do on its labels in expectation) is

    mean_i [(1 - f) * q_i + f * (1 - q_i)],   q_i = max(P_i, 1 - P_i).

An unpaired completion with reward r is desirable with probability ``sigmoid((r - threshold) / T)``,
then flipped with probability ``flip_rate``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prefopt.models.sampling import sample_responses

RewardFn = Callable[[Sequence[str], Sequence[str]], np.ndarray]


def bradley_terry_prob(delta: np.ndarray, temperature: float) -> np.ndarray:
    """sigmoid(delta / T) elementwise; for T = 0 the step function (1/2 at delta = 0)."""
    delta = np.asarray(delta, dtype=np.float64)
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return np.where(delta > 0, 1.0, np.where(delta < 0, 0.0, 0.5))
    return 0.5 * (1.0 + np.tanh(delta / (2.0 * temperature)))


def noisy_labels(
    rng: np.random.Generator, prob_true: np.ndarray, flip_rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """Draw label ~ Bernoulli(prob_true), then flip it with probability flip_rate.

    Returns (labels, flipped_by_noise), both bool with the shape of prob_true.
    """
    if not 0 <= flip_rate <= 0.5:
        raise ValueError(f"flip_rate must be in [0, 0.5], got {flip_rate}")
    labels = rng.random(prob_true.shape) < prob_true
    flips = rng.random(prob_true.shape) < flip_rate
    return labels ^ flips, flips


def bayes_accuracy(prob_a: np.ndarray, flip_rate: float) -> float:
    """Expected accuracy of predicting the higher-reward response (formula in the module doc)."""
    q = np.maximum(prob_a, 1.0 - prob_a)
    return float(np.mean((1.0 - flip_rate) * q + flip_rate * (1.0 - q)))


@dataclass
class SampledPairs:
    prompts: list[str]  # (P,) one per kept pair
    a: list[str]
    b: list[str]
    reward_a: np.ndarray  # (P,)
    reward_b: np.ndarray  # (P,)
    all_prompts: list[str]  # every sample drawn, kept or not
    all_texts: list[str]
    all_rewards: np.ndarray


def sample_pairs(
    model,
    tokenizer,
    prompts: Sequence[str],
    reward_fn: RewardFn,
    *,
    n_pairs: int,
    min_gap: float,
    seed: int,
    max_new_tokens: int,
    temperature: float,
    batch_size: int,
    max_rounds: int = 20,
) -> SampledPairs:
    """Sample pairs from ``model`` for prompts taken in a seeded cyclic order until ``n_pairs``
    have a reward gap of at least ``min_gap``."""
    if n_pairs < 1 or not prompts:
        raise ValueError(f"need n_pairs >= 1 and some prompts, got {n_pairs}, {len(prompts)}")
    order = np.random.default_rng(seed).permutation(len(prompts))
    kept: list[tuple[str, str, str, float, float]] = []
    all_p: list[str] = []
    all_t: list[str] = []
    all_r: list[np.ndarray] = []
    keep_rate, cursor = 0.8, 0
    for round_ in range(max_rounds):
        need = n_pairs - len(kept)
        if need <= 0:
            break
        n_draw = math.ceil(need / max(keep_rate, 0.05) * 1.1) + 4
        pair_prompts = [prompts[order[(cursor + i) % len(prompts)]] for i in range(n_draw)]
        cursor += n_draw
        doubled = [p for p in pair_prompts for _ in range(2)]
        ids = tokenizer(doubled)["input_ids"]
        texts = sample_responses(
            model,
            tokenizer,
            ids,
            max_new_tokens=max_new_tokens,
            seed=seed * 1000 + round_,
            temperature=temperature,
            batch_size=batch_size,
        ).texts
        rewards = reward_fn(doubled, texts)
        all_p += doubled
        all_t += texts
        all_r.append(rewards)
        ra, rb = rewards[0::2], rewards[1::2]
        good = np.abs(ra - rb) >= min_gap
        keep_rate = float(good.mean())
        for i in np.flatnonzero(good)[:need]:
            kept.append((pair_prompts[i], texts[2 * i], texts[2 * i + 1], ra[i], rb[i]))
    if len(kept) < n_pairs:
        raise ValueError(
            f"only {len(kept)} of {n_pairs} pairs reached min_reward_gap={min_gap} after "
            f"{max_rounds} rounds; lower min_reward_gap"
        )
    return SampledPairs(
        prompts=[k[0] for k in kept],
        a=[k[1] for k in kept],
        b=[k[2] for k in kept],
        reward_a=np.array([k[3] for k in kept], dtype=np.float64),
        reward_b=np.array([k[4] for k in kept], dtype=np.float64),
        all_prompts=all_p,
        all_texts=all_t,
        all_rewards=np.concatenate(all_r),
    )


def pair_records(
    pairs: SampledPairs, rng: np.random.Generator, *, temperature: float, flip_rate: float
) -> tuple[list[dict], float]:
    """Label the pairs; return the records and their Bayes-optimal accuracy."""
    prob_a = bradley_terry_prob(pairs.reward_a - pairs.reward_b, temperature)  # (P,)
    a_wins, _ = noisy_labels(rng, prob_a, flip_rate)
    records = []
    for i, prompt in enumerate(pairs.prompts):
        win, lose = (pairs.a[i], pairs.b[i]) if a_wins[i] else (pairs.b[i], pairs.a[i])
        r_w, r_l = (
            (pairs.reward_a[i], pairs.reward_b[i])
            if a_wins[i]
            else (pairs.reward_b[i], pairs.reward_a[i])
        )
        records.append(
            {
                "prompt": prompt,
                "chosen": win,
                "rejected": lose,
                "chosen_reward": float(r_w),
                "rejected_reward": float(r_l),
                "preference_prob": float(bradley_terry_prob(np.array(r_w - r_l), temperature)),
                "flipped": bool(r_w < r_l),
            }
        )
    return records, bayes_accuracy(prob_a, flip_rate)


def unpaired_records(
    pairs: SampledPairs,
    rng: np.random.Generator,
    *,
    threshold: float,
    temperature: float,
    flip_rate: float,
) -> list[dict]:
    """Both completions of every pair, each labelled desirable or not against ``threshold``."""
    prompts = [p for p in pairs.prompts for _ in range(2)]
    completions = [c for ab in zip(pairs.a, pairs.b, strict=True) for c in ab]
    rewards = np.stack([pairs.reward_a, pairs.reward_b], axis=1).reshape(-1)  # (2P,)
    labels, _ = noisy_labels(rng, bradley_terry_prob(rewards - threshold, temperature), flip_rate)
    return [
        {"prompt": p, "completion": c, "label": bool(y), "reward": float(r)}
        for p, c, y, r in zip(prompts, completions, labels, rewards, strict=True)
    ]


def write_jsonl(path: Path, records: Sequence[dict]) -> None:
    """One JSON object per line, keys in insertion order."""
    with open(path, "w") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
