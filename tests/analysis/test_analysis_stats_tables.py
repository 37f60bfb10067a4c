"""Intervals cover planted means; the table selects on validation and picks the planted best;
its seed-level tests find a planted method effect and not a method planted equal to the baseline."""

import math

import numpy as np
import pytest
from fabricate import BAYES_ACCURACY, BEST_CONFIG, fabricate_sweep
from scipy import stats

from prefopt.analysis.seed_tests import TARGET_POWER, welch_power
from prefopt.analysis.selection import checkpoint_rows, select_hyperparameters
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
    dpo = table.data.set_index("method").loc["dpo"]
    assert math.isnan(dpo["prompt_p"]) and math.isnan(dpo["welch_p_holm"])


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


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """5 seeds of one setting (beta 0.5) per loss: ipo's best setting, 20 points above dpo at its
    peak; rdpo planted equal to dpo."""
    return load_sweep(
        fabricate_sweep(
            tmp_path_factory.mktemp("seeded"),
            losses=("dpo", "ipo", "rdpo"),
            betas=(0.5,),
            lrs=(1e-4,),
            seeds=(0, 1, 2, 3, 4),
            total_steps=60,
            eval_every=20,
            n_prompts=100,
            unfinished=False,
        ).root
    )


def markdown_cells(markdown: str) -> tuple[list[str], dict[str, list[str]]]:
    """(header, {method: its cells}) of a Markdown method table."""
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    header, *rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    return header, {cells[0]: cells for cells in rows}


def seed_values(frame) -> dict[str, np.ndarray]:
    """Per-seed test win rates (points) of each method's selected setting."""
    selected = select_hyperparameters(checkpoint_rows(frame))
    return {name: 100 * runs["win_rate"].to_numpy() for name, runs in selected.groupby("loss.name")}


def test_a_planted_method_effect_is_detected_and_an_equal_method_is_not(seeded):
    data = method_table(seeded, n_boot=50).data.set_index("method")
    ipo, rdpo = data.loc["ipo"], data.loc["rdpo"]
    assert ipo["difference"] > 10
    assert ipo["welch_p_holm"] < 0.01 and ipo["permutation_p_holm"] < 0.05
    assert rdpo["welch_p_holm"] > 0.05 and rdpo["permutation_p_holm"] > 0.05
    for test in ("welch_p", "permutation_p"):
        raw, adjusted = data.loc[["ipo", "rdpo"], test], data.loc[["ipo", "rdpo"], f"{test}_holm"]
        assert (adjusted >= raw).all()
        # Holm over 2: the smaller p doubles, the larger stays unless the doubled one exceeds it
        assert adjusted["ipo"] == pytest.approx(min(1.0, 2 * raw["ipo"]))
        assert adjusted["rdpo"] == pytest.approx(max(raw["rdpo"], adjusted["ipo"]))


def test_seed_tests_are_welch_on_the_per_seed_test_values(seeded):
    data = method_table(seeded, n_boot=50).data.set_index("method")
    values = seed_values(seeded)
    for name in ("ipo", "rdpo"):
        welch = stats.ttest_ind(values[name], values["dpo"], equal_var=False)
        assert data.loc[name, "welch_p"] == pytest.approx(welch.pvalue, rel=1e-9)
        assert data.loc[name, "difference"] == pytest.approx(
            values[name].mean() - values["dpo"].mean()
        )
        spread = (values[name].std(ddof=1), values["dpo"].std(ddof=1), 5, 5)
        assert data.loc[name, "power"] == pytest.approx(welch_power(4.0, *spread))
        detectable = data.loc[name, "detectable_effect"]
        assert welch_power(detectable, *spread) == pytest.approx(TARGET_POWER, abs=1e-6)
    # a larger stated effect has more power at the same spreads
    larger = method_table(seeded, n_boot=50, effect=10.0).data.set_index("method")
    assert (larger.loc[["ipo", "rdpo"], "power"] > data.loc[["ipo", "rdpo"], "power"]).all()


def test_the_table_shows_seed_level_and_prompt_paired_p_values(seeded):
    table = method_table(seeded, n_boot=50)
    data = table.data.set_index("method")
    header, rows = markdown_cells(table.to_markdown())
    seeds_p, prompts_p = header.index("p seeds (Holm)"), header.index("p prompts (cond.)")
    assert rows["dpo"][seeds_p] == "base"
    assert rows["rdpo"][seeds_p] == f"{data.loc['rdpo', 'welch_p_holm']:.3f}"
    assert rows["rdpo"][prompts_p] == f"{data.loc['rdpo', 'prompt_p']:.3f}"
    assert rows["ipo"][prompts_p] == "<0.001"  # 20 points over 100 prompts and 5 seeds
    assert "family of 2 comparisons declared against dpo (ipo, rdpo)" in table.caption
    assert "conditional on the trained models" in table.caption
    assert "§" not in table.to_markdown()  # 5 seeds each


def test_holm_counts_the_declared_family(seeded):
    full = method_table(seeded, n_boot=50).data.set_index("method")
    alone = method_table(seeded, n_boot=50, family=("ipo",))
    data = alone.data.set_index("method")
    assert data.loc["ipo", "welch_p_holm"] == pytest.approx(data.loc["ipo", "welch_p"])
    assert math.isnan(data.loc["rdpo", "welch_p_holm"])  # not declared: not tested
    header, rows = markdown_cells(alone.to_markdown())
    seeds_p = header.index("p seeds (Holm)")
    assert rows["rdpo"][seeds_p : seeds_p + 4] == ["—"] * 4
    assert data.loc["ipo", "welch_p_holm"] < 0.001 and rows["ipo"][seeds_p] == "<0.001"
    # a declared comparison without runs counts in the family: ipo's p is tripled
    wider = method_table(seeded, n_boot=50, family=("ipo", "rdpo", "kto")).data.set_index("method")
    assert wider.loc["ipo", "welch_p_holm"] == pytest.approx(3 * full.loc["ipo", "welch_p"])
    assert wider.loc["ipo", "welch_p_holm"] > full.loc["ipo", "welch_p_holm"]


def test_few_seeds_mark_the_intervals_and_cannot_reach_a_permutation_p_below_a_third(seeded):
    two = method_table(seeded[seeded["seed"] < 2], n_boot=50)
    data = two.data.set_index("method")
    # 2 against 2 seeds: 6 relabelings, the observed split and its mirror reach |t|: p >= 2 / 6
    assert (data.loc[["ipo", "rdpo"], "permutation_p"] >= 1 / 3 - 1e-12).all()
    markdown = two.to_markdown()
    ipo = next(line for line in markdown.splitlines() if line.startswith("| ipo |"))
    assert ipo.count("]§") == 5 and ipo.count("§") == 6  # 5 intervals and the ± SE
    note = next(line for line in markdown.splitlines() if line.startswith("§ "))
    assert "fewer than 3 seeds: dpo (2), ipo (2), rdpo (2)" in note
    assert r"\textsuperscript{\S}" in two.to_latex()
