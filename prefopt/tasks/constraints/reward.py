"""The gold reward r*(x, y) of the constraints task: the share of the request's constraints a review
meets, minus its distance from the target length.

For a response that parses as a complete review of the request's domain (the reviews grammar,
``prefopt/tasks/reviews/parser.py``) with clauses c_1..c_n and w words, and a request with k content
constraints and target length L (``prompts.py``)::

    r* = (number of content constraints met) / k  -  length_penalty * |w - L|

where the tone "positive" is met if mean_i sentiment(c_i) > 0 ("negative": < 0), an aspect to
mention if some clause is about it, and the aspect to leave out if none is. The maximum, 1, is
reached by a review that meets every constraint in exactly L words, which every request has (the
generator at ``follow_prob = 1`` writes one). The reward is graded: each constraint moves it by 1/k,
each word of distance by ``length_penalty``, whether the best response is longer or shorter
depending on the prompt.

An unfinished response (a proper prefix of a review; also one cut at ``max_new_tokens``) scores
``unfinished_reward`` and an ungrammatical one ``ungrammatical_reward``: cliff values, by default
-0.5, the reward of a review that meets no constraint and misses the length by 10 words, so that
they do not dominate the reward's variance (``prefopt/tasks/cliffs.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from prefopt.tasks.constraints.prompts import Request, parse_prompt
from prefopt.tasks.reviews.parser import ParsedReview, parse_review


@dataclass(frozen=True)
class Verdict:
    """What a response does with a request's constraints."""

    status: str  # complete, unfinished or ungrammatical (the reviews parser's)
    n_words: int
    n_clauses: int  # clauses parsed (before the parse ended or failed)
    tone: (
        bool | None
    )  # the tone is met; None if the request states none or the review is not complete
    mentions: tuple[bool, ...]  # each aspect to mention is; () if the review is not complete
    avoid: bool | None  # the aspect to leave out is left out; None if none or not complete

    @property
    def met(self) -> list[bool]:
        """One flag per content constraint of a complete review."""
        flags = [self.tone, *self.mentions, self.avoid]
        return [bool(f) for f in flags if f is not None]


def judge(request: Request, parsed: ParsedReview) -> Verdict:
    """The verdict on a parsed response to ``request``."""
    n_clauses = len(parsed.clauses)
    if parsed.status != "complete":
        return Verdict(parsed.status, parsed.n_words, n_clauses, None, (), None)
    nouns = {c.noun for c in parsed.clauses}
    sentiment = float(np.mean([c.sentiment for c in parsed.clauses]))
    tone = None
    if request.tone is not None:
        tone = sentiment > 0 if request.tone == "positive" else sentiment < 0
    return Verdict(
        status=parsed.status,
        n_words=parsed.n_words,
        n_clauses=n_clauses,
        tone=tone,
        mentions=tuple(m in nouns for m in request.mentions),
        avoid=None if request.avoid is None else request.avoid not in nouns,
    )


@dataclass(frozen=True)
class ConstraintReward:
    length_penalty: float = 0.05
    unfinished_reward: float = -0.5
    ungrammatical_reward: float = -0.5

    def verdicts(self, prompts: Sequence[str], responses: Sequence[str]) -> list[Verdict]:
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        requests = [parse_prompt(p) for p in prompts]
        return [
            judge(q, parse_review(q.domain, r)) for q, r in zip(requests, responses, strict=True)
        ]

    def score(self, request: Request, verdict: Verdict) -> float:
        if verdict.status == "ungrammatical":
            return self.ungrammatical_reward
        if verdict.status == "unfinished":
            return self.unfinished_reward
        met = verdict.met
        return sum(met) / len(met) - self.length_penalty * abs(verdict.n_words - request.length)

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """Gold rewards, shape (N,) float64."""
        verdicts = self.verdicts(prompts, responses)
        return np.array(
            [self.score(parse_prompt(p), v) for p, v in zip(prompts, verdicts, strict=True)],
            dtype=np.float64,
        )

    def metrics(self, prompts: Sequence[str], responses: Sequence[str]) -> dict[str, np.ndarray]:
        """Per-response facts, each shape (N,): grammatical, unfinished (bool); n_words, n_clauses
        (int); and, NaN where the review is not complete or the request states no such constraint
        (float64): constraints_met (share of content constraints), tone_met, mentions_met (share of
        the aspects to mention), avoid_met, length_error (|w - L| words), optimal (1 if every
        constraint is met at the target length)."""
        requests = [parse_prompt(p) for p in prompts]
        verdicts = self.verdicts(prompts, responses)
        complete = np.array([v.status == "complete" for v in verdicts], dtype=bool)

        def where_complete(values) -> np.ndarray:
            out = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
            return np.where(complete, out, np.nan)

        length_error = where_complete(
            [abs(v.n_words - q.length) for q, v in zip(requests, verdicts, strict=True)]
        )
        constraints_met = where_complete([np.mean(v.met) if v.met else None for v in verdicts])
        return {
            "grammatical": complete,
            "unfinished": np.array([v.status == "unfinished" for v in verdicts], dtype=bool),
            "n_words": np.array([v.n_words for v in verdicts], dtype=np.int64),
            "n_clauses": np.array([v.n_clauses for v in verdicts], dtype=np.int64),
            "constraints_met": constraints_met,
            "tone_met": where_complete([v.tone for v in verdicts]),
            "mentions_met": where_complete(
                [np.mean(v.mentions) if v.mentions else None for v in verdicts]
            ),
            "avoid_met": where_complete([v.avoid for v in verdicts]),
            "length_error": length_error,
            "optimal": np.where(complete, (constraints_met == 1) & (length_error == 0), np.nan),
        }
