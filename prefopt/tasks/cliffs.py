"""How much of a reward's variance its cliff values explain.

A gold reward may give fixed values to failures (an unparseable or unfinished response). Grouping
responses by outcome g (valid, or each kind of failure), the share of the variance the groups
explain is the between-group sum of squares over the total (eta squared, the R^2 of regressing the
reward on the group indicators)::

    share = sum_g n_g (mean_g - mean)^2 / sum_i (r_i - mean)^2

With fixed cliff values the failure groups have no variance of their own, so ``1 - share`` is the
part of the variance that the valid responses' rewards carry. A share near 1 means the reward
mostly says whether a response failed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def cliff_variance_share(rewards: np.ndarray, outcomes: Sequence[str]) -> float:
    """Share of the variance of ``rewards`` (N,) explained by ``outcomes`` (N,); NaN if the rewards
    do not vary."""
    rewards = np.asarray(rewards, dtype=np.float64)  # (N,)
    outcomes = np.asarray(outcomes)  # (N,)
    if rewards.shape != outcomes.shape or rewards.ndim != 1:
        raise ValueError(f"rewards {rewards.shape} and outcomes {outcomes.shape} must be (N,)")
    total = float(np.sum((rewards - rewards.mean()) ** 2))
    if total == 0:
        return float("nan")
    between = sum(
        float(np.sum(group)) * (float(rewards[group].mean()) - float(rewards.mean())) ** 2
        for group in (outcomes == g for g in np.unique(outcomes))
    )
    return between / total
