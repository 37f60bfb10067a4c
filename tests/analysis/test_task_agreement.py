"""Ranks per task and Kendall's tau-b between tasks: hand-computed values, the seed interval, and
the report of a sweep over two tasks."""

import math

import numpy as np
import pandas as pd
import pytest
from fabricate import fabricate_sweep

from prefopt.analysis.task_agreement import kendall_tau_b, rank_table, task_agreement
from prefopt.report import write_report


def scores_frame(cells: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    """A seed_scores frame from {(task, method): per-seed values}."""
    rows = [
        {"task": task, "method": method, "seed": seed, "value": value}
        for (task, method), values in cells.items()
        for seed, value in enumerate(values)
    ]
    return pd.DataFrame(rows)


def test_tau_b_by_hand():
    # one discordant pair of six: (5 - 1) / 6
    assert kendall_tau_b([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    # x ties pair (0, 1), y ties pair (1, 2); the other four concordant: 4 / sqrt(5 * 5)
    assert kendall_tau_b([1, 1, 2, 3], [1, 2, 2, 3]) == pytest.approx(0.8)
    assert kendall_tau_b([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(kendall_tau_b([1, 1, 1], [1, 2, 3]))  # one task sees no difference
    assert math.isnan(kendall_tau_b([1], [1]))
    with pytest.raises(ValueError, match="unequal shapes"):
        kendall_tau_b([1, 2], [1, 2, 3])


def test_rank_table_ranks_best_first_and_shares_ties():
    scores = scores_frame(
        {
            ("a", "dpo"): [0.7, 0.8],
            ("a", "ipo"): [0.6, 0.6],
            ("a", "kto"): [0.6, 0.6],
            ("b", "dpo"): [0.9],
            ("b", "ipo"): [0.5],
            ("b", "kto"): [0.7],
        }
    )
    table = rank_table(scores)
    assert list(table.index) == ["dpo", "kto", "ipo"]  # mean ranks 1, 2.25, 2.75
    assert table.loc["dpo", "a mean"] == pytest.approx(0.75)
    assert table.loc["ipo", "a rank"] == table.loc["kto", "a rank"] == 2.5
    assert table.loc["kto", "b rank"] == 2 and table.loc["dpo", "b seeds"] == 1


def test_agreement_interval_resamples_seeds():
    rng = np.random.default_rng(0)
    means = {"dpo": 0.7, "ipo": 0.6, "kto": 0.5, "orpo": 0.4}
    separated = {
        (task, m): list(mean + 0.001 * rng.standard_normal(5))
        for task in ("a", "b")
        for m, mean in means.items()
    }
    (result,) = task_agreement(scores_frame(separated), n_boot=300)
    assert (result.first, result.second, result.n_methods) == ("a", "b", 4)
    assert result.tau_b == pytest.approx(1.0) and result.low == pytest.approx(1.0)

    reversed_b = {**separated}
    for m, mean in means.items():
        reversed_b[("b", m)] = list(1.1 - mean + 0.001 * rng.standard_normal(5))
    (result,) = task_agreement(scores_frame(reversed_b), n_boot=300)
    assert result.tau_b == pytest.approx(-1.0) and result.high == pytest.approx(-1.0)

    # seeds spread far more than the methods differ: the interval spans both signs
    noisy = {
        (t, m): list(mean + 0.3 * rng.standard_normal(5))
        for (t, m), mean in ((k, means[k[1]]) for k in separated)
    }
    (result,) = task_agreement(scores_frame(noisy), n_boot=500)
    assert result.low < 0 < result.high and result.low <= result.tau_b <= result.high

    one_seed = {**separated, ("b", "dpo"): [0.7]}
    (result,) = task_agreement(scores_frame(one_seed), n_boot=50)
    assert result.tau_b == pytest.approx(1.0) and math.isnan(result.low) and result.min_seeds == 1


def test_report_of_two_tasks_writes_one_report_each_and_the_agreement(tmp_path):
    for index, task in enumerate(("constraints", "reviews")):
        fabricate_sweep(tmp_path / "sweep" / task, unfinished=False, task=task, rng_seed=index)
    path = write_report(tmp_path / "sweep", tmp_path / "out", n_boot=100)
    text = path.read_text()
    assert "72 runs: 72 finished" in text  # the top report counts both tasks' runs (36 each)
    assert "Kendall's tau-b between constraints and reviews over 3 methods" in text
    assert "95% interval over seeds [" in text
    for task in ("constraints", "reviews"):
        assert f"# Task: {task}" in text and f"({task}/table.tex)" in text
        task_text = (tmp_path / "out" / task / "report.md").read_text()
        assert "## Methods" in task_text and "](figures/overfitting.png)" in task_text
        assert (tmp_path / "out" / task / "figures" / "overfitting.png").is_file()
    assert not (tmp_path / "out" / "figures").exists()  # every figure is one task's
