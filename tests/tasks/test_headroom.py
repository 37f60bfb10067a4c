"""Best-of-n against one pi_ref sample: hand-computed prompts, and n / (n + 1) without ties."""

import numpy as np
import pytest

from prefopt.tasks.headroom import best_of_n_wins


def test_wins_ties_and_losses_by_hand():
    rewards = np.array(
        [
            [1.0, 3.0, 2.0],  # best 3 > fresh 2: a win
            [2.0, 2.0, 2.0],  # best 2 = fresh 2: a tie
            [0.0, 1.0, 5.0],  # best 1 < fresh 5: a loss
            [-3.0, -3.0, -2.0],  # two cliff values below the fresh sample: a loss
        ]
    )
    np.testing.assert_array_equal(best_of_n_wins(rewards), [1.0, 0.5, 0.0, 0.0])


def test_continuous_rewards_give_n_over_n_plus_one():
    """The fresh sample is the best of n + 1 exchangeable samples with probability 1 / (n + 1)."""
    n, prompts = 16, 20_000
    wins = best_of_n_wins(np.random.default_rng(0).normal(size=(prompts, n + 1)))
    se = np.sqrt(n / (n + 1) ** 2 / prompts)
    assert abs(wins.mean() - n / (n + 1)) < 4 * se


def test_rewards_of_every_shape_but_p_by_n_plus_one_are_refused():
    for bad in (np.zeros(5), np.zeros((3, 1)), np.zeros((2, 2, 2))):
        with pytest.raises(ValueError, match=r"rewards must be \(P, n \+ 1\)"):
            best_of_n_wins(bad)
