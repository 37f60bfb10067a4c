"""The words of the reviews language and what each one means.

A review is about a subject in one of three domains (film, hotel, restaurant); each domain has its own
aspect nouns, singular or plural, and the copula must agree in number with the noun. Adjectives and
sentiment verbs carry a sentiment value in [-1, 1]; adverbs scale it; ``not`` before an adjective
multiplies it by ``NEGATION_SCALE``.
"""

from __future__ import annotations

DOMAINS: tuple[str, ...] = ("film", "hotel", "restaurant")

# domain -> (singular aspect nouns, plural aspect nouns)
ASPECTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "film": (
        ("plot", "acting", "script", "ending", "soundtrack", "pacing", "dialogue", "director"),
        ("actors", "effects", "costumes", "characters", "scenes", "jokes"),
    ),
    "hotel": (
        ("room", "bed", "breakfast", "view", "pool", "location", "lobby", "bathroom"),
        ("rooms", "staff", "towels", "pillows", "prices", "corridors"),
    ),
    "restaurant": (
        ("food", "service", "menu", "wine", "dessert", "soup", "atmosphere", "waiter"),
        ("portions", "prices", "starters", "chefs", "desserts", "tables"),
    ),
}

ADJECTIVES: dict[str, float] = {
    "brilliant": 1.0,
    "superb": 1.0,
    "wonderful": 0.9,
    "excellent": 0.9,
    "great": 0.8,
    "lovely": 0.7,
    "charming": 0.6,
    "good": 0.5,
    "pleasant": 0.5,
    "nice": 0.4,
    "decent": 0.3,
    "fine": 0.2,
    "okay": 0.0,
    "average": 0.0,
    "ordinary": -0.1,
    "bland": -0.3,
    "mediocre": -0.4,
    "dull": -0.5,
    "poor": -0.6,
    "bad": -0.7,
    "awful": -0.9,
    "terrible": -1.0,
    "dreadful": -1.0,
}

# adverb -> factor applied to the sentiment of the adjective or verb it modifies
ADVERBS: dict[str, float] = {
    "extremely": 1.6,
    "truly": 1.5,
    "very": 1.3,
    "really": 1.3,
    "quite": 0.8,
    "rather": 0.7,
    "somewhat": 0.5,
    "slightly": 0.4,
}
VERB_ADVERBS: tuple[str, ...] = ("truly", "really")  # adverbs that may precede a sentiment verb

SENTIMENT_VERBS: dict[str, float] = {
    "loved": 1.0,
    "adored": 1.0,
    "enjoyed": 0.6,
    "liked": 0.4,
    "disliked": -0.5,
    "hated": -1.0,
}
PRONOUNS: tuple[str, ...] = ("i", "we")
SINGULAR_COPULAS: tuple[str, ...] = ("was", "is", "felt", "seemed")
PLURAL_COPULAS: tuple[str, ...] = ("were", "are", "felt", "seemed")
CONJUNCTIONS: tuple[str, ...] = ("and", "but")
NEGATION = "not"
NEGATION_SCALE = -0.5
DETERMINER = "the"
FULL_STOP = "."

# prompt: "review of the <domain> <name> <place> :"
PROMPT_LEAD: tuple[str, ...] = ("review", "of", "the")
PROMPT_END = ":"
NAME_WORDS: tuple[str, ...] = (
    "red", "blue", "green", "silver", "golden", "old", "little", "grand", "quiet", "northern",
    "royal", "crystal", "hidden", "velvet", "wild", "amber", "iron", "sunny", "misty", "paper",
)  # fmt: skip
PLACE_WORDS: tuple[str, ...] = (
    "river", "garden", "harbour", "moon", "lantern", "star", "oak", "castle", "bridge", "island",
    "tower", "meadow", "fox", "crown", "mountain", "forest", "anchor", "owl", "valley", "door",
)  # fmt: skip


def response_words() -> list[str]:
    """Every word a review may use (aspects of every domain included), each once, in a fixed order."""
    words: list[str] = []
    for singular, plural in ASPECTS.values():
        words += [*singular, *plural]
    words += [*ADJECTIVES, *ADVERBS, *SENTIMENT_VERBS, *PRONOUNS]
    words += [*SINGULAR_COPULAS, *PLURAL_COPULAS, *CONJUNCTIONS, NEGATION, DETERMINER, FULL_STOP]
    return list(dict.fromkeys(words))


def all_words() -> list[str]:
    """Every word of prompts and responses, each once, in a fixed order."""
    prompt_words = [*PROMPT_LEAD, *DOMAINS, *NAME_WORDS, *PLACE_WORDS, PROMPT_END]
    return list(dict.fromkeys([*prompt_words, *response_words()]))
