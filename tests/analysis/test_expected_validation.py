"""Expected validation performance (Dodge et al. 2019) against a hand-computed case."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest

from prefopt.analysis.expected_validation import (
    expected_max,
    expected_validation,
    plot_expected_validation,
)


def test_expected_max_by_hand():
    # Trials 4, 1, 2. n = 1: the mean, 7/3. n = 2: of the 9 ordered pairs, max 1 once, 2 three
    # times, 4 five times, so E = (1 + 6 + 20) / 9 = 3 and E[max^2] = (1 + 12 + 80) / 9 = 93/9.
    mean, spread = expected_max([4.0, 1.0, 2.0], [1, 2])
    assert mean == pytest.approx([7 / 3, 3.0])
    assert spread[0] == pytest.approx(np.std([4.0, 1.0, 2.0]))
    assert spread[1] == pytest.approx(math.sqrt(93 / 9 - 9))


def test_expected_max_agrees_with_resampling_and_rises_to_the_best():
    rng = np.random.default_rng(0)
    values = rng.normal(60, 5, 12)
    draws = rng.choice(values, size=(40_000, 4)).max(axis=1)
    mean, spread = expected_max(values, 4)
    assert mean[0] == pytest.approx(draws.mean(), abs=0.1)  # Monte Carlo sd: 0.02
    assert spread[0] == pytest.approx(draws.std(), abs=0.1)
    curve = expected_validation(values)
    assert curve["n_trials"].tolist() == list(range(1, 13))
    assert np.all(np.diff(curve["expected"]) > 0)
    assert curve["expected"].iloc[0] == pytest.approx(values.mean())
    assert expected_max(values, 10_000)[0][0] == pytest.approx(values.max())
    assert (curve["low"] >= values.min()).all() and (curve["high"] <= values.max()).all()


def test_expected_max_refuses_a_trial_without_a_value():
    with pytest.raises(ValueError, match="every trial"):
        expected_max([0.5, np.nan], 1)
    with pytest.raises(ValueError, match="at least 1"):
        expected_max([0.5, 0.6], 0)


def test_plot_draws_one_curve_per_method_to_its_own_trial_count():
    trials = {"dpo": np.linspace(60, 75, 16), "kto": np.linspace(55, 78, 8)}
    figure = plot_expected_validation(trials)
    (axis,) = figure.axes
    lines = {line.get_label(): line for line in axis.get_lines()}
    assert sorted(lines) == ["dpo", "kto"]
    assert lines["dpo"].get_xdata()[-1] == 16 and lines["kto"].get_xdata()[-1] == 8
    assert lines["kto"].get_ydata()[-1] == pytest.approx(expected_max(trials["kto"], 8)[0][0])
    assert len(axis.collections) == 2  # one band per method
    plt.close(figure)
