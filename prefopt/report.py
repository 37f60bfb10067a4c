"""Write a sweep's report: report.md with the method table and every figure (PNG and PDF).

    python -m prefopt.report multirun/variants              # writes multirun/variants/report.md
    python -m prefopt.report multirun/variants --out results/variants --checkpoint final

Figures go to <out>/figures/, the LaTeX table to <out>/table.tex. A figure whose data the sweep
lacks, or that would carry no information (a curve of one evaluation, a frontier of one KL, a
heatmap of one row or column), is skipped with a line in the report saying why, and an earlier
report's file of it is removed; runs that did not finish are listed. A sweep over several tasks
gets a report per task (`<out>/<task>/report.md`, its figures and table.tex beside it) and a top
report with every task's method table, each method's rank per task and Kendall's tau-b between
the tasks (`prefopt.analysis.task_agreement`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib
import pandas as pd

matplotlib.use("Agg")  # files only, no display

from prefopt.analysis import (  # noqa: E402
    method_table,
    methods_with_grid,
    overfitting_summary,
    plot_frontier,
    plot_heatmaps,
    plot_logps,
    plot_overfitting,
    plot_proxy_gold,
    save_figure,
    selected_setting_rows,
)
from prefopt.analysis.heatmaps import MIN_AXIS_VALUES  # noqa: E402
from prefopt.analysis.overfitting import DROP_RUN, MIN_DROP, ONSET_SE  # noqa: E402
from prefopt.analysis.selection import CHECKPOINTS, START  # noqa: E402
from prefopt.analysis.task_agreement import (  # noqa: E402
    METRIC_LABELS,
    TASK,
    agreement_lines,
    seed_scores,
)
from prefopt.console import setup_console  # noqa: E402
from prefopt.results import load_sweep  # noqa: E402
from prefopt.results.sweep import load_best_of_n  # noqa: E402


def has_values(frame: pd.DataFrame, split: str, *metrics: str) -> bool:
    """Whether some finished row of `split` has a value for every one of `metrics`."""
    rows = frame[(frame["split"] == split) & (frame["status"] == "finished")]
    return all(metric in rows and rows[metric].notna().any() for metric in metrics)


def distinct_values(frame: pd.DataFrame, split: str, metric: str, by: str) -> int:
    """How many distinct values of `by` the finished `split` rows with a `metric` have."""
    rows = frame[(frame["split"] == split) & (frame["status"] == "finished")]
    if metric not in rows or by not in rows:
        return 0
    return rows.loc[rows[metric].notna(), by].nunique()


def write_report(
    sweep_dir: str | Path,
    out_dir: str | Path | None = None,
    checkpoint: str = "best",
    margin: float = MIN_DROP,
    x: str = "step",
    method: str = "loss.name",
    baseline: str = "dpo",
    n_boot: int = 2000,
    family: Sequence[str] | None = None,
) -> Path:
    """Write report.md (and figures/, table.tex) for the sweep; returns the report's path. A
    sweep over several tasks (`task.name`) gets one such report per task in `<out>/<task>/`, and
    a top report with each task's method table and the agreement between the tasks' rankings.

    `family`: the methods the table compares with `baseline` at the seed level (Holm over them),
    declared before the runs; None: every other method of the sweep."""
    sweep_dir = Path(sweep_dir)
    out_dir = Path(out_dir) if out_dir is not None else sweep_dir
    frame = load_sweep(sweep_dir)
    lines = [f"# Sweep report: {sweep_dir.name}", "", *_run_section(frame)]
    options = (checkpoint, margin, x, method, baseline, n_boot, family)
    tasks = sorted(frame[TASK].dropna().unique()) if TASK in frame else []
    if len(tasks) < 2:
        tables, figures = _method_sections(frame, load_best_of_n(sweep_dir), out_dir, *options)
        return _write(out_dir, [*lines, *tables, *figures])
    lines += _agreement_section(frame, checkpoint, method)
    for task in tasks:
        runs = frame[frame[TASK] == task]
        best_of_n = load_best_of_n(sweep_dir, runs["run_dir"].unique())
        tables, figures = _method_sections(runs, best_of_n, out_dir / task, *options)
        _write(
            out_dir / task,
            [f"# Sweep report: {sweep_dir.name}, task {task}", "", *tables, *figures],
        )
        lines += [f"# Task: {task}", "", f"Figures: [{task}/report.md]({task}/report.md).", ""]
        lines += [line.replace("(table.tex)", f"({task}/table.tex)") for line in tables]
    return _write(out_dir, lines)


def _method_sections(
    frame, best_of_n, out_dir, checkpoint, margin, x, method, baseline, n_boot, family
):
    """(the method table's lines, the figures' lines) of one task's runs; figures go to
    `out_dir`/figures, the LaTeX table to `out_dir`/table.tex."""
    figures = out_dir / "figures"
    if method not in frame or frame[method].isna().all():
        return [f"No run has a `{method}` in its config: no table or figure by method.", ""], []
    select_metric = selection_metric(frame)
    table_lines = _table_section(
        frame, out_dir, checkpoint, method, baseline, n_boot, select_metric, family
    )
    if select_metric is None:
        chosen, scope = frame, "every setting (averaged)"
    else:
        chosen = selected_setting_rows(frame, checkpoint, method, select_metric)
        scope = "each method's selected setting"
    sections = figure_sections(frame, chosen, best_of_n, x, margin, method)
    grid = methods_with_grid(frame, method=method)
    lines = []
    for title, name, skip_reason, draw in sections:
        lines += [f"## {title}", ""]
        if skip_reason is not None:
            lines += [f"Skipped: {skip_reason}.", ""]
            for suffix in (".png", ".pdf"):
                (figures / f"{name}{suffix}").unlink(missing_ok=True)
            continue
        save_figure(draw(), figures, name)
        if name in ("overfitting", "proxy_gold", "logps"):
            lines += [f"Runs of {scope}.", ""]
        if name == "heatmaps" and set(grid) != set(frame[method].dropna()):
            left_out = ", ".join(str(m) for m in sorted(set(frame[method].dropna()) - set(grid)))
            lines += [
                f"Left out, with fewer than {MIN_AXIS_VALUES} values of loss.beta or trainer.lr: "
                f"{left_out}.",
                "",
            ]
        lines += [f"![{title}](figures/{name}.png)", "", f"[PDF](figures/{name}.pdf)", ""]
        if name == "overfitting":
            lines += _peak_lines(chosen, margin, x, method)
    return table_lines, lines


def _agreement_section(frame: pd.DataFrame, checkpoint: str, method: str) -> list[str]:
    """Each method's rank on each task and Kendall's tau-b between the tasks, on the test split at
    the checkpoints and settings chosen within each task."""
    lines = ["## Agreement between tasks", ""]
    select_metric = selection_metric(frame)
    if select_metric is None or method not in frame:
        return lines + ["Skipped: no finished run has a validation metric to select on.", ""]
    scores = seed_scores(frame, checkpoint, method, select_metric, select_metric)
    return [
        *lines,
        f"Test {METRIC_LABELS[select_metric]} at each task's selected checkpoint and setting, "
        "mean over seeds; rank 1 is the best. Kendall's tau-b is 1 where the tasks order the "
        "methods alike, its interval resamples seeds within each task and method.",
        "",
        *agreement_lines(scores, select_metric),
    ]


def figure_sections(
    frame: pd.DataFrame,
    chosen: pd.DataFrame,
    best_of_n: pd.DataFrame,
    x: str,
    margin: float,
    method: str,
) -> list[tuple[str, str, str | None, Callable]]:
    """(title, file name, why it is skipped or None, draw) for each figure of the report:
    `chosen` holds the rows of the runs the curves draw (each method's selected setting)."""
    logps_split = next(
        (
            split
            for split in ("validation", "train")
            if distinct_values(chosen, split, "chosen_logps", x) >= 2
        ),
        None,
    )
    return [
        (
            "Overfitting curve",
            "overfitting",
            _missing(frame, ("train", "loss"), ("validation", "win_rate"))
            or _single_evaluation(chosen, "win_rate", x),
            lambda: plot_overfitting(chosen, x=x, margin=margin, method=method),
        ),
        (
            "Reward-KL frontier",
            "frontier",
            _missing(frame, ("validation", "kl"), ("validation", "judge_reward"))
            or (
                "fewer than 2 distinct validation KL values: there is no frontier to draw"
                if distinct_values(frame, "validation", "judge_reward", "kl") < 2
                else None
            ),
            lambda: plot_frontier(frame, best_of_n, method=method),
        ),
        (
            "Heatmaps over beta and learning rate",
            "heatmaps",
            _missing(frame, ("validation", "win_rate"), ("config", "loss.beta", "trainer.lr"))
            or (
                None
                if methods_with_grid(frame, method=method)
                else f"no method has {MIN_AXIS_VALUES} or more values of both loss.beta and "
                "trainer.lr: its grid would be one row or column, which says no more than the "
                "table"
            ),
            lambda: plot_heatmaps(frame, method=method),
        ),
        (
            "Proxy reward against gold reward",
            "proxy_gold",
            _missing(frame, ("validation", "proxy_reward"), ("validation", "judge_reward"))
            or _single_evaluation(chosen, "proxy_reward", x),
            lambda: plot_proxy_gold(chosen, x=x, method=method),
        ),
        (
            "Chosen and rejected log-probs",
            "logps",
            (
                _missing(frame, ("validation", "chosen_logps"), ("validation", "rejected_logps"))
                and _missing(frame, ("train", "chosen_logps"), ("train", "rejected_logps"))
            )
            or (None if logps_split else "a single evaluation per run: no curve to draw"),
            lambda: plot_logps(chosen, split=logps_split, x=x, method=method),
        ),
    ]


def selection_metric(frame: pd.DataFrame) -> str | None:
    """win_rate when the sweep generated, else reward_accuracy; None when neither was logged."""
    for metric in ("win_rate", "reward_accuracy"):
        if has_values(frame, "validation", metric):
            return metric
    return None


def _missing(frame: pd.DataFrame, *needs: tuple[str, ...]) -> str | None:
    """Why the sweep has no data for a figure, None when it has: each need is (split, metric...),
    or ("config", column...) for config columns."""
    for split, *columns in needs:
        present = (
            set(columns) <= set(frame.columns)
            if split == "config"
            else has_values(frame, split, *columns)
        )
        if not present:
            wanted = ", ".join(c if split == "config" else f"{split} {c}" for c in columns)
            return f"the sweep has no data for this figure (needs {wanted})"
    return None


def _single_evaluation(chosen: pd.DataFrame, metric: str, x: str) -> str | None:
    """The reason to skip a curve of `metric` over `x` that has fewer than two points."""
    if distinct_values(chosen, "validation", metric, x) >= 2:
        return None
    return "a single validation evaluation per run: no curve to draw"


def _run_section(frame: pd.DataFrame) -> list[str]:
    runs = frame.drop_duplicates("run_id")
    counts = runs["status"].value_counts()
    text = ", ".join(f"{n} {status}" for status, n in counts.items())
    lines = ["## Runs", "", f"{len(runs)} runs: {text}.", ""]
    unfinished = runs[runs["status"] != "finished"]
    if not unfinished.empty:
        last_step = frame.groupby("run_id")["step"].max()
        lines += ["| Run | Status | Last step | Error |", "|---|---|---|---|"]
        for row in unfinished.sort_values("run_id").itertuples():
            step = last_step.get(row.run_id)
            step_text = "—" if pd.isna(step) else f"{step:g}"
            error = row.error if isinstance(row.error, str) else ""
            lines.append(f"| {row.run_id} | {row.status} | {step_text} | {error} |")
        lines.append("")
    return lines


def _table_section(frame, out_dir, checkpoint, method, baseline, n_boot, select_metric, family):
    lines = ["## Methods", ""]
    if select_metric is None:
        return lines + [
            "Skipped: no finished run has a validation win rate or reward accuracy to select on.",
            "",
        ]
    table = method_table(
        frame,
        checkpoint,
        method,
        baseline,
        n_boot=n_boot,
        select_metric=select_metric,
        family=family,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "table.tex").write_text(table.to_latex())
    return lines + [table.to_markdown(), "LaTeX: [table.tex](table.tex)", ""]


def _peak_lines(chosen: pd.DataFrame, margin: float, x: str, method: str) -> list[str]:
    summary = overfitting_summary(chosen, margin, x, method)
    lines = [
        f"Peak of the mean validation win rate and onset of overfitting (the first evaluation "
        f"from which the mean of the next {DROP_RUN} stays more than {ONSET_SE:g} standard errors, "
        f"and at least {100 * margin:g} points, below the smoothed running peak):",
        "",
        f"| Method | Peak {x} | Peak win rate (%) | Onset {x} | Runs |",
        "|---|---|---|---|---|",
    ]
    for row in summary.itertuples(index=False):
        _, peak_x, peak, onset, n_runs = row
        onset_text = "none" if pd.isna(onset) else f"{onset:g}"
        peak_text = f"{peak_x:g} (start)" if peak_x == START else f"{peak_x:g}"
        lines.append(f"| {row.method} | {peak_text} | {100 * peak:.1f} | {onset_text} | {n_runs} |")
    if not summary.empty and (summary[f"peak_{x}"] == START).any():
        lines += [
            "",
            "(start): the peak is the first evaluation, before any training: no improvement over "
            "pi_ref found.",
        ]
    return [*lines, ""]


def _write(out_dir: Path, lines: list[str]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    """Console entry point: `prefopt-report SWEEP_DIR [--out DIR] ...`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", help="directory holding the sweep's run directories")
    parser.add_argument("--out", default=None, help="where report.md goes (default: sweep_dir)")
    parser.add_argument("--checkpoint", choices=CHECKPOINTS, default="best")
    parser.add_argument(
        "--margin", type=float, default=MIN_DROP, help="smallest win-rate drop for an onset"
    )
    parser.add_argument("--x", choices=("step", "epoch"), default="step")
    parser.add_argument("--method", default="loss.name", help="config key naming the method")
    parser.add_argument("--baseline", default="dpo", help="method the tests compare to")
    parser.add_argument(
        "--family",
        nargs="+",
        default=None,
        help="methods compared with the baseline, Holm over them (default: every other method)",
    )
    parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples")
    args = parser.parse_args(argv)
    setup_console()
    path = write_report(
        args.sweep_dir,
        args.out,
        args.checkpoint,
        args.margin,
        args.x,
        args.method,
        args.baseline,
        args.n_boot,
        args.family,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
