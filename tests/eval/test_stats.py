"""Win-rate intervals, length control, distinct-n and best-of-n KL, against hand-worked values."""

import math

import numpy as np
import pytest

from prefopt.eval.stats import (
    best_of_n_kl_bound,
    best_of_n_kl_estimate,
    distinct_n,
    length_bucket_win_rates,
    length_controlled_win_rate,
    mean_and_se,
    preferences_from_scores,
    win_rate_ci,
)


def test_win_rate_ci_hand_example():
    # 6 wins, 4 losses: mean 0.6, var = (6*0.16 + 4*0.36)/9 = 0.26667, se = 0.163299,
    # t(0.975, 9) = 2.262157, half-width 0.369411
    win, low, high = win_rate_ci(np.array([1.0] * 6 + [0.0] * 4))
    assert win == pytest.approx(0.6)
    assert low == pytest.approx(0.230589, abs=1e-5)
    assert high == pytest.approx(0.969411, abs=1e-5)


def test_win_rate_ci_is_clipped_and_single_value():
    assert win_rate_ci(np.array([1.0, 1.0, 0.0]))[1] == 0.0
    assert win_rate_ci(np.array([0.5])) == (0.5, 0.5, 0.5)


@pytest.mark.parametrize("n", [50, 200])
def test_win_rate_ci_covers_known_mean_at_stated_rate(n):
    rng = np.random.default_rng(0)
    values, probs = np.array([0.0, 0.5, 1.0]), np.array([0.3, 0.2, 0.5])
    true_mean = float(values @ probs)  # 0.6, ties counted half
    reps = 2000
    covered = sum(
        low <= true_mean <= high
        for _, low, high in (win_rate_ci(rng.choice(values, n, p=probs)) for _ in range(reps))
    )
    # binomial sd of the coverage at 0.95 over 2000 reps is 0.005
    assert 0.935 <= covered / reps <= 0.965


def test_mean_and_se():
    mean, se = mean_and_se(np.array([1.0, 2.0, 3.0, 6.0]))
    assert mean == 3.0
    assert se == pytest.approx(math.sqrt(14 / 3) / 2)  # var = (4+1+0+9)/3
    with pytest.raises(ValueError, match="at least one"):
        mean_and_se(np.array([]))


def test_length_controlled_equals_win_rate_when_lengths_equal():
    p = np.array([1.0, 0.0, 0.5, 1.0, 1.0])
    assert length_controlled_win_rate(p, np.zeros(5)) == pytest.approx(0.7, abs=1e-3)


def test_length_controlled_removes_a_pure_length_preference():
    # 70% of responses are longer and preferred with p 0.8, 30% shorter with p 0.2:
    # raw win rate 0.62, but at equal length the judge is indifferent (sigmoid(a) = 0.5)
    d = np.array([5.0] * 70 + [-5.0] * 30)
    p = np.where(d > 0, 0.8, 0.2)
    assert p.mean() == pytest.approx(0.62)
    assert length_controlled_win_rate(p, d) == pytest.approx(0.5, abs=1e-3)


def test_length_controlled_is_not_extrapolated_past_the_lengths_seen():
    # every policy response longer than pi_ref's but 5%: sigmoid(a) would be read far outside
    d = np.array([12.0] * 95 + [-1.0] * 5)
    p = np.where(d > 0, 0.1, 0.9)
    assert math.isnan(length_controlled_win_rate(p, d))
    d[:15] = -1.0  # 20% on the short side: supported again
    assert 0.0 < length_controlled_win_rate(p, d) < 1.0


def test_length_controlled_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="equal 1-d"):
        length_controlled_win_rate(np.ones(3), np.ones(4))


def test_length_buckets():
    out = length_bucket_win_rates(np.array([1.0, 0.0, 0.5, 1.0]), np.array([3, -1, 0, 2]))
    assert out == {"long_frac": 0.5, "win_rate_short": 0.25, "win_rate_long": 1.0}
    assert "win_rate_long" not in length_bucket_win_rates(np.ones(2), np.zeros(2))


def test_distinct_n():
    assert distinct_n([[1, 2, 1, 2]], 1) == 0.5
    assert distinct_n([[1, 2, 1, 2]], 2) == pytest.approx(2 / 3)
    assert distinct_n([[1], []], 2) == 0.0


def test_preferences_from_scores_counts_ties_half():
    out = preferences_from_scores(np.array([2.0, 1.0, 0.0]), np.array([1.0, 1.0, 3.0]))
    assert out.tolist() == [1.0, 0.5, 0.0]


def test_best_of_n_kl():
    assert best_of_n_kl_bound(1) == 0.0
    assert best_of_n_kl_bound(2) == pytest.approx(math.log(2) - 0.5)
    # M = 2 distinct rewards, n = 2: w = (0.25, 0.75), q = (0.5, 0.5)
    expected = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert best_of_n_kl_estimate(np.array([[0.0, 1.0]]), 2) == pytest.approx(expected)
    assert best_of_n_kl_estimate(np.ones((3, 8)), 4) == 0.0  # all tied: best-of-n is pi_ref
    many = np.random.default_rng(0).normal(size=(2, 4000))
    assert best_of_n_kl_estimate(many, 4) == pytest.approx(best_of_n_kl_bound(4), abs=2e-3)
    assert best_of_n_kl_estimate(many, 4) <= best_of_n_kl_bound(4)
