"""The DPO-against-SFT study's outcomes per run and its seed-level differences."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
sys.path.insert(0, str(Path(__file__).resolve().parent / "analysis"))
import sft_study  # noqa: E402
from fabricate import fabricate_sweep  # noqa: E402
from study import sweep_plan  # noqa: E402

from prefopt.analysis.seed_tests import welch_interval  # noqa: E402
from prefopt.results import load_sweep  # noqa: E402


def test_the_study_is_both_losses_at_four_rates_five_seeds_two_tasks():
    assert sweep_plan(sft_study.command([])).runs == 2 * 4 * 5 * 2


def test_outcomes_read_the_peak_the_drop_and_test_at_the_best_checkpoint(tmp_path):
    fabricate_sweep(tmp_path, losses=("dpo", "ipo"), betas=(0.1,), seeds=(0, 1), unfinished=False)
    rows = load_sweep(tmp_path).assign(grammatical=0.9)
    rows["task.name"] = "reviews"
    outcomes = sft_study.run_outcomes(rows).set_index(["loss", "lr", "seed"])
    assert len(outcomes) == 2 * 2 * 2
    validation = rows[rows["split"] == "validation"].sort_values("step")
    for (loss, lr, seed), curve in validation.groupby(["loss.name", "trainer.lr", "seed"]):
        found = outcomes.loc[(loss, lr, seed)]
        peak = 100 * curve["win_rate"].max()
        best_step = curve.loc[curve["win_rate"].idxmax(), "step"]
        test = rows[(rows["split"] == "test") & (rows["run_id"] == curve["run_id"].iloc[0])]
        assert found["peak_validation"] == pytest.approx(peak)
        assert found["drop"] == pytest.approx(peak - 100 * curve["win_rate"].iloc[-1])
        expected = 100 * test.loc[test["step"] == best_step, "win_rate"].iloc[0]
        assert found["test_win_rate"] == pytest.approx(expected)
        assert found["final_grammatical"] == pytest.approx(90.0)


def test_differences_are_dpo_minus_sft_over_seeds_with_welch_intervals():
    dpo_drop, sft_drop = [10.0, 12.0, 11.0, 13.0, 9.0], [1.0, 2.0, 0.0, 1.0, 2.0]
    outcomes = pd.DataFrame(
        {
            "task": "reviews",
            "lr": 1e-3,
            "loss": ["dpo"] * 5 + ["sft"] * 5,
            "seed": list(range(5)) * 2,
            "drop": dpo_drop + sft_drop,
            "onset_epoch": [2.0, 2.5, np.nan, 3.0, 2.0] + [np.nan] * 5,
            **{m: 50.0 + np.arange(10) for m in ("peak_validation", "test_win_rate")},
            **{m: 1.0 + np.arange(10) for m in ("final_grammatical", "final_kl")},
        }
    )
    table = sft_study.loss_differences(outcomes).set_index("metric")
    drop = table.loc["drop"]
    interval = welch_interval(dpo_drop, sft_drop)
    assert drop["dpo - sft"] == pytest.approx(11.0 - 1.2)
    assert (drop["low"], drop["high"]) == (
        pytest.approx(interval.low),
        pytest.approx(interval.high),
    )
    assert drop["low"] > 0  # separated seeds: the interval excludes 0
    assert drop["permutation p"] == pytest.approx(2 / 252)  # the smallest p of 5 against 5
    assert drop["onsets"] == "4/0" and drop["seeds"] == "5/5"
