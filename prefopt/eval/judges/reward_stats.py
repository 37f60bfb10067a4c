"""What is measured of a pointwise reward model on preference pairs: accuracy, its Bayes ceiling
and the moments of its rewards (the proxy reward model reports them and normalises by the last)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from prefopt.eval.judges.base import Judge
from prefopt.eval.stats import preferences_from_scores

PAIR_KEYS = ("prompt", "chosen", "rejected")
PROB_KEY = "preference_prob"  # the true P(chosen > rejected), where the data knows it


def check_pairs(pairs: Sequence[Mapping], what: str, *, keep_prob: bool = False) -> list[dict]:
    """The pairs as {prompt, chosen, rejected} strings (plus a float ``preference_prob`` in [0, 1]
    with ``keep_prob``, where a pair has one); ValueError naming the first bad pair's index."""
    checked = []
    for i, pair in enumerate(pairs):
        missing = [k for k in PAIR_KEYS if k not in pair]
        if missing:
            raise ValueError(f"{what} pair {i} lacks {missing}; each needs keys {PAIR_KEYS}")
        row = {k: str(pair[k]) for k in PAIR_KEYS}
        if keep_prob and pair.get(PROB_KEY) is not None:
            prob = float(pair[PROB_KEY])
            if not (math.isfinite(prob) and 0.0 <= prob <= 1.0):
                raise ValueError(f"{what} pair {i} has {PROB_KEY}={prob}, outside [0, 1]")
            row[PROB_KEY] = prob
        checked.append(row)
    return checked


def pair_scores(judge: Judge, pairs: Sequence[Mapping]) -> tuple[np.ndarray, np.ndarray]:
    """The judge's rewards (P,) of the chosen and (P,) of the rejected responses."""
    prompts = [p["prompt"] for p in pairs]
    chosen = judge.score(prompts, [p["chosen"] for p in pairs])  # (P,)
    rejected = judge.score(prompts, [p["rejected"] for p in pairs])  # (P,)
    return chosen, rejected


def heldout_report(judge: Judge, pairs: Sequence[Mapping]) -> dict[str, float | int]:
    """``heldout_accuracy``: the share of pairs with r(chosen) > r(rejected), ties counting half;
    ``heldout_pairs``: their count; ``bayes_accuracy`` = mean max(p, 1 - p) over the pairs, the
    expected accuracy of the true preference's own choice (no model does better on these labels),
    only when every pair has its ``preference_prob`` p."""
    chosen, rejected = pair_scores(judge, pairs)
    report: dict[str, float | int] = {
        "heldout_accuracy": float(preferences_from_scores(chosen, rejected).mean()),
        "heldout_pairs": len(pairs),
    }
    probs = [p.get(PROB_KEY) for p in pairs]
    if all(p is not None for p in probs):
        prob = np.asarray(probs, dtype=np.float64)  # (P,)
        report["bayes_accuracy"] = float(np.maximum(prob, 1.0 - prob).mean())
    return report


def reward_moments(judge: Judge, pairs: Sequence[Mapping]) -> dict[str, float]:
    """``reward_mean`` and ``reward_std`` (population) of the judge's rewards over the pairs'
    2P responses, chosen and rejected."""
    rewards = np.concatenate(pair_scores(judge, pairs))  # (2P,)
    return {"reward_mean": float(rewards.mean()), "reward_std": float(rewards.std())}
