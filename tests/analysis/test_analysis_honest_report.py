"""The report presents no misleading number: a method whose best checkpoint is its start is
flagged, a degenerate value is never bold, KL is shown with its standard error and clipped at 0,
and figures that carry no information are left out."""

import math

import numpy as np
import pytest
from fabricate import fabricate_sweep, set_metrics

from prefopt.analysis import plot_heatmaps
from prefopt.analysis.selection import checkpoint_rows, select_hyperparameters
from prefopt.analysis.tables import method_table
from prefopt.report import write_report
from prefopt.results import load_sweep

MAIN_LIKE = {"betas": (0.5,), "lrs": (1e-4,), "seeds": (0,), "unfinished": False}


def table_lines(markdown: str) -> dict[str, list[str]]:
    """{method: its row's cells} of a Markdown method table."""
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and "---" not in line]
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in rows[1:]]
    return {row[0]: row for row in cells}


def column(markdown: str, header: str) -> dict[str, str]:
    """{method: cell} of one column of a Markdown method table."""
    lines = [line for line in markdown.splitlines() if line.startswith("| Method")]
    headers = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return {name: row[headers.index(header)] for name, row in table_lines(markdown).items()}


@pytest.fixture(scope="module")
def start_sweep(tmp_path_factory):
    """One seed of one setting per loss (as the main job), evaluated at step 0; orpo gets worse
    than pi_ref from its first step, so its best checkpoint is the start."""
    return fabricate_sweep(
        tmp_path_factory.mktemp("start"),
        losses=("dpo", "ipo", "orpo"),
        eval_at_start=True,
        **MAIN_LIKE,
    )


def test_a_method_whose_best_checkpoint_is_the_start_is_flagged(start_sweep):
    table = method_table(load_sweep(start_sweep.root), n_boot=100)
    at_start = table.data.set_index("method")["n_at_start"]
    assert at_start.to_dict() == {"dpo": 0, "ipo": 0, "orpo": 1}
    markdown = table.to_markdown()
    rows = table_lines(markdown)
    assert set(rows) == {"dpo", "ipo", "orpo†", "Bayes-optimal (ceiling)"}
    note = next(line for line in markdown.splitlines() if line.startswith("† "))
    assert "best checkpoint is the start" in note and "orpo (1 of 1 seeds)" in note
    assert "no improvement over pi_ref found" in note
    assert r"orpo\textsuperscript{\dag}" in table.to_latex()


def test_a_start_checkpoint_is_never_bold(tmp_path):
    sweep = fabricate_sweep(
        tmp_path, losses=("dpo", "ipo", "orpo"), eval_at_start=True, **MAIN_LIKE
    )
    # a start row's reward accuracy is pi_ref's own: however high, it is no method's best
    set_metrics(sweep, "test", loss="orpo", reward_accuracy=0.99)
    markdown = method_table(load_sweep(sweep.root), n_boot=100).to_markdown()
    start = table_lines(markdown)["orpo†"]
    assert not [cell for cell in start if "**" in cell]
    accuracy = column(markdown, "Reward acc. (%)")
    assert accuracy["orpo†"] == "99.0"
    assert accuracy["ipo"].startswith("**") and "**" not in accuracy["dpo"]
    win = column(markdown, "Win rate (%)")
    assert win["ipo"].startswith("**") and "**" not in win["dpo"]


def test_ties_and_a_single_method_are_not_bold(tmp_path):
    sweep = fabricate_sweep(tmp_path / "ties", losses=("dpo", "ipo"), seeds=(0,), unfinished=False)
    set_metrics(sweep, "test", reward_accuracy=0.0)  # every method's 0.0: no best
    markdown = method_table(load_sweep(sweep.root), n_boot=100).to_markdown()
    accuracy = column(markdown, "Reward acc. (%)")
    assert accuracy == {"dpo": "0.0", "ipo": "0.0", "Bayes-optimal (ceiling)": "80.0"}
    assert column(markdown, "Win rate (%)")["ipo"].startswith("**")  # other columns still compare

    alone = fabricate_sweep(tmp_path / "alone", losses=("ipo",), seeds=(0,), unfinished=False)
    markdown = method_table(load_sweep(alone.root), n_boot=100).to_markdown()
    assert "**" not in markdown  # nothing to be best among


