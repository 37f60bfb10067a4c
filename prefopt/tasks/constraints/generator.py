"""Random responses to a request that meet each of its constraints only part of the time.

For each constraint the request states, the generator decides independently, with probability
``follow_prob``, to meet it; a constraint it does not follow is left to chance:

- tone: followed, every clause takes a word of that sign (no "not"), so the mean sentiment has it;
  else a mood is drawn (positive, negative or mixed, equally likely) as in the reviews task;
- an aspect to mention: followed, one clause is about it; else the clauses' aspects are random;
- the aspect to leave out: followed, no clause is about it; else it may come up at random;
- the length: followed, the review has exactly the target length (``clause_counts``, some clauses
  of five words); else ``n`` clauses with ``P(n) proportional to clause_decay**(n-1)``, at least as
  many as the aspects it follows the request to mention.

At ``follow_prob = 1`` every response is optimal (gold reward 1); at 0 the response ignores the
request but for its domain. Aspects of a review are distinct while the domain has enough.
"""

from __future__ import annotations

import numpy as np

from prefopt.tasks.constraints.prompts import Request, aspects, clause_counts
from prefopt.tasks.reviews import lexicon as lx
from prefopt.tasks.reviews.generator import clause_count_probs, join_sentences

VERB_CLAUSE_PROB = 0.25  # share of clauses of the form "i loved the food"
MODIFIER_PROB = 0.35  # a clause of free length has five words (an adverb, or "not")
NEGATION_PROB = 0.2  # share of "not" among five-word copula clauses, when the tone is not followed

_WORDS_BY_MOOD: dict[str, tuple[list[str], list[str]]] = {  # mood -> (adjectives, verbs)
    "positive": (
        [a for a, v in lx.ADJECTIVES.items() if v > 0],
        [v for v, s in lx.SENTIMENT_VERBS.items() if s > 0],
    ),
    "negative": (
        [a for a, v in lx.ADJECTIVES.items() if v < 0],
        [v for v, s in lx.SENTIMENT_VERBS.items() if s < 0],
    ),
    "mixed": (list(lx.ADJECTIVES), list(lx.SENTIMENT_VERBS)),
}


def sample_response(
    rng: np.random.Generator,
    request: Request,
    *,
    follow_prob: float,
    max_clauses: int,
    clause_decay: float,
) -> str:
    """One review answering ``request``, each constraint followed with probability ``follow_prob``."""
    if not 0 <= follow_prob <= 1:
        raise ValueError(f"follow_prob must be in [0, 1], got {follow_prob}")
    follow = rng.random(3 + len(request.mentions)) < follow_prob  # tone, avoid, length, mentions
    follow_tone = request.tone is not None and bool(follow[0])
    banned = {request.avoid} if request.avoid is not None and follow[1] else set()
    required = [m for m, f in zip(request.mentions, follow[3:], strict=True) if f]
    mood = request.tone if follow_tone else str(rng.choice(list(_WORDS_BY_MOOD)))
    if follow[2]:
        counts = [c for c in clause_counts(request.length) if c >= len(required)]
        n_clauses = int(rng.choice(counts))
        five = rng.permutation(n_clauses) < request.length - 5 * n_clauses
        sizes = [5 if f else 4 for f in five]
    else:
        drawn = 1 + int(rng.choice(max_clauses, p=clause_count_probs(max_clauses, clause_decay)))
        n_clauses = max(drawn, len(required))
        sizes = [5 if u < MODIFIER_PROB else 4 for u in rng.random(n_clauses)]
    pool = [n for n in aspects(request.domain) if n not in banned and n not in required]
    n_free = n_clauses - len(required)
    free = rng.choice(pool, size=n_free, replace=n_free > len(pool)).tolist()
    nouns = [(required + free)[i] for i in rng.permutation(n_clauses)]
    singular = set(lx.ASPECTS[request.domain][0])
    clauses = [
        _clause(rng, noun, noun in singular, mood, size, negation=not follow_tone)
        for noun, size in zip(nouns, sizes, strict=True)
    ]
    return join_sentences(rng, clauses)


def _clause(
    rng: np.random.Generator, noun: str, singular: bool, mood: str, size: int, *, negation: bool
) -> str:
    """A clause of ``size`` (4 or 5) words about ``noun`` with a word of ``mood``."""
    adjectives, verbs = _WORDS_BY_MOOD[mood]
    if rng.random() < VERB_CLAUSE_PROB:
        adverb = [str(rng.choice(lx.VERB_ADVERBS))] if size == 5 else []
        words = [str(rng.choice(lx.PRONOUNS)), *adverb, str(rng.choice(verbs)), lx.DETERMINER, noun]
        return " ".join(words)
    copula = str(rng.choice(lx.SINGULAR_COPULAS if singular else lx.PLURAL_COPULAS))
    words = [lx.DETERMINER, noun, copula]
    if size == 5:
        use_not = negation and rng.random() < NEGATION_PROB
        words.append(lx.NEGATION if use_not else str(rng.choice(list(lx.ADVERBS))))
    words.append(str(rng.choice(adjectives)))
    return " ".join(words)
