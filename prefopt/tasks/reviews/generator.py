"""Random prompts and reviews of the grammar in ``parser.py``: the pre-training corpus of pi_ref.

A review draws a mood (positive, negative or mixed, equally likely) that picks the pool its
adjectives and verbs come from, then ``n`` clauses with ``P(n) proportional to decay**(n-1)`` for
``n = 1..max_clauses``, grouped into sentences of one or two clauses. A clause repeats an aspect
already used with probability ``repeat_prob`` (so that pi_ref shows the repetition the gold reward
penalises).
"""

from __future__ import annotations

import itertools

import numpy as np

from prefopt.tasks.reviews import lexicon as lx

_MOODS: dict[str, tuple[list[str], list[str]]] = {
    "positive": (
        [a for a, v in lx.ADJECTIVES.items() if v > 0],
        [v for v, s in lx.SENTIMENT_VERBS.items() if s > 0],
    ),
    "negative": (
        [a for a, v in lx.ADJECTIVES.items() if v <= 0],
        [v for v, s in lx.SENTIMENT_VERBS.items() if s < 0],
    ),
    "mixed": (list(lx.ADJECTIVES), list(lx.SENTIMENT_VERBS)),
}
_VERB_CLAUSE_PROB = 0.25  # share of clauses of the form "i loved the food"
_ADVERB_PROB = 0.35  # an adverb before the adjective or verb
_NEGATION_PROB = 0.08  # "not" before the adjective
_TWO_CLAUSE_SENTENCE_PROB = 0.4  # a sentence joins two clauses with a conjunction


def all_prompts() -> list[str]:
    """Every prompt of the language, in a fixed order (3 domains x 20 names x 20 places)."""
    return [
        " ".join([*lx.PROMPT_LEAD, domain, name, place, lx.PROMPT_END])
        for domain, name, place in itertools.product(lx.DOMAINS, lx.NAME_WORDS, lx.PLACE_WORDS)
    ]


def clause_count_probs(max_clauses: int, decay: float) -> np.ndarray:
    """P(n clauses) for n = 1..max_clauses, proportional to decay**(n-1). Shape (max_clauses,)."""
    if max_clauses < 1 or decay <= 0:
        raise ValueError(f"need max_clauses >= 1 and decay > 0, got {max_clauses}, {decay}")
    weights = decay ** np.arange(max_clauses, dtype=np.float64)
    return weights / weights.sum()


def sample_review(
    rng: np.random.Generator, domain: str, *, max_clauses: int, decay: float, repeat_prob: float
) -> str:
    """One random review of a subject in ``domain``."""
    adjectives, verbs = _MOODS[str(rng.choice(list(_MOODS)))]
    singular, plural = lx.ASPECTS[domain]
    nouns = [*singular, *plural]
    n_clauses = 1 + int(rng.choice(max_clauses, p=clause_count_probs(max_clauses, decay)))
    used: list[str] = []
    clauses = []
    for _ in range(n_clauses):
        fresh = [n for n in nouns if n not in used]
        pool = used if used and (rng.random() < repeat_prob or not fresh) else fresh
        noun = str(rng.choice(pool))
        used.append(noun)
        clauses.append(_clause(rng, noun, noun in singular, adjectives, verbs))
    return join_sentences(rng, clauses)


def join_sentences(rng: np.random.Generator, clauses: list[str]) -> str:
    """Clauses grouped into sentences of one clause, or of two joined by a conjunction."""
    sentences, i = [], 0
    n_clauses = len(clauses)
    while i < n_clauses:
        if i + 1 < n_clauses and rng.random() < _TWO_CLAUSE_SENTENCE_PROB:
            conj = str(rng.choice(lx.CONJUNCTIONS))
            sentences.append(f"{clauses[i]} {conj} {clauses[i + 1]} {lx.FULL_STOP}")
            i += 2
        else:
            sentences.append(f"{clauses[i]} {lx.FULL_STOP}")
            i += 1
    return " ".join(sentences)


def _clause(
    rng: np.random.Generator, noun: str, singular: bool, adjectives: list[str], verbs: list[str]
) -> str:
    if rng.random() < _VERB_CLAUSE_PROB:
        words = [str(rng.choice(lx.PRONOUNS))]
        if rng.random() < _ADVERB_PROB:
            words.append(str(rng.choice(lx.VERB_ADVERBS)))
        words += [str(rng.choice(verbs)), lx.DETERMINER, noun]
        return " ".join(words)
    copulas = lx.SINGULAR_COPULAS if singular else lx.PLURAL_COPULAS
    words = [lx.DETERMINER, noun, str(rng.choice(copulas))]
    u = rng.random()
    if u < _NEGATION_PROB:
        words.append(lx.NEGATION)
    elif u < _NEGATION_PROB + _ADVERB_PROB:
        words.append(str(rng.choice(list(lx.ADVERBS))))
    words.append(str(rng.choice(adjectives)))
    return " ".join(words)
