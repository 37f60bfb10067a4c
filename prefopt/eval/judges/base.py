"""The judge interface: rewards for single responses or preferences between two."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from prefopt.eval.stats import preferences_from_scores


class Judge:
    """Scores responses to prompts.

    A pointwise judge gives each (prompt, response) a reward via :meth:`score`; its :meth:`compare`
    follows from the rewards (1 if a scores higher, 0.5 on a tie, 0 otherwise). A pairwise judge has
    only :meth:`compare`, which returns P(a is better than b) in [0, 1].
    """

    name: str = "judge"
    pointwise: bool = True

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """Rewards (N,) of the responses; pointwise judges only."""
        raise TypeError(f"judge {self.name!r} is pairwise: it has compare() but no score()")

    def compare(
        self, prompts: Sequence[str], responses_a: Sequence[str], responses_b: Sequence[str]
    ) -> np.ndarray:
        """P(a better than b) (N,) in [0, 1]."""
        scores_a = check_scores(self.score(prompts, responses_a), len(prompts), self.name)
        scores_b = check_scores(self.score(prompts, responses_b), len(prompts), self.name)
        return preferences_from_scores(scores_a, scores_b)

    def response_metrics(
        self, prompts: Sequence[str], responses: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """Extra per-response metrics (name -> (N,) array) to average, NaN where one does not
        apply to a response; none by default."""
        return {}


def check_scores(values, n: int, judge_name: str) -> np.ndarray:
    """``values`` as a float64 (n,) array of finite numbers, else a ValueError saying why."""
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (n,):
        raise ValueError(
            f"judge {judge_name!r} returned shape {array.shape} for {n} responses; expected ({n},)"
        )
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(
            f"judge {judge_name!r} returned {bad.size} non-finite values (first at index {bad[0]})"
        )
    return array


def check_preferences(values, n: int, judge_name: str) -> np.ndarray:
    """Like :func:`check_scores`, and every value must lie in [0, 1]."""
    array = check_scores(values, n, judge_name)
    if ((array < 0) | (array > 1)).any():
        raise ValueError(f"judge {judge_name!r} returned preferences outside [0, 1]")
    return array