def test_kl_is_shown_with_its_standard_error_and_clipped_at_zero(tmp_path):
    sweep = fabricate_sweep(tmp_path, losses=("dpo", "ipo"), **MAIN_LIKE)
    set_metrics(sweep, "test", loss="ipo", kl=-0.03, kl_se=0.02)
    frame = load_sweep(sweep.root)
    table = method_table(frame, n_boot=100)
    data = table.data.set_index("method")
    assert data.loc["ipo", "kl"] == 0.0 and data.loc["ipo", "kl_estimate"] == -0.03
    assert data.loc["ipo", "kl_se"] == 0.02
    markdown = table.to_markdown()
    kl = column(markdown, "KL (nats)")
    assert kl["ipo"] == "0.00‡ ± 0.02§"  # § : one seed
    dpo = checkpoint_rows(frame).set_index("loss.name").loc["dpo"]
    assert kl["dpo"] == f"{dpo['kl']:.2f} ± {dpo['kl_se']:.2f}§"
    note = next(line for line in markdown.splitlines() if line.startswith("‡ "))
    assert "ipo -0.03 (SE 0.02)" in note and "shown as 0" in note
    assert "-0.03" not in "".join(table_lines(markdown)["ipo"])
    latex = table.to_latex()
    assert r"0.00\textsuperscript{\ddag}" in latex and r"$\pm$" in latex


def test_one_seed_has_no_seed_level_p_and_its_intervals_are_marked(start_sweep, tmp_path):
    table = method_table(load_sweep(start_sweep.root), n_boot=100)
    markdown = table.to_markdown()
    seeds_p, prompts_p = column(markdown, "p seeds (Holm)"), column(markdown, "p prompts (cond.)")
    assert seeds_p["dpo"] == "base" and seeds_p["ipo"] == "n/a" and seeds_p["orpo†"] == "n/a"
    assert column(markdown, "Power at Δ 4 (%)")["ipo"] == "n/a"
    # the prompt-paired test still has its 40 prompts: a number, not n/a
    assert float(prompts_p["ipo"].lstrip("<")) == pytest.approx(
        table.data.set_index("method").loc["ipo", "prompt_p"], abs=1e-3
    )
    assert column(markdown, "Win rate (%)")["dpo"].endswith("]§")
    note = next(line for line in markdown.splitlines() if line.startswith("§ "))
    assert "dpo (1), ipo (1), orpo (1)" in note and "covers the prompts only" in note
    # the report passes the declared family on: one comparison, rdpo's cells outside it
    text = write_report(start_sweep.root, tmp_path, n_boot=100, family=("ipo",)).read_text()
    assert "family of 1 comparison declared against dpo (ipo)" in text
    methods = text.split("## Methods", 1)[1].split("\n## ", 1)[0]
    assert column(methods, "p seeds (Holm)")["orpo†"] == "—"


def test_seed_mean_se_by_hand():
    from prefopt.analysis.stats import seed_mean_se

    # spread over seeds: sd 1 / sqrt(3); the per-run errors imply sqrt(3 * 0.1^2) / 3, smaller
    assert seed_mean_se([1.0, 2.0, 3.0], [0.1, 0.1, 0.1]) == pytest.approx((2.0, 1 / math.sqrt(3)))
    # equal estimates: the spread is 0, the per-run errors are not
    assert seed_mean_se([1.0, 1.0], [0.3, 0.4]) == pytest.approx((1.0, 0.25))
    mean, se = seed_mean_se([0.7], [np.nan])
    assert mean == 0.7 and math.isnan(se)
    assert seed_mean_se([0.7, np.nan], [0.05, np.nan]) == pytest.approx((0.7, 0.05))


