"""The gold reward: hand-worked values, penalties, determinism, shapes."""

import numpy as np
import pytest

from prefopt.tasks.reviews.reward import GoldReward

PROMPT = "review of the restaurant red river :"
REWARD = GoldReward(
    target_sentiment="positive",
    target_clauses=3,
    elaboration_bonus=0.4,
    rambling_penalty=0.5,
    repetition_penalty=0.6,
    max_words=12,
    runaway_penalty=0.1,
    unfinished_reward=-2.0,
    ungrammatical_reward=-3.0,
)


def test_hand_worked_rewards():
    responses = [
        "the food was great .",  # 0.8 + 0.4 * 1
        "the food was great and i loved the wine .",  # mean(0.8, 1.0) + 0.4 * 2
        # 4 clauses, 20 words: mean(0.8, -0.7, 0.5, 1.0) + 0.4 * 3 - 0.5 * 1 - 0.1 * (20 - 12)
        "the food was great . the wine was bad . the soup was good . i loved the menu .",
        "the food was great . the food was great .",  # 0.8 + 0.4 * 2 - 0.6 * 1
        "the food was",  # unfinished
        "the plot was great .",  # a film aspect in a restaurant review
    ]
    expected = [
        1.2,
        0.9 + 0.8,
        0.4 + 1.2 - 0.5 - 0.8,
        0.8 + 0.8 - 0.6,
        -2.0,
        -3.0,
    ]
    np.testing.assert_allclose(REWARD([PROMPT] * len(responses), responses), expected)


def test_negative_target_flips_sentiment_only():
    negative = GoldReward(target_sentiment="negative", elaboration_bonus=0.4)
    np.testing.assert_allclose(negative([PROMPT], ["the food was great ."]), [-0.8 + 0.4])
    with pytest.raises(ValueError, match="positive"):
        GoldReward(target_sentiment="neutral")


def test_deterministic_and_vectorised():
    rng = np.random.default_rng(0)
    words = ["the", "food", "wine", "was", "were", "great", "bad", "and", "but", ".", "i", "loved"]
    responses = [" ".join(rng.choice(words, size=int(rng.integers(1, 15)))) for _ in range(300)]
    prompts = [PROMPT] * len(responses)
    first, second = REWARD(prompts, responses), REWARD(prompts, list(responses))
    assert first.shape == (300,) and first.dtype == np.float64
    np.testing.assert_array_equal(first, second)
    metrics = REWARD.metrics(prompts, responses)
    assert set(metrics) >= {"grammatical", "unfinished", "n_clauses", "n_words", "repeats"}
    assert all(v.shape == (300,) for v in metrics.values())
    np.testing.assert_array_equal(metrics["grammatical"], first > -2.0)


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match="2 prompts but 1 responses"):
        REWARD([PROMPT, PROMPT], ["the food was great ."])
