"""The built-in task's exact gold reward as a judge."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from prefopt.eval.judges.base import Judge


class GoldJudge(Judge):
    """Pointwise judge r(x, y) = task.gold_reward(x, y); forwards the task's response metrics."""

    name = "gold"
    pointwise = True

    def __init__(self, task):
        self.task = task

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        return np.asarray(self.task.gold_reward(list(prompts), list(responses)), dtype=np.float64)

    def response_metrics(
        self, prompts: Sequence[str], responses: Sequence[str]
    ) -> dict[str, np.ndarray]:
        return dict(self.task.response_metrics(list(prompts), list(responses)))
