"""The constraints task's gold reward on hand-written responses, its metrics, and the cliff share."""

import math

import numpy as np
import pytest

from prefopt.tasks.cliffs import cliff_variance_share
from prefopt.tasks.constraints.reward import ConstraintReward

# tone, one aspect to mention, one to leave out (k = 3), and 11 words
PROMPT = (
    "write a positive review of the restaurant mentioning the food without the soup in 11 words :"
)
REWARD = ConstraintReward(length_penalty=0.1, unfinished_reward=-0.7, ungrammatical_reward=-0.9)


def test_hand_worked_rewards():
    responses = [
        # 11 words: positive (0.8 * 1.3, 0.5), food, no soup
        "the food was very great . the wine was good .",
        # 10 words, mean(0.8, 1.0) > 0, food, no soup
        "the food was great and i loved the wine .",
        # 5 words, -0.7: not positive, no food, the soup
        "the soup was bad .",
        # 6 words, 0.8 * -0.5 < 0: not positive; food, no soup
        "the food was not great .",
        # 20 words, all three met
        "the food was great . the wine was great . the menu was great . the service was great .",
        "the food was",  # unfinished
        "the plot was great .",  # a film aspect in a restaurant review
    ]
    expected = [
        3 / 3 - 0.1 * 0,
        3 / 3 - 0.1 * 1,
        0 / 3 - 0.1 * 6,
        2 / 3 - 0.1 * 5,
        3 / 3 - 0.1 * 9,
        -0.7,
        -0.9,
    ]
    np.testing.assert_allclose(REWARD([PROMPT] * len(responses), responses), expected)


def test_each_kind_of_constraint_counts_one_share():
    cases = [
        # (prompt, response, reward): k = 1, 2, 2, 1
        (
            "write a review of the hotel mentioning the pool in 5 words :",
            "the pool was awful .",
            1.0,
        ),
        (
            "write a negative review of the film without the plot in 5 words :",
            "i hated the plot .",
            0.5,
        ),
        (
            "write a review of the hotel mentioning the pool and the staff in 11 words :",
            "the staff were nice and the bed was nice .",
            1 / 2 - 0.1 * 1,
        ),
        (
            "write a positive review of the hotel in 5 words :",
            "the room was okay .",
            0.0,
        ),  # 0 is not > 0
    ]
    prompts, responses, expected = zip(*cases, strict=True)
    np.testing.assert_allclose(REWARD(list(prompts), list(responses)), expected)


def test_metrics_apply_where_the_request_states_the_constraint():
    prompts = [
        PROMPT,
        "write a review of the hotel mentioning the pool and the staff in 11 words :",
        PROMPT,
    ]
    responses = ["the soup was bad .", "the staff were nice and the bed was nice .", "the food was"]
    metrics = REWARD.metrics(prompts, responses)
    assert all(v.shape == (3,) for v in metrics.values())
    np.testing.assert_array_equal(metrics["grammatical"], [True, True, False])
    np.testing.assert_array_equal(metrics["unfinished"], [False, False, True])
    np.testing.assert_array_equal(metrics["n_words"], [5, 10, 3])
    np.testing.assert_array_equal(metrics["n_clauses"], [1, 2, 0])
    np.testing.assert_array_equal(metrics["tone_met"], [0.0, np.nan, np.nan])
    np.testing.assert_array_equal(metrics["mentions_met"], [0.0, 0.5, np.nan])
    np.testing.assert_array_equal(metrics["avoid_met"], [0.0, np.nan, np.nan])
    np.testing.assert_array_equal(metrics["constraints_met"], [0.0, 0.5, np.nan])
    np.testing.assert_array_equal(metrics["length_error"], [6.0, 1.0, np.nan])
    np.testing.assert_array_equal(metrics["optimal"], [0.0, 0.0, np.nan])


def test_bad_prompts_and_lengths_raise():
    with pytest.raises(ValueError, match="not a constraints prompt"):
        REWARD(["review of the hotel red river :"], ["the room was nice ."])
    with pytest.raises(ValueError, match="not aspects of a film"):
        REWARD(
            ["write a review of the film mentioning the pool in 5 words :"], ["i loved the plot ."]
        )
    with pytest.raises(ValueError, match="2 prompts but 1 responses"):
        REWARD([PROMPT, PROMPT], ["the food was great ."])


def test_cliff_variance_share_by_hand():
    rewards = np.array([1.0, 0.0, -1.0, -1.0])
    outcomes = ["complete", "complete", "unfinished", "unfinished"]
    # mean -0.25; groups' means 0.5 and -1.0
    between = 2 * (0.5 + 0.25) ** 2 + 2 * (-1.0 + 0.25) ** 2
    total = (1.0 + 0.25) ** 2 + (0.0 + 0.25) ** 2 + 2 * (-1.0 + 0.25) ** 2
    assert cliff_variance_share(rewards, outcomes) == pytest.approx(between / total)
    assert cliff_variance_share(rewards, ["complete"] * 4) == 0.0  # one group explains nothing
    assert cliff_variance_share(rewards, ["a", "b", "c", "d"]) == pytest.approx(1.0)
    assert math.isnan(cliff_variance_share(np.zeros(3), ["complete", "unfinished", "complete"]))
    with pytest.raises(ValueError, match="must be"):
        cliff_variance_share(rewards, outcomes[:3])
