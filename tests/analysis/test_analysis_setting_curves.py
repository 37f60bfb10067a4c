"""Metric curves per value of a swept setting, on the fabricated sweep."""

import pytest

from prefopt.analysis.setting_curves import plot_setting_curves
from prefopt.results import load_sweep


def test_one_line_per_setting_value_and_group(planted):
    frame = load_sweep(planted.root)
    figure = plot_setting_curves(
        frame, "trainer.lr", metrics=("win_rate", "loss"), group="loss.name"
    )
    win_axis = figure.axes[0]
    n_groups = frame["loss.name"].nunique()
    n_values = frame["trainer.lr"].nunique()
    assert len(win_axis.get_lines()) == n_groups * n_values + 1  # + the 50% line
    assert "Win rate" in win_axis.get_ylabel()


def test_unknown_setting_is_a_clear_error(planted):
    with pytest.raises(ValueError, match="no_such"):
        plot_setting_curves(load_sweep(planted.root), "no_such")