def test_kl_over_seeds_is_the_mean_and_its_standard_error(planted):
    from prefopt.analysis.stats import seed_mean_se

    frame = load_sweep(planted.root)
    table = method_table(frame, n_boot=50).data.set_index("method")
    selected = select_hyperparameters(checkpoint_rows(frame))
    for name, runs in selected.groupby("loss.name"):
        mean, se = seed_mean_se(runs["kl"], runs["kl_se"])
        assert table.loc[name, "kl"] == pytest.approx(mean)
        assert table.loc[name, "kl_se"] == pytest.approx(se)


def test_heatmaps_leave_out_methods_without_a_grid(planted):
    frame = load_sweep(planted.root)
    one_beta = frame[~((frame["loss.name"] == "dpo") & (frame["loss.beta"] == 0.5))]
    figure = plot_heatmaps(one_beta)
    titles = [axis.get_title() for axis in figure.axes if axis.get_title()]
    assert len(titles) == 4 and not [t for t in titles if t.startswith("dpo")]
    single = frame[(frame["loss.beta"] == 0.5)]
    with pytest.raises(ValueError, match="2 or more values of both loss.beta and trainer.lr"):
        plot_heatmaps(single)


def test_report_flags_the_start_and_leaves_out_one_cell_heatmaps(start_sweep, tmp_path):
    stale = tmp_path / "figures" / "heatmaps.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"from an earlier report")
    text = write_report(start_sweep.root, tmp_path, n_boot=100).read_text()
    assert "| orpo† |" in text and "best checkpoint is the start" in text
    heatmaps = text.split("## Heatmaps over beta and learning rate", 1)[1].split("\n## ", 1)[0]
    assert "Skipped: no method has 2 or more values of both loss.beta and trainer.lr" in heatmaps
    assert not stale.exists() and not (tmp_path / "figures" / "heatmaps.pdf").exists()
    peaks = table_lines(text.split("Peak of the mean validation win rate", 1)[1])
    assert peaks["orpo"][1] == "0 (start)" and peaks["dpo"][1] != "0 (start)"
    assert (tmp_path / "figures" / "overfitting.png").is_file()


def test_report_leaves_out_curves_of_a_single_evaluation(tmp_path):
    sweep = fabricate_sweep(
        tmp_path / "sweep", losses=("dpo",), seeds=(0,), total_steps=10, unfinished=False
    )
    text = write_report(sweep.root, tmp_path / "out", n_boot=50).read_text()
    for title in ("Overfitting curve", "Proxy reward against gold reward"):
        section = text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
        assert "Skipped: a single validation evaluation" in section, title
    assert "](figures/logps.png)" in text  # from the training rows, logged at two steps
    assert not (tmp_path / "out" / "figures" / "overfitting.png").exists()


def test_the_frontier_draws_a_negative_kl_estimate_at_zero(tmp_path):
    from prefopt.analysis import plot_frontier

    sweep = fabricate_sweep(tmp_path, losses=("dpo", "ipo"), **MAIN_LIKE)
    set_metrics(sweep, "validation", loss="ipo", kl=-0.05)
    left = plot_frontier(load_sweep(sweep.root)).axes[0]
    xs = [point[0] for points in left.collections for point in points.get_offsets()]
    xs += [x for line in left.lines for x in line.get_xdata()]
    assert len(xs) > 10 and min(xs) == 0.0


def test_heatmap_cells_whose_best_is_the_start_are_marked(tmp_path):
    from prefopt.analysis import cell_values

    sweep = fabricate_sweep(
        tmp_path, losses=("dpo", "orpo"), seeds=(0,), eval_at_start=True, unfinished=False
    )
    frame = load_sweep(sweep.root)
    cells = cell_values(frame).groupby("loss.name")["n_best_at_start"].sum()
    assert cells.to_dict() == {"dpo": 0, "orpo": 4}
    figure = plot_heatmaps(frame)
    texts = {axis.get_title(): [text.get_text() for text in axis.texts] for axis in figure.axes}
    assert all(t.endswith("†") for t in texts["orpo: best validation win rate"])
    assert not [t for t in texts["orpo: final validation win rate"] if "†" in t]
    assert not [t for t in texts["dpo: best validation win rate"] if "†" in t]
    assert "† the best evaluation is the start" in figure.get_supxlabel()
