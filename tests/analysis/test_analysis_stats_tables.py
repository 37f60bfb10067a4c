"""Intervals cover planted means; the table selects on validation and picks the planted best."""

import math

import numpy as np
import pytest
from fabricate import BAYES_ACCURACY, BEST_CONFIG

from prefopt.analysis.stats import crossed_bootstrap_ci, paired_prompt_test, t_interval
from prefopt.analysis.tables import method_table
from prefopt.results import load_sweep


def test_t_interval_by_hand():
    interval = t_interval([1.0, 2.0, 3.0])
    # mean 2, sd 1, t_{2, 0.975} = 4.302653
    assert interval.mean == 2.0
    assert interval.high - 2.0 == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    one = t_interval([0.7])
    assert one.mean == 0.7 and math.isnan(one.low) and one.n_seeds == 1


@pytest.mark.parametrize(
    "n_seeds, n_prompts, seed_sd",
    [(3, 60, 0.08), (5, 60, 0.0), (1, 80, 0.0)],
)
def test_crossed_bootstrap_covers_a_planted_mean_at_about_95_percent(n_seeds, n_prompts, seed_sd):
    """Win indicators with a seed effect and a prompt effect around a planted win rate of 0.65."""
    rng = np.random.default_rng(n_seeds)
    planted, draws, covered = 0.65, 300, 0
    for draw in range(draws):
        seed_effect = rng.normal(0, seed_sd, (n_seeds, 1))
        prompt_effect = rng.normal(0, 0.15, (1, n_prompts))
        p = np.clip(planted + seed_effect + prompt_effect, 0, 1)
        wins = (rng.random((n_seeds, n_prompts)) < p).astype(float)
        covered += crossed_bootstrap_ci(wins, n_boot=400, rng=draw).covers(planted)
    # 95% nominal; 300 draws give a binomial sd of 1.3 points, and clipping moves the mean a little.
    assert 0.90 <= covered / draws <= 0.995


def test_bootstrap_handles_missing_prompts_and_a_single_prompt():
    scores = np.array([[1.0, 0.0, np.nan], [1.0, np.nan, 0.0]])
    assert crossed_bootstrap_ci(scores, n_boot=100).mean == pytest.approx(0.5)
    single = crossed_bootstrap_ci(np.array([[0.2], [0.4]]))
    assert single.mean == pytest.approx(0.3) and single.low < 0.3 < single.high


def test_paired_prompt_test_detects_a_shift_and_not_a_copy():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(3, 100))
    assert paired_prompt_test(base + 0.5, base) < 1e-6
    assert paired_prompt_test(base, base) == 1.0
    with pytest.raises(ValueError, match="prompt counts"):
        paired_prompt_test(base[:, :10], base)


@pytest.fixture(scope="module")
def table(planted):
    return method_table(load_sweep(planted.root), n_boot=300)


def test_table_selects_the_planted_settings_on_validation(table):
    for row in table.data.itertuples():
        beta, lr = BEST_CONFIG[row.method]
        assert row.setting == f"beta={beta:g}, lr={lr:g}"


def test_table_picks_the_planted_best_method_in_bold(table, planted):
    assert table.best_method("win_rate") == planted.best_method
    markdown = table.to_markdown()
    ipo_line = next(line for line in markdown.splitlines() if line.startswith("| ipo |"))
    assert ipo_line.split(" | ")[3].startswith("**")
    dpo_line = next(line for line in markdown.splitlines() if line.startswith("| dpo |"))
    assert "**" not in dpo_line.split(" | ")[3]
    assert r"\textbf{" in table.to_latex()


def test_table_reports_seeds_ceiling_and_unfinished_runs(table, planted):
    seeds = dict(zip(table.data["method"], table.data["n_seeds"], strict=True))
    assert seeds == {"dpo": 3, "ipo": 3, "simpo": 2}  # simpo's third seed is still running
    assert "Seeds per method: dpo 3, ipo 3, simpo 2" in table.caption
    for run_id in (planted.failed_run, planted.running_run, planted.incomplete_run):
        assert run_id in table.caption
    assert "loss is NaN" in table.caption
    assert table.bayes_accuracy == pytest.approx(BAYES_ACCURACY)
    assert "Bayes-optimal (ceiling)" in table.to_markdown()
    row = table.data.set_index("method").loc["ipo"]
    assert row["win_rate_low"] < row["win_rate"] < row["win_rate_high"]
    assert math.isnan(table.data.set_index("method").loc["dpo", "p_value"])


def test_table_reads_test_at_the_validation_step(planted):
    frame = load_sweep(planted.root)
    best = method_table(frame, checkpoint="best", n_boot=50).data.set_index("method")
    final = method_table(frame, checkpoint="final", n_boot=50).data.set_index("method")
    # The planted win rate falls after its peak, so the last checkpoint is worse than the best.
    assert (final["win_rate"] < best["win_rate"]).all()
    with pytest.raises(ValueError, match="checkpoint 'last'"):
        method_table(frame, checkpoint="last")


def test_latex_escapes_text_cells(table):
    latex = table.to_latex()
    assert r"Win rate (\%)" in latex
    assert latex.count(r"\begin{tabular}") == 1 and "—" not in latex


def test_table_can_select_on_reward_accuracy_for_sweeps_without_generations(planted):
    frame = load_sweep(planted.root)
    table = method_table(frame, select_metric="reward_accuracy", n_boot=50)
    assert "selected on validation reward accuracy" in table.caption
    with pytest.raises(ValueError, match="'gold'"):
        method_table(frame, select_metric="gold")
