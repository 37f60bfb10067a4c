"""Write a sweep's report: report.md with the method table and every figure (PNG and PDF).

    python -m prefopt.report multirun/variants              # writes multirun/variants/report.md
    python -m prefopt.report multirun/variants --out results/variants --checkpoint final

Figures go to <out>/figures/, the LaTeX table to <out>/table.tex. A figure whose data the sweep
lacks is skipped with a line in the report saying why; runs that did not finish are listed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import matplotlib
import pandas as pd

matplotlib.use("Agg")  # files only, no display

from prefopt.analysis import (  # noqa: E402
    method_table,
    overfitting_summary,
    plot_frontier,
    plot_heatmaps,
    plot_logps,
    plot_overfitting,
    plot_proxy_gold,
    save_figure,
    selected_setting_rows,
)
from prefopt.analysis.selection import CHECKPOINTS  # noqa: E402
from prefopt.console import setup_console  # noqa: E402
from prefopt.results import load_sweep  # noqa: E402
from prefopt.results.sweep import load_best_of_n  # noqa: E402


def has_values(frame: pd.DataFrame, split: str, *metrics: str) -> bool:
    """Whether some finished row of `split` has a value for every one of `metrics`."""
    rows = frame[(frame["split"] == split) & (frame["status"] == "finished")]
    return all(metric in rows and rows[metric].notna().any() for metric in metrics)


def write_report(
    sweep_dir: str | Path,
    out_dir: str | Path | None = None,
    checkpoint: str = "best",
    margin: float = 0.02,
    x: str = "step",
    method: str = "loss.name",
    baseline: str = "dpo",
    n_boot: int = 2000,
) -> Path:
    """Write report.md (and figures/, table.tex) for the sweep; returns the report's path."""
    sweep_dir = Path(sweep_dir)
    out_dir = Path(out_dir) if out_dir is not None else sweep_dir
    figures = out_dir / "figures"
    frame = load_sweep(sweep_dir)
    lines = [f"# Sweep report: {sweep_dir.name}", "", *_run_section(frame)]
    if method not in frame or frame[method].isna().all():
        lines.append(f"No run has a `{method}` in its config: no table or figure by method.")
        return _write(out_dir, lines)
    select_metric = selection_metric(frame)
    lines += _table_section(frame, out_dir, checkpoint, method, baseline, n_boot, select_metric)
    if select_metric is None:
        chosen, scope = frame, "every setting (averaged)"
    else:
        chosen = selected_setting_rows(frame, checkpoint, method, select_metric)
        scope = "each method's selected setting"
    best_of_n = load_best_of_n(sweep_dir)
    sections: list[tuple[str, str, bool, str, Callable]] = [
        (
            "Overfitting curve",
            "overfitting",
            has_values(frame, "train", "loss") and has_values(frame, "validation", "win_rate"),
            "needs train loss and validation win rate",
            lambda: plot_overfitting(chosen, x=x, margin=margin, method=method),
        ),
        (
            "Reward-KL frontier",
            "frontier",
            has_values(frame, "validation", "kl", "judge_reward"),
            "needs validation kl and judge_reward",
            lambda: plot_frontier(frame, best_of_n, method=method),
        ),
        (
            "Heatmaps over beta and learning rate",
            "heatmaps",
            has_values(frame, "validation", "win_rate")
            and {"loss.beta", "trainer.lr"} <= set(frame.columns),
            "needs validation win rate and loss.beta, trainer.lr in the configs",
            lambda: plot_heatmaps(frame, method=method),
        ),
        (
            "Proxy reward against gold reward",
            "proxy_gold",
            has_values(frame, "validation", "proxy_reward", "judge_reward"),
            "needs validation proxy_reward and judge_reward",
            lambda: plot_proxy_gold(chosen, x=x, method=method),
        ),
        (
            "Chosen and rejected log-probs",
            "logps",
            has_values(frame, "validation", "chosen_logps", "rejected_logps")
            or has_values(frame, "train", "chosen_logps", "rejected_logps"),
            "needs chosen_logps and rejected_logps",
            lambda: plot_logps(chosen, x=x, method=method),
        ),
    ]
    for title, name, available, need, draw in sections:
        lines += [f"## {title}", ""]
        if not available:
            lines += [f"Skipped: the sweep has no data for this figure ({need}).", ""]
            continue
        save_figure(draw(), figures, name)
        if name in ("overfitting", "proxy_gold", "logps"):
            lines += [f"Runs of {scope}.", ""]
        lines += [f"![{title}](figures/{name}.png)", "", f"[PDF](figures/{name}.pdf)", ""]
        if name == "overfitting":
            lines += _peak_lines(chosen, margin, x, method)
    return _write(out_dir, lines)


def selection_metric(frame: pd.DataFrame) -> str | None:
    """win_rate when the sweep generated, else reward_accuracy; None when neither was logged."""
    for metric in ("win_rate", "reward_accuracy"):
        if has_values(frame, "validation", metric):
            return metric
    return None


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


def _table_section(frame, out_dir, checkpoint, method, baseline, n_boot, select_metric):
    lines = ["## Methods", ""]
    if select_metric is None:
        return lines + [
            "Skipped: no finished run has a validation win rate or reward accuracy to select on.",
            "",
        ]
    table = method_table(
        frame, checkpoint, method, baseline, n_boot=n_boot, select_metric=select_metric
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "table.tex").write_text(table.to_latex())
    return lines + [table.to_markdown(), "LaTeX: [table.tex](table.tex)", ""]


def _peak_lines(chosen: pd.DataFrame, margin: float, x: str, method: str) -> list[str]:
    summary = overfitting_summary(chosen, margin, x, method)
    lines = [
        f"Peak of the mean validation win rate and onset of overfitting (first evaluation at "
        f"least {100 * margin:g} points below the peak):",
        "",
        f"| Method | Peak {x} | Peak win rate (%) | Onset {x} | Runs |",
        "|---|---|---|---|---|",
    ]
    for row in summary.itertuples(index=False):
        _, peak_x, peak, onset, n_runs = row
        onset_text = "none" if pd.isna(onset) else f"{onset:g}"
        lines.append(f"| {row.method} | {peak_x:g} | {100 * peak:.1f} | {onset_text} | {n_runs} |")
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
    parser.add_argument("--margin", type=float, default=0.02, help="win-rate drop for onset")
    parser.add_argument("--x", choices=("step", "epoch"), default="step")
    parser.add_argument("--method", default="loss.name", help="config key naming the method")
    parser.add_argument("--baseline", default="dpo", help="method the paired test compares to")
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
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
