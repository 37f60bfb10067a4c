"""The reviews task's SFT demonstrations: complete reviews that meet each property the gold reward
asks for (target sentiment, target_clauses clauses, distinct aspects) on purpose with
follow_prob, and by the base generator's chance otherwise."""

import numpy as np
import pytest

from prefopt.tasks.reviews import lexicon as lx
from prefopt.tasks.reviews.generator import sample_demonstration
from prefopt.tasks.reviews.parser import parse_review

LANGUAGE = {"max_clauses": 6, "decay": 0.5, "repeat_prob": 0.1}  # the reviews task's defaults


def _demonstrations(follow_prob, target_sentiment="positive", target_clauses=3, n=600, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for domain in rng.choice(lx.DOMAINS, size=n):
        review = sample_demonstration(
            rng,
            str(domain),
            target_sentiment=target_sentiment,
            target_clauses=target_clauses,
            follow_prob=follow_prob,
            **LANGUAGE,
        )
        out.append(parse_review(str(domain), review))
    return out


@pytest.mark.parametrize("follow_prob", [0.0, 0.5, 1.0])
def test_every_demonstration_is_a_complete_review(follow_prob):
    assert all(p.status == "complete" for p in _demonstrations(follow_prob))


@pytest.mark.parametrize(("target_sentiment", "sign"), [("positive", 1), ("negative", -1)])
def test_following_always_meets_every_property(target_sentiment, sign):
    for parsed in _demonstrations(1.0, target_sentiment=target_sentiment, target_clauses=4):
        assert len(parsed.clauses) == 4
        assert len({c.noun for c in parsed.clauses}) == 4
        assert all(np.sign(c.sentiment) == sign for c in parsed.clauses), parsed


def test_at_one_half_the_length_is_met_half_of_the_time_plus_chance():
    """Followed with probability 1/2, else drawn with P(n) proportional to 0.5**(n-1) over 1..6:
    P(3 clauses) = 1/2 + 1/2 * 0.25 / (1 + 0.5 + 0.25 + 0.125 + 0.0625 + 0.03125)."""
    parsed = _demonstrations(0.5, n=4000)
    met = np.array([len(p.clauses) == 3 for p in parsed])
    expected = 0.5 + 0.5 * 0.25 / 1.96875
    se = np.sqrt(expected * (1 - expected) / met.size)
    assert abs(met.mean() - expected) < 4 * se


def test_not_following_leaves_repetition_and_other_lengths():
    parsed = _demonstrations(0.0, n=2000)
    assert any(len({c.noun for c in p.clauses}) < len(p.clauses) for p in parsed)
    assert len({len(p.clauses) for p in parsed}) >= 5


def test_bad_settings_are_refused():
    rng = np.random.default_rng(0)
    common = {"target_clauses": 3, **LANGUAGE}
    with pytest.raises(ValueError, match=r"follow_prob must be in \[0, 1\], got 1.5"):
        sample_demonstration(rng, "film", target_sentiment="positive", follow_prob=1.5, **common)
    with pytest.raises(ValueError, match="target_sentiment 'neutral'"):
        sample_demonstration(rng, "film", target_sentiment="neutral", follow_prob=0.5, **common)
