"""Random prompts and reviews of the grammar in ``parser.py``: the corpora of pi_ref's two stages.

The base generator (``sample_review``, the pre-training corpus): a review draws a mood (positive,
negative or mixed, equally likely) that picks the pool its adjectives and verbs come from, then
``n`` clauses with ``P(n) proportional to decay**(n-1)`` for ``n = 1..max_clauses``, grouped into
sentences of one or two clauses. A clause repeats an aspect already used with probability
``repeat_prob`` (so that pi_ref shows the repetition the gold reward penalises).

The demonstrations (``sample_demonstration``, the SFT corpus) meet each property the gold reward
asks for on purpose with probability ``follow_prob``, decided independently, and leave it to the
base generator's chance otherwise:

- the target sentiment: followed, every clause takes an adjective or verb of the target's sign and
  no "not"; else a mood is drawn as above;
- the length: followed, exactly ``target_clauses`` clauses; else ``n`` is drawn as above;
- distinct aspects: followed, no aspect repeats; else a clause repeats one with ``repeat_prob``.

Every review of either generator is complete (it ends with a full stop).
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
# target sentiment -> (adjectives, verbs) of that sign only (a followed target sentiment)
_TARGET_WORDS: dict[str, tuple[list[str], list[str]]] = {
    "positive": _MOODS["positive"],
    "negative": (
        [a for a, v in lx.ADJECTIVES.items() if v < 0],
        [v for v, s in lx.SENTIMENT_VERBS.items() if s < 0],
    ),
}
_VERB_CLAUSE_PROB = 0.25  # share of clauses of the form "i loved the food"
_ADVERB_PROB = 0.35  # an adverb before the adjective or verb
_NEGATION_PROB = 0.08  # "not" before the adjective (never in a clause of a followed sentiment)
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
    """One random review of a subject in ``domain`` (the base generator)."""
    adjectives, verbs = _MOODS[str(rng.choice(list(_MOODS)))]
    n_clauses = 1 + int(rng.choice(max_clauses, p=clause_count_probs(max_clauses, decay)))
    return _review(rng, domain, adjectives, verbs, n_clauses, repeat_prob, _NEGATION_PROB)


def sample_demonstration(
    rng: np.random.Generator,
    domain: str,
    *,
    target_sentiment: str,
    target_clauses: int,
    follow_prob: float,
    max_clauses: int,
    decay: float,
    repeat_prob: float,
) -> str:
    """One review of a subject in ``domain`` that meets the target sentiment, the target number of
    clauses and distinct aspects, each with probability ``follow_prob`` (module docstring)."""
    if not 0 <= follow_prob <= 1:
        raise ValueError(f"follow_prob must be in [0, 1], got {follow_prob}")
    if target_sentiment not in _TARGET_WORDS:
        raise ValueError(f"target_sentiment {target_sentiment!r}; valid: {list(_TARGET_WORDS)}")
    follow_sentiment, follow_length, follow_distinct = rng.random(3) < follow_prob
    if follow_sentiment:
        adjectives, verbs = _TARGET_WORDS[target_sentiment]
    else:
        adjectives, verbs = _MOODS[str(rng.choice(list(_MOODS)))]
    if follow_length:
        n_clauses = target_clauses
    else:
        n_clauses = 1 + int(rng.choice(max_clauses, p=clause_count_probs(max_clauses, decay)))
    return _review(
        rng,
        domain,
        adjectives,
        verbs,
        n_clauses,
        repeat_prob=0.0 if follow_distinct else repeat_prob,
        negation_prob=0.0 if follow_sentiment else _NEGATION_PROB,
    )


def _review(
    rng: np.random.Generator,
    domain: str,
    adjectives: list[str],
    verbs: list[str],
    n_clauses: int,
    repeat_prob: float,
    negation_prob: float,
) -> str:
    """``n_clauses`` clauses about aspects of ``domain`` (one repeats an aspect already used with
    probability ``repeat_prob``), grouped into sentences."""
    singular, plural = lx.ASPECTS[domain]
    nouns = [*singular, *plural]
    used: list[str] = []
    clauses = []
    for _ in range(n_clauses):
        fresh = [n for n in nouns if n not in used]
        pool = used if used and (rng.random() < repeat_prob or not fresh) else fresh
        noun = str(rng.choice(pool))
        used.append(noun)
        clauses.append(_clause(rng, noun, noun in singular, adjectives, verbs, negation_prob))
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
    rng: np.random.Generator,
    noun: str,
    singular: bool,
    adjectives: list[str],
    verbs: list[str],
    negation_prob: float,
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
    if u < negation_prob:
        words.append(lx.NEGATION)
    elif u < negation_prob + _ADVERB_PROB:
        words.append(str(rng.choice(list(lx.ADVERBS))))
    words.append(str(rng.choice(adjectives)))
    return " ".join(words)
