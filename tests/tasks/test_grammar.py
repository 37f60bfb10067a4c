"""The grammar checker accepts every sample of the grammar and rejects corrupted ones."""

import numpy as np
import pytest

from prefopt.tasks.reviews import lexicon as lx
from prefopt.tasks.reviews.generator import all_prompts, clause_count_probs, sample_review
from prefopt.tasks.reviews.parser import parse_prompt, parse_review


def _samples(n=600, seed=0):
    rng = np.random.default_rng(seed)
    prompts = all_prompts()
    out = []
    for i in rng.integers(len(prompts), size=n):
        domain = parse_prompt(prompts[i])
        out.append((domain, sample_review(rng, domain, max_clauses=6, decay=0.7, repeat_prob=0.2)))
    return out


def test_prompts_are_distinct_and_parse():
    prompts = all_prompts()
    assert len(prompts) == len(set(prompts)) == 3 * 20 * 20
    assert {parse_prompt(p) for p in prompts} == set(lx.DOMAINS)
    with pytest.raises(ValueError, match="not a reviews prompt"):
        parse_prompt("review of the zoo red river :")


def test_every_generated_review_is_complete():
    for domain, review in _samples():
        parsed = parse_review(domain, review)
        assert parsed.status == "complete", (domain, review)
        assert len(parsed.clauses) == review.count(".") + sum(
            review.split().count(c) for c in lx.CONJUNCTIONS
        )


def test_clause_sentiments_worked_by_hand():
    parsed = parse_review(
        "restaurant",
        "the food was very good but the prices were not bad . i really hated the soup .",
    )
    assert parsed.status == "complete"
    assert [c.noun for c in parsed.clauses] == ["food", "prices", "soup"]
    # very good = 1.3 * 0.5; not bad = -0.5 * -0.7; really hated = 1.3 * -1.0
    np.testing.assert_allclose([c.sentiment for c in parsed.clauses], [0.65, 0.35, -1.3])


def _other_domain_noun(domain: str, rng) -> str:
    own = set().union(*lx.ASPECTS[domain])
    foreign = sorted(set().union(*[set().union(*v) for v in lx.ASPECTS.values()]) - own)
    return str(rng.choice(foreign))


def _corrupt(domain: str, words: list[str], kind: str, rng) -> list[str]:
    words = list(words)
    if kind == "foreign_noun":
        nouns = set().union(*lx.ASPECTS[domain])
        i = next(i for i, w in enumerate(words) if w in nouns)
        words[i] = _other_domain_noun(domain, rng)
    elif kind == "copula_number":
        singular, plural = lx.ASPECTS[domain]
        copulas = {*lx.SINGULAR_COPULAS, *lx.PLURAL_COPULAS}
        i = next(
            (i for i, w in enumerate(words[:-1]) if w in plural and words[i + 1] in copulas), None
        )
        j = next(
            (i for i, w in enumerate(words[:-1]) if w in singular and words[i + 1] in copulas), None
        )
        if i is not None:
            words[i + 1] = "was"  # plural noun, singular copula
        elif j is not None:
            words[j + 1] = "were"  # singular noun, plural copula
        else:  # only verb clauses: a copula after the pronoun
            i = next(i for i, w in enumerate(words) if w in lx.SENTIMENT_VERBS)
            words[i] = "was"
    elif kind == "swap_first_two":
        words[0], words[1] = words[1], words[0]
    elif kind == "double_determiner":
        i = words.index(lx.DETERMINER)
        words.insert(i, lx.DETERMINER)
    elif kind == "unknown_word":
        words.insert(int(rng.integers(len(words))), "banana")
    elif kind == "adjective_for_noun":
        nouns = set().union(*lx.ASPECTS[domain])
        i = next(i for i, w in enumerate(words) if w in nouns)
        words[i] = "good"
    return words


@pytest.mark.parametrize(
    "kind",
    [
        "foreign_noun",
        "copula_number",
        "swap_first_two",
        "double_determiner",
        "unknown_word",
        "adjective_for_noun",
    ],
)
def test_corrupted_reviews_are_ungrammatical(kind):
    rng = np.random.default_rng(1)
    for domain, review in _samples(200):
        corrupted = " ".join(_corrupt(domain, review.split(), kind, rng))
        assert parse_review(domain, corrupted).status == "ungrammatical", (kind, corrupted)


def test_cut_reviews_are_unfinished():
    rng = np.random.default_rng(2)
    for domain, review in _samples(200):
        words = review.split()
        ends = [k for k in range(len(words)) if k == 0 or words[k - 1] != "."]  # mid-sentence
        cut = " ".join(words[: int(rng.choice(ends))])
        assert parse_review(domain, cut).status == "unfinished", cut
    assert parse_review("film", "").status == "unfinished"


def test_clause_count_probs():
    np.testing.assert_allclose(clause_count_probs(3, 0.5), [4 / 7, 2 / 7, 1 / 7])
    with pytest.raises(ValueError):
        clause_count_probs(0, 0.5)
