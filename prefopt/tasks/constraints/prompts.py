"""Prompts of the constraints task: a request for a review that states 2-4 constraints.

A prompt reads (optional parts in brackets)::

    write a [positive|negative] review of the <domain> [mentioning the <a> [and the <b>]]
        [without the <c>] in <L> words :

Its constraints: the tone (positive or negative), each aspect to mention, the aspect to leave out,
and always a target length of L words; 1-3 content constraints besides the length. Responses are
reviews in the language of the reviews task (``prefopt/tasks/reviews/parser.py``), whose aspects
are the domain's nouns. The *combination* of a request is everything it asks for but the length
(domain, tone, aspects to mention and to leave out): held-out prompts are combinations that no
train prompt has.

A review of c clauses has between 5c and 6c words (each clause has 4 or 5 words and ends with a
conjunction or a full stop), so a target length L can be met exactly by ``clause_counts(L)``
clauses; a request asks for no more aspects than its length has room for.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

from prefopt.tasks.reviews import lexicon as lx

TARGET_LENGTHS: tuple[int, ...] = (5, 11, 17)  # one to three clauses
TONES: tuple[str, ...] = ("positive", "negative")
MAX_MENTIONS = 2  # aspects a request may ask to mention
MAX_CONTENT_CONSTRAINTS = 3  # tone, mentions and the aspect to leave out, together
COMBINATIONS_PER_SHAPE = 50  # most combinations of one domain with the same kinds of constraint

WRITE: tuple[str, ...] = ("write", "a")
REVIEW_OF: tuple[str, ...] = ("review", "of", "the")
MENTIONING, AND, WITHOUT, IN, WORDS, END = "mentioning", "and", "without", "in", "words", ":"


@dataclass(frozen=True)
class Request:
    domain: str  # film, hotel or restaurant (its nouns are the aspects)
    tone: str | None  # "positive", "negative" or None (any tone)
    mentions: tuple[str, ...]  # aspects to mention (0-2, in the lexicon's order)
    avoid: str | None  # an aspect to leave out, or None
    length: int  # target length in words

    @property
    def n_content(self) -> int:
        """Constraints besides the length."""
        return (self.tone is not None) + len(self.mentions) + (self.avoid is not None)

    @property
    def combination(self) -> tuple:
        """Everything the request asks for but the length."""
        return (self.domain, self.tone, self.mentions, self.avoid)

    def prompt(self) -> str:
        words = [*WRITE, *([self.tone] if self.tone else []), *REVIEW_OF, self.domain]
        for i, aspect in enumerate(self.mentions):
            words += [MENTIONING if i == 0 else AND, lx.DETERMINER, aspect]
        if self.avoid is not None:
            words += [WITHOUT, lx.DETERMINER, self.avoid]
        return " ".join([*words, IN, str(self.length), WORDS, END])


def aspects(domain: str) -> tuple[str, ...]:
    """The domain's aspect nouns, singular then plural."""
    singular, plural = lx.ASPECTS[domain]
    return (*singular, *plural)


def clause_counts(length: int) -> range:
    """Numbers of clauses c whose reviews can have exactly ``length`` words (5c <= length <= 6c)."""
    return range(math.ceil(length / 6), length // 5 + 1)


@functools.cache
def all_requests() -> tuple[Request, ...]:
    """Every request of the task, in a fixed order: for each domain and each shape (which of tone,
    one or two mentions and an aspect to leave out it states; 1-3 of them), up to
    ``COMBINATIONS_PER_SHAPE`` combinations spread evenly over their enumeration (so that the
    many pairs of aspects do not crowd out the other shapes), each at every target length with
    room for its mentions."""
    requests = []
    for domain in lx.DOMAINS:
        by_shape: dict[tuple, list[tuple]] = {}
        nouns = aspects(domain)
        for n_mentions in range(MAX_MENTIONS + 1):
            for mentions in itertools.combinations(nouns, n_mentions):
                for avoid in (None, *(n for n in nouns if n not in mentions)):
                    for tone in (None, *TONES):
                        shape = (tone is not None, n_mentions, avoid is not None)
                        if 1 <= sum(shape) <= MAX_CONTENT_CONSTRAINTS:
                            by_shape.setdefault(shape, []).append((tone, mentions, avoid))
        for combinations in by_shape.values():
            step = len(combinations) / min(len(combinations), COMBINATIONS_PER_SHAPE)
            for i in range(min(len(combinations), COMBINATIONS_PER_SHAPE)):
                tone, mentions, avoid = combinations[int(i * step)]
                for length in TARGET_LENGTHS:
                    if max(clause_counts(length)) >= len(mentions):
                        requests.append(Request(domain, tone, mentions, avoid, length))
    return tuple(requests)


def prompt_words() -> list[str]:
    """Every word of a prompt, each once, in a fixed order."""
    words = [*WRITE, *TONES, *REVIEW_OF, *lx.DOMAINS, MENTIONING, AND, lx.DETERMINER, WITHOUT, IN]
    words += [*(str(n) for n in TARGET_LENGTHS), WORDS, END]
    for domain in lx.DOMAINS:
        words += aspects(domain)
    return list(dict.fromkeys(words))


def parse_prompt(prompt: str) -> Request:
    """The request a prompt states; a ValueError for text that is not a prompt of the task (aspects
    to mention in another order than the lexicon's included)."""
    words = prompt.split()
    expected = (
        "'write a [tone] review of the <domain> [mentioning ...] [without ...] in <L> words :'"
    )
    try:
        request = _read(words)
    except (IndexError, ValueError) as exc:
        raise ValueError(
            f"not a constraints prompt: {prompt!r} ({exc}); expected {expected}"
        ) from None
    if request.prompt() != " ".join(words):
        raise ValueError(f"not a constraints prompt: {prompt!r}; expected {expected}")
    return request


def _read(words: list[str]) -> Request:
    pos = len(WRITE)
    tone = words[pos] if words[pos] in TONES else None
    pos += (tone is not None) + len(REVIEW_OF)
    domain = words[pos]
    if domain not in lx.DOMAINS:
        raise ValueError(f"unknown domain {domain!r}")
    nouns = aspects(domain)
    pos += 1
    mentions: list[str] = []
    while words[pos] in (MENTIONING, AND):
        mentions.append(words[pos + 2])
        pos += 3
    avoid = None
    if words[pos] == WITHOUT:
        avoid = words[pos + 2]
        pos += 3
    unknown = [a for a in [*mentions, avoid] if a is not None and a not in nouns]
    if unknown:
        raise ValueError(f"{unknown} are not aspects of a {domain}")
    if len(set(mentions)) < len(mentions) or avoid in mentions:
        raise ValueError("an aspect is named twice")
    length = int(words[pos + 1])
    if length not in TARGET_LENGTHS:
        raise ValueError(f"length {length} is not one of {list(TARGET_LENGTHS)}")
    return Request(domain, tone, tuple(sorted(mentions, key=nouns.index)), avoid, length)
