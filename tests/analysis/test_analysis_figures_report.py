"""The peak finder on planted curves; figures and the report command on the fabricated sweep."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
from fabricate import PEAK_STEP, planted_win_rate

from prefopt.analysis import (
    find_overfitting,
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


def test_find_overfitting_on_a_planted_hump():
    steps = [10, 20, 30, 40, 50, 60, 70]
    wins = [0.50, 0.60, 0.70, 0.72, 0.71, 0.69, 0.60]
    # peak 0.72 at step 40; 0.71 and 0.70 are within 0.02 of it, 0.69 is not.
    assert find_overfitting(steps, wins, margin=0.02) == (40.0, 0.72, 60.0)
    assert find_overfitting(steps, wins, margin=0.2) == (40.0, 0.72, None)
    shuffled = np.random.default_rng(0).permutation(len(steps))
    peak = find_overfitting(np.array(steps)[shuffled], np.array(wins)[shuffled], 0.02)
    assert peak == (40.0, 0.72, 60.0)


def test_find_overfitting_edge_cases():
    assert find_overfitting([1, 2, 3], [0.5, 0.6, 0.7], 0.01) == (3.0, 0.7, None)  # still rising
    assert find_overfitting([1, 2, 3], [0.6, float("nan"), 0.5], 0.05) == (1.0, 0.6, 3.0)
    assert find_overfitting([1, 2], [0.6, 0.6], 0.0) == (1.0, 0.6, 2.0)  # first of tied peaks
    with pytest.raises(ValueError, match="margin"):
        find_overfitting([1], [0.5], -0.1)
    with pytest.raises(ValueError, match="not NaN"):
        find_overfitting([1], [float("nan")], 0.1)


def test_find_overfitting_recovers_the_planted_peak_of_a_noise_free_curve():
    steps = np.arange(0, 101, 5)
    wins = [planted_win_rate("ipo", 0.5, 1e-4, s) for s in steps]
    peak_step, peak, onset = find_overfitting(steps, wins, margin=0.02)
    assert peak_step == PEAK_STEP["ipo"]
    assert peak == pytest.approx(0.5 + 0.25 + 0.1)
    # after the peak the planted curve falls 0.003 per step: 0.02 below it 7 steps later
    assert onset == PEAK_STEP["ipo"] + 10


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
