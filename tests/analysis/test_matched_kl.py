"""Win rate at matched KL on hand-made checkpoints: the envelope, never extrapolated."""

import math

import numpy as np
import pandas as pd
import pytest

from prefopt.analysis.matched_kl import COLUMNS, win_rate_at_kl

Z_95 = 1.959964


@pytest.fixture
def points():
    """dpo spans 0.3-3 nats; kto never gets below 0.7 nats."""
    return pd.DataFrame(
        [
            ("dpo", 0.3, 0.55, 0.02),
            ("dpo", 0.9, 0.60, 0.02),
            ("dpo", 0.8, 0.62, 0.03),
            ("dpo", 1.5, 0.70, 0.02),
            ("dpo", 3.0, 0.75, 0.02),
            ("dpo", np.nan, 0.99, 0.02),  # no KL estimate: not a point of the envelope
            ("kto", 0.7, 0.60, 0.01),
            ("kto", 1.0, 0.58, 0.01),
            ("kto", 2.5, 0.80, 0.01),
        ],
        columns=["method", "kl", "win_rate", "win_rate_se"],
    )


def test_envelope_read_at_each_budget_with_its_points_interval(points):
    table = win_rate_at_kl(points)
    assert list(table.columns) == COLUMNS
    dpo = table[table["method"] == "dpo"].set_index("budget")
    # 0.5: only (0.3, 0.55); 1: (0.8, 0.62) beats (0.9, 0.60); 2: (1.5, 0.70), 3 nats is over.
    assert dpo["win_rate"].tolist() == [0.55, 0.62, 0.70]
    assert dpo["kl_of_point"].tolist() == [0.3, 0.8, 1.5]
    assert dpo.loc[1.0, "ci_low"] == pytest.approx(0.62 - Z_95 * 0.03, abs=1e-6)
    assert dpo.loc[1.0, "ci_high"] == pytest.approx(0.62 + Z_95 * 0.03, abs=1e-6)
    assert dpo["reached"].all()


def test_a_budget_below_every_point_is_not_reached_and_nothing_is_extrapolated(points):
    kto = win_rate_at_kl(points).query("method == 'kto'").set_index("budget")
    assert not kto.loc[0.5, "reached"]
    assert all(math.isnan(kto.loc[0.5, column]) for column in COLUMNS[2:6])
    # At 1 nat the point at exactly 1.0 counts but does not beat 0.60; at 2 nats the 0.80 at
    # 2.5 nats does not count.
    assert kto.loc[1.0, "win_rate"] == 0.60 and kto.loc[1.0, "kl_of_point"] == 0.7
    assert kto.loc[2.0, "win_rate"] == 0.60 and kto.loc[2.0, "reached"]


def test_given_intervals_are_kept_and_missing_ones_refused(points):
    given = points.drop(columns="win_rate_se").assign(
        ci_low=points["win_rate"] - 0.1, ci_high=points["win_rate"] + 0.05
    )
    table = win_rate_at_kl(given, budgets=[2.0])
    dpo = table.set_index("method").loc["dpo"]
    assert (dpo["ci_low"], dpo["ci_high"]) == pytest.approx((0.60, 0.75))
    with pytest.raises(ValueError, match="win_rate_se"):
        win_rate_at_kl(points.drop(columns="win_rate_se"))


def test_envelope_is_non_decreasing_over_budgets():
    rng = np.random.default_rng(0)
    points = pd.DataFrame(
        {"method": "ipo", "kl": rng.uniform(0, 3, 40), "win_rate": rng.uniform(0.4, 0.8, 40)}
    ).assign(win_rate_se=0.02)
    budgets = np.linspace(0.1, 3, 15)
    table = win_rate_at_kl(points, budgets=budgets)
    assert np.all(np.diff(table["win_rate"].to_numpy()) >= 0)
    for budget, value in zip(budgets, table["win_rate"], strict=True):
        assert value == points.loc[points["kl"] <= budget, "win_rate"].max()


def test_the_frontier_at_a_budget_is_read_per_seed_then_averaged_with_a_t_interval():
    from scipy import stats

    from prefopt.analysis import reward_at_kl_by_seed

    points = pd.DataFrame(
        {
            "method": ["ppo"] * 6 + ["dpo"] * 2,
            "seed": [1, 1, 2, 2, 3, 3, 1, 2],
            "kl": [0.4, 1.5, 0.9, 3.0, 0.2, 0.8, 2.5, 0.3],
            "judge_reward": [0.1, 0.9, 0.5, 2.0, 0.3, 0.2, 1.0, 0.4],
        }
    )
    table = reward_at_kl_by_seed(points, budgets=(1.0,)).set_index("method")
    # ppo's seeds at KL <= 1: 0.1, 0.5 and max(0.3, 0.2) = 0.3 -> mean 0.3, sd 0.2
    half = stats.t.ppf(0.975, 2) * 0.2 / 3**0.5
    assert table.loc["ppo", "mean"] == pytest.approx(0.3)
    assert table.loc["ppo", "ci_low"] == pytest.approx(0.3 - half)
    assert table.loc["ppo", "seeds_reached"] == 3
    # dpo: only seed 2 is within 1 nat: a mean without an interval
    assert table.loc["dpo", "mean"] == pytest.approx(0.4) and np.isnan(table.loc["dpo", "ci_low"])
    assert (table.loc["dpo", "n_seeds"], table.loc["dpo", "seeds_reached"]) == (2, 1)
