"""The gold reward r*(x, y) of a review: target sentiment, elaboration, and a judge's penalties.

For a response that parses as a complete review with clauses c_1..c_n (``parser.py``) and w words::

    r* = sign * mean_i sentiment(c_i)                      (sign +1 for target "positive", -1 for "negative")
         + elaboration_bonus * min(n, target_clauses)      (some elaboration is rewarded ...)
         - rambling_penalty  * max(0, n - target_clauses)  (... rambling is not)
         - repetition_penalty * (n - #distinct aspects)    (saying the same aspect twice)
         - runaway_penalty   * max(0, w - max_words)       (runaway length)

An unfinished response (a proper prefix of a review, e.g. cut before its end of sequence) scores
``unfinished_reward`` and an ungrammatical one ``ungrammatical_reward``, both below any complete
review's reward. The reward reads text only: a response cut at ``max_new_tokens`` ends mid-sentence
and so counts as unfinished.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from prefopt.tasks.reviews.parser import ParsedReview, parse_prompt, parse_review

TARGET_SIGNS = {"positive": 1.0, "negative": -1.0}


@dataclass(frozen=True)
class GoldReward:
    target_sentiment: str = "positive"
    target_clauses: int = 3
    elaboration_bonus: float = 0.5
    rambling_penalty: float = 0.75
    repetition_penalty: float = 0.5
    max_words: int = 40
    runaway_penalty: float = 0.1
    unfinished_reward: float = -2.0
    ungrammatical_reward: float = -3.0

    def __post_init__(self):
        if self.target_sentiment not in TARGET_SIGNS:
            raise ValueError(
                f"target_sentiment {self.target_sentiment!r}; valid: {list(TARGET_SIGNS)}"
            )

    def parse(self, prompts: Sequence[str], responses: Sequence[str]) -> list[ParsedReview]:
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        return [parse_review(parse_prompt(p), r) for p, r in zip(prompts, responses, strict=True)]

    def score(self, parsed: ParsedReview) -> float:
        if parsed.status == "ungrammatical":
            return self.ungrammatical_reward
        if parsed.status == "unfinished":
            return self.unfinished_reward
        n = len(parsed.clauses)
        sentiment = float(np.mean([c.sentiment for c in parsed.clauses]))
        repeats = n - len({c.noun for c in parsed.clauses})
        return (
            TARGET_SIGNS[self.target_sentiment] * sentiment
            + self.elaboration_bonus * min(n, self.target_clauses)
            - self.rambling_penalty * max(0, n - self.target_clauses)
            - self.repetition_penalty * repeats
            - self.runaway_penalty * max(0, parsed.n_words - self.max_words)
        )

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """Gold rewards, shape (N,) float64."""
        return np.array([self.score(p) for p in self.parse(prompts, responses)], dtype=np.float64)

    def metrics(self, prompts: Sequence[str], responses: Sequence[str]) -> dict[str, np.ndarray]:
        """Per-response facts, each shape (N,): grammatical/unfinished (bool), n_clauses, n_words,
        repeats (int), sentiment (float64, NaN where no clause parsed)."""
        parsed = self.parse(prompts, responses)
        return {
            "grammatical": np.array([p.status == "complete" for p in parsed], dtype=bool),
            "unfinished": np.array([p.status == "unfinished" for p in parsed], dtype=bool),
            "n_clauses": np.array([len(p.clauses) for p in parsed], dtype=np.int64),
            "n_words": np.array([p.n_words for p in parsed], dtype=np.int64),
            "repeats": np.array(
                [len(p.clauses) - len({c.noun for c in p.clauses}) for p in parsed], dtype=np.int64
            ),
            "sentiment": np.array(
                [
                    np.mean([c.sentiment for c in p.clauses]) if p.clauses else np.nan
                    for p in parsed
                ],
                dtype=np.float64,
            ),
        }
