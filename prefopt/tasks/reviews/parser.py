"""A recursive-descent parser (the grammar checker) for prompts and reviews.

Grammar of a response to a prompt about a subject of domain D (terminals in quotes)::

    review   := sentence+
    sentence := clause (conj clause)* "."
    clause   := "the" noun_D copula_n adjp          (copula agrees in number n with the noun)
              | pronoun [verb_adverb] sverb "the" noun_D
    adjp     := [adverb] adjective | "not" adjective

A clause's sentiment is ``scale * value`` with ``value`` the adjective's or verb's sentiment and
``scale`` the adverb's factor (1 without one, ``NEGATION_SCALE`` after "not"). Parsing reports
``complete`` (the words form a review), ``unfinished`` (a proper prefix of a review, the empty
response included) or ``ungrammatical`` (no review starts with these words).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from prefopt.tasks.reviews import lexicon as lx

Status = Literal["complete", "unfinished", "ungrammatical"]


@dataclass(frozen=True)
class Clause:
    noun: str  # the aspect the clause is about
    sentiment: float  # scale * value of the adjective or sentiment verb


@dataclass(frozen=True)
class ParsedReview:
    status: Status
    clauses: tuple[Clause, ...]  # clauses parsed before the parse ended or failed
    n_words: int


class _Incomplete(Exception):
    """The words ran out where the grammar needs more."""


class _Mismatch(Exception):
    """A word that the grammar does not allow here."""


_SINGULAR = {d: frozenset(s) for d, (s, _) in lx.ASPECTS.items()}
_PLURAL = {d: frozenset(p) for d, (_, p) in lx.ASPECTS.items()}


def parse_prompt(prompt: str) -> str:
    """Return the domain of a prompt ``review of the <domain> <name> <place> :``."""
    words = prompt.split()
    lead = len(lx.PROMPT_LEAD)
    if (
        len(words) != lead + 4
        or tuple(words[:lead]) != lx.PROMPT_LEAD
        or words[lead] not in lx.DOMAINS
        or words[lead + 1] not in lx.NAME_WORDS
        or words[lead + 2] not in lx.PLACE_WORDS
        or words[-1] != lx.PROMPT_END
    ):
        raise ValueError(
            f"not a reviews prompt: {prompt!r}; expected 'review of the <domain> <name> <place> :' "
            f"with domain one of {list(lx.DOMAINS)}"
        )
    return words[lead]


def parse_review(domain: str, response: str) -> ParsedReview:
    """Parse a response (words separated by whitespace) as a review of a subject in ``domain``."""
    if domain not in lx.DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; valid: {list(lx.DOMAINS)}")
    words = response.split()
    reader = _Reader(words, domain)
    try:
        reader.review()
    except _Incomplete:
        return ParsedReview("unfinished", tuple(reader.clauses), len(words))
    except _Mismatch:
        return ParsedReview("ungrammatical", tuple(reader.clauses), len(words))
    return ParsedReview("complete", tuple(reader.clauses), len(words))


class _Reader:
    """Consumes words left to right; each method parses one non-terminal."""

    def __init__(self, words: list[str], domain: str):
        self.words, self.pos = words, 0
        self.singular, self.plural = _SINGULAR[domain], _PLURAL[domain]
        self.clauses: list[Clause] = []

    def peek(self) -> str:
        if self.pos >= len(self.words):
            raise _Incomplete
        return self.words[self.pos]

    def take(self, allowed) -> str:
        word = self.peek()
        if word not in allowed:
            raise _Mismatch(word)
        self.pos += 1
        return word

    def review(self) -> None:
        self.sentence()
        while self.pos < len(self.words):
            self.sentence()

    def sentence(self) -> None:
        self.clause()
        while self.peek() != lx.FULL_STOP:
            self.take(lx.CONJUNCTIONS)
            self.clause()
        self.pos += 1

    def clause(self) -> None:
        if self.peek() == lx.DETERMINER:
            self.copula_clause()
        else:
            self.verb_clause()

    def copula_clause(self) -> None:
        self.pos += 1
        noun = self.take(self.singular | self.plural)
        self.take(lx.SINGULAR_COPULAS if noun in self.singular else lx.PLURAL_COPULAS)
        scale = 1.0
        if self.peek() == lx.NEGATION:
            self.pos += 1
            scale = lx.NEGATION_SCALE
        elif self.peek() in lx.ADVERBS:
            scale = lx.ADVERBS[self.take(lx.ADVERBS)]
        value = lx.ADJECTIVES[self.take(lx.ADJECTIVES)]
        self.clauses.append(Clause(noun, scale * value))

    def verb_clause(self) -> None:
        self.take(lx.PRONOUNS)
        scale = 1.0
        if self.peek() in lx.VERB_ADVERBS:
            scale = lx.ADVERBS[self.take(lx.VERB_ADVERBS)]
        value = lx.SENTIMENT_VERBS[self.take(lx.SENTIMENT_VERBS)]
        self.take((lx.DETERMINER,))
        noun = self.take(self.singular | self.plural)
        self.clauses.append(Clause(noun, scale * value))
