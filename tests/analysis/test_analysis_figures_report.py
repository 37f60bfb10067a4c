"""The peak finder on planted curves; figures and the report command on the fabricated sweep."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from fabricate import PEAK_STEP, planted_win_rate
from scipy import stats

from prefopt.analysis import (
    find_overfitting,
    mean_curve,
    overfitting_summary,
    pareto_frontier,
    plot_frontier,
    plot_heatmaps,
    plot_logps,
    plot_overfitting,
    plot_proxy_gold,
    selected_setting_rows,
)
from prefopt.analysis.heatmaps import cell_values
from prefopt.report import main, write_report
from prefopt.results import load_sweep
from prefopt.results.sweep import load_best_of_n


def test_find_overfitting_on_a_planted_step_down():
    steps = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    wins = [0.70] * 6 + [0.60] * 4
    # The 7-evaluation moving average (4 at the first, 5, 6, then 7) is 0.70 over the first three
    # evaluations: the running peak is 0.70. Means of the 3 evaluations from the fifth, sixth and
    # seventh on: 0.70*2/3 + 0.60/3, 0.70/3 + 0.60*2/3, 0.60.
    means = [(2 * 0.70 + 0.60) / 3, (0.70 + 2 * 0.60) / 3, 0.60]
    assert 0.70 - means[0] < 1.9 * 0.02 < 0.70 - means[1]  # se 0.02: the sixth evaluation
    assert find_overfitting(steps, wins, 0.02) == (10.0, 0.70, 60.0)
    assert 0.70 - means[1] < 1.9 * 0.04 < 0.70 - means[2]  # se 0.04: the seventh
    assert find_overfitting(steps, wins, 0.04) == (10.0, 0.70, 70.0)
    assert find_overfitting(steps, wins, 0.02, margin=0.11) == (10.0, 0.70, None)  # a 10-pt drop
    errors = np.full(len(steps), 0.02)
    errors[5:8] = 0.04  # the root mean square of the window's own errors decides
    assert find_overfitting(steps, wins, errors)[2] == 70.0
    shuffled = np.random.default_rng(0).permutation(len(steps))
    steps, wins = np.array(steps)[shuffled], np.array(wins)[shuffled]
    assert find_overfitting(steps, wins, errors[shuffled]) == (10.0, 0.70, 70.0)


def test_find_overfitting_edge_cases():
    rising = [0.5, 0.6, 0.7, 0.8, 0.9]
    assert find_overfitting([1, 2, 3, 4, 5], rising, 0.0) == (5.0, 0.9, None)
    falling = [0.9, float("nan"), 0.5, 0.5, 0.5]  # the NaN is left out: 4 evaluations remain
    assert find_overfitting([1, 2, 3, 4, 5], falling, 0.01) == (1.0, 0.9, 3.0)
    assert find_overfitting([1, 2, 3], [0.9, 0.5, 0.5], 0.01)[2] is None  # too short to tell
    with pytest.raises(ValueError, match="margin"):
        find_overfitting([1], [0.5], 0.01, margin=-0.1)
    with pytest.raises(ValueError, match="not NaN"):
        find_overfitting([1], [float("nan")], 0.01)
    with pytest.raises(ValueError, match="standard error"):
        find_overfitting([1, 2], [0.5, 0.6], [0.01, float("nan")])


def test_flat_noise_that_fooled_the_old_rule_is_no_onset():
    # the curve sits 2.5 points below its best evaluation (an onset by the old 2-point rule), well
    # within 1.9 standard errors of 1.85 points
    wins = [0.70, 0.725, 0.70, 0.70, 0.70, 0.70, 0.70, 0.70, 0.70]
    assert find_overfitting(range(9), wins, 0.0185)[2] is None


def test_find_overfitting_on_the_noise_free_planted_curve():
    steps = np.arange(0, 101, 5)
    wins = [planted_win_rate("ipo", 0.5, 1e-4, s) for s in steps]
    peak_step, peak, onset = find_overfitting(steps, wins, 0.005)
    assert peak_step == PEAK_STEP["ipo"]
    assert peak == pytest.approx(0.5 + 0.25 + 0.1)
    # after the peak the curve falls 0.003 per step: the onset comes after it, later for larger
    # standard errors
    later = find_overfitting(steps, wins, 0.01)[2]
    assert PEAK_STEP["ipo"] < onset < later


def test_mean_curve_bands_by_hand():
    def rows(step, wins, half):
        return [
            {"step": step, "win_rate": w, "win_rate_ci_low": w - h, "win_rate_ci_high": w + h}
            for w, h in zip(wins, half, strict=True)
        ]

    z = stats.norm.ppf(0.975)
    frame = pd.DataFrame(
        rows(0, [0.5], [z * 0.02])  # one seed: its own interval
        + rows(1, [0.6, 0.7], [z * 0.02] * 2)  # two: their spread, 0.0707 / sqrt(2)
        + rows(2, [0.6] * 3, [z * 0.03] * 3)  # three alike: the floor sqrt(3 * 0.03^2) / 3
        + [{"step": 3, "win_rate": 0.98, "win_rate_ci_low": 0.94, "win_rate_ci_high": 1.0}]
    )
    curve = mean_curve(frame, "win_rate").set_index("step")
    assert list(curve["n"]) == [1, 2, 3, 1]
    assert curve["mean"].tolist() == pytest.approx([0.5, 0.65, 0.6, 0.98])
    spread = math.sqrt(0.05**2 * 2) / math.sqrt(2)
    expected_se = [0.02, spread, math.sqrt(3 * 0.03**2) / 3, 0.04 / z]  # the clipped side ignored
    assert curve["se"].tolist() == pytest.approx(expected_se)
    quantile = [z, z, stats.t.ppf(0.975, 2), z]  # a t quantile only from 3 seeds on
    half = np.array(quantile) * np.array(expected_se)
    assert curve["low"].to_numpy() == pytest.approx(curve["mean"].to_numpy() - half)
    assert curve["high"].to_numpy() == pytest.approx(curve["mean"].to_numpy() + half)
    kl = pd.DataFrame({"step": [0, 0], "kl": [1.0, 1.0], "kl_se": [0.3, 0.4]})
    assert mean_curve(kl, "kl")["se"].iloc[0] == pytest.approx(0.25)  # a logged se is used


def test_overfitting_summary_on_the_sweep(planted):
    rows = selected_setting_rows(load_sweep(planted.root))
    summary = overfitting_summary(rows, margin=0.05).set_index("method")
    assert set(summary.index) == {"dpo", "ipo", "simpo"}
    for method, row in summary.iterrows():
        # 40 noisy prompts per evaluation: the peak lands within two evaluations of the planted one
        assert abs(row["peak_step"] - PEAK_STEP[method]) <= 20
        assert math.isnan(row["onset_step"]) or row["onset_step"] > row["peak_step"]


def test_pareto_frontier_by_hand():
    kl, reward = pareto_frontier([0.0, 1.0, 2.0, 3.0, 0.5], [0.0, 0.5, 0.3, 0.9, 0.6])
    assert list(kl) == [0.0, 0.5, 3.0]
    assert list(reward) == [0.0, 0.6, 0.9]


def test_heatmap_cells_mean_finished_seeds_and_count_the_others(planted):
    frame = load_sweep(planted.root)
    cells = cell_values(frame).set_index(["loss.name", "loss.beta", "trainer.lr"])
    failed_cell = cells.loc[("dpo", 0.5, 5e-4)]
    assert failed_cell["n_finished"] == 2 and failed_cell["n_unfinished"] == 1
    runs = frame[(frame["loss.name"] == "ipo") & (frame["loss.beta"] == 0.5)]
    runs = runs[(runs["trainer.lr"] == 1e-4) & (runs["split"] == "validation")]
    best_by_hand = runs.groupby("run_id")["win_rate"].max().mean()
    assert cells.loc[("ipo", 0.5, 1e-4), "best"] == pytest.approx(best_by_hand)


def test_every_figure_has_labelled_axes_and_a_legend(planted):
    frame = load_sweep(planted.root)
    rows = selected_setting_rows(frame)
    figures = {
        "overfitting": plot_overfitting(rows, x="epoch"),
        "frontier": plot_frontier(frame, load_best_of_n(planted.root), reward="win_rate"),
        "heatmaps": plot_heatmaps(frame),
        "proxy_gold": plot_proxy_gold(rows),
        "logps": plot_logps(rows, split="train"),
    }
    for name, figure in figures.items():
        panels = [axis for axis in figure.axes if axis.yaxis.get_label_position() == "left"]
        panels = [axis for axis in panels if axis.get_label() != "<colorbar>"]
        assert panels and all(axis.get_xlabel() for axis in panels), name
        assert panels[0].get_ylabel(), name
        assert figure.legends or name == "heatmaps", name
        plt.close(figure)
    assert "Epoch" in [axis.get_xlabel() for axis in figures["overfitting"].axes]


def test_overfitting_figure_marks_bands_from_fewer_than_three_seeds(planted):
    rows = selected_setting_rows(load_sweep(planted.root))
    labels = {}
    for name, runs in {"all": rows, "one seed": rows[rows["seed"] == rows["seed"].min()]}.items():
        figure = plot_overfitting(runs)
        labels[name] = [text.get_text() for text in figure.legends[0].get_texts()]
        plt.close(figure)
    assert "95% CI" in labels["all"]
    assert any("< 3 seeds" in label for label in labels["one seed"])


def test_figures_reject_bad_arguments(planted):
    frame = load_sweep(planted.root)
    with pytest.raises(ValueError, match="'minutes'"):
        plot_overfitting(frame, x="minutes")
    with pytest.raises(ValueError, match="'gold'"):
        plot_frontier(frame, reward="gold")
    with pytest.raises(ValueError, match="no 'train' row"):
        plot_frontier(frame, split="train")


def test_report_writes_markdown_tables_and_images(planted, tmp_path):
    path = write_report(planted.root, tmp_path / "out", n_boot=200)
    text = path.read_text()
    assert path == tmp_path / "out" / "report.md"
    for name in ("overfitting", "frontier", "heatmaps", "proxy_gold", "logps"):
        assert f"](figures/{name}.png)" in text
        assert (tmp_path / "out" / "figures" / f"{name}.png").stat().st_size > 10_000
        assert (tmp_path / "out" / "figures" / f"{name}.pdf").is_file()
    assert (tmp_path / "out" / "table.tex").read_text().startswith(r"\begin{table}")
    for run_id in (planted.failed_run, planted.running_run, planted.incomplete_run):
        assert f"| {run_id} |" in text
    assert "36 runs: 33 finished" in text
    assert "Skipped" not in text


def test_report_skips_what_a_sweep_without_evaluations_cannot_show(tmp_path, capsys):
    from fabricate import fabricate_sweep

    sweep = fabricate_sweep(tmp_path / "sweep", losses=("dpo",), seeds=(0,), total_steps=20)
    for metrics in sweep.root.rglob("metrics.jsonl"):
        lines = metrics.read_text().splitlines()
        metrics.write_text("\n".join(line for line in lines if '"train"' in line) + "\n")
    main([str(sweep.root), "--n-boot", "50"])
    assert "wrote" in capsys.readouterr().out
    text = (sweep.root / "report.md").read_text()
    assert "Skipped: no finished run has a validation win rate or reward accuracy" in text
    assert "Skipped: the sweep has no data for this figure (needs validation proxy_reward" in text
    assert text.count("Skipped") == 5  # table, overfitting, frontier, heatmaps, proxy-gold
    assert "Runs of every setting (averaged)." in text and "](figures/logps.png)" in text
    assert sorted(p.name for p in (sweep.root / "figures").iterdir()) == ["logps.pdf", "logps.png"]
