"""The paper table: one row per method, mean and 95% CI, best in bold, Markdown and LaTeX.

Hyperparameters and checkpoints are chosen on validation (`selection.py`), numbers are reported
on test. Win rate, judge reward and length come from the per-prompt samples files when every
selected run has them, with a crossed bootstrap over seeds and prompts; every other column (and
those when samples are missing) uses a Student t interval over seeds. The p column is a
Wilcoxon signed-rank test of per-prompt win scores (means over seeds) against the baseline method.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from prefopt.analysis.selection import (
    checkpoint_rows,
    hyperparameter_columns,
    select_hyperparameters,
)
from prefopt.analysis.stats import Interval, crossed_bootstrap_ci, paired_prompt_test, t_interval
from prefopt.results.sweep import load_samples


@dataclass(frozen=True)
class Column:
    """A table column: the metric, its header, a display scale, digits and which way is better."""

    metric: str
    header: str
    scale: float = 1.0
    digits: int = 2
    higher_is_better: bool | None = None  # None: no best is marked (KL, length)
    sample_field: str | None = None  # per-prompt field of the samples files, if any
    is_fraction: bool = False  # a rate in [0, 1]: interval bounds are clipped to it


COLUMNS = (
    Column("win_rate", "Win rate (%)", 100.0, 1, True, "win", is_fraction=True),
    Column("lc_win_rate", "LC win rate (%)", 100.0, 1, True, is_fraction=True),
    Column("judge_reward", "Judge reward", 1.0, 2, True, "policy_reward"),
    Column("kl", "KL (nats)", 1.0, 2),
    Column("length", "Length (tokens)", 1.0, 1, None, "policy_length"),
    Column("reward_accuracy", "Reward acc. (%)", 100.0, 1, True, is_fraction=True),
)


@dataclass
class MethodTable:
    """Numbers (`data`: one row per method, `<metric>`, `<metric>_low`, `<metric>_high`) and the
    text around them; `to_markdown()` and `to_latex()` render it."""

    data: pd.DataFrame
    columns: tuple[Column, ...]
    caption: str
    bayes_accuracy: float
    unfinished: list[str] = field(default_factory=list)

    def best_method(self, metric: str = "win_rate") -> str:
        column = next(c for c in self.columns if c.metric == metric)
        values = self.data.set_index("method")[metric].dropna()
        return values.idxmax() if column.higher_is_better else values.idxmin()

    def _cells(self, bold, format_mean) -> tuple[list[str], list[list[str]]]:
        header = ["Method", "Setting", "Seeds", *[c.header for c in self.columns], "p vs base"]
        best = {
            c.metric: self.best_method(c.metric)
            for c in self.columns
            if c.higher_is_better is not None and self.data[c.metric].notna().any()
        }
        rows = []
        for _, row in self.data.iterrows():
            cells = [row["method"], row["setting"] or "default", str(row["n_seeds"])]
            for column in self.columns:
                text = format_mean(row, column)
                cells.append(bold(text) if best.get(column.metric) == row["method"] else text)
            cells.append("—" if np.isnan(row["p_value"]) else f"{row['p_value']:.3f}")
            rows.append(cells)
        if not np.isnan(self.bayes_accuracy):
            ceiling = ["Bayes-optimal (ceiling)", "", ""] + ["" for _ in self.columns] + [""]
            accuracy = [c.metric for c in self.columns].index("reward_accuracy")
            ceiling[3 + accuracy] = f"{100 * self.bayes_accuracy:.1f}"
            rows.append(ceiling)
        return header, rows

    def to_markdown(self) -> str:
        header, rows = self._cells(lambda t: f"**{t}**", _plain_cell)
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cells) + " |" for cells in rows]
        return f"{self.caption}\n\n" + "\n".join(lines) + "\n"

    def to_latex(self) -> str:
        header, rows = self._cells(lambda t: rf"\textbf{{{t}}}", _latex_cell)
        lines = [
            r"\begin{table}[t]",
            r"\centering\small",
            rf"\caption{{{_latex_escape(self.caption)}}}",
            r"\begin{tabular}{ll" + "r" * (len(header) - 2) + "}",
            r"\toprule",
            " & ".join(_latex_escape(h) for h in header) + r" \\",
            r"\midrule",
        ]
        for cells in rows:
            escaped = [_latex_escape(c) for c in cells[:3]] + [
                c.replace("—", "--") for c in cells[3:]
            ]
            lines.append(" & ".join(escaped) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
        return "\n".join(lines) + "\n"


def method_table(
    frame: pd.DataFrame,
    checkpoint: str = "best",
    method: str = "loss.name",
    baseline: str = "dpo",
    select_split: str = "validation",
    report_split: str = "test",
    confidence: float = 0.95,
    columns: tuple[Column, ...] = COLUMNS,
    n_boot: int = 2000,
    select_metric: str = "win_rate",
) -> MethodTable:
    """The paper table of a sweep frame from `load_sweep` (all splits); settings and checkpoints
    maximise the mean `select_metric` on `select_split` (reward_accuracy for a sweep that did not
    generate)."""
    if select_metric not in frame:
        raise ValueError(f"select_metric {select_metric!r} is not a column of the frame")
    checkpoints = checkpoint_rows(frame, checkpoint, select_metric, select_split, report_split)
    if checkpoints.empty:
        raise ValueError(f"no run of the sweep has a {select_split!r} {select_metric} to select on")
    hyperparameters = hyperparameter_columns(frame, method=method)
    selected = select_hyperparameters(checkpoints, method, hyperparameters)
    prompt_scores = {
        name: _prompt_scores(runs, report_split) for name, runs in selected.groupby(method)
    }
    rows = []
    for name, runs in selected.groupby(method, sort=True):
        row = {"method": name, "setting": runs["setting"].iloc[0], "n_seeds": len(runs)}
        for column in columns:
            interval = _interval(runs, column, prompt_scores[name], confidence, n_boot)
            if column.is_fraction:
                interval = interval.clipped(0.0, 1.0)
            row[column.metric] = interval.mean * column.scale
            row[f"{column.metric}_low"] = interval.low * column.scale
            row[f"{column.metric}_high"] = interval.high * column.scale
        row["p_value"] = _p_value(prompt_scores, name, baseline)
        rows.append(row)
    for name in sorted(set(frame[method].dropna()) - set(selected[method])):
        rows.append({"method": name, "setting": "no finished run", "n_seeds": 0, "p_value": np.nan})
    data = pd.DataFrame(rows).reindex(
        columns=["method", "setting", "n_seeds", "p_value"]
        + [f"{c.metric}{s}" for c in columns for s in ("", "_low", "_high")]
    )
    unfinished = _unfinished_runs(frame)
    bayes = (
        frame.loc[frame["split"] == report_split, "bayes_accuracy"]
        if "bayes_accuracy" in frame
        else []
    )
    bayes_accuracy = float(np.nanmean(bayes)) if len(bayes) else float("nan")
    selection = f"{select_split} {select_metric.replace('_', ' ')}"
    caption = _caption(data, checkpoint, baseline, selection, report_split, confidence, unfinished)
    return MethodTable(data, columns, caption, bayes_accuracy, unfinished)


def _prompt_scores(runs: pd.DataFrame, split: str) -> dict[str, np.ndarray] | None:
    """Per-prompt fields of the selected runs' samples {field: (S, P)}; None if a run lacks them."""
    samples = []
    for _, run in runs.iterrows():
        table = load_samples(run["run_dir"], run["step"], split)
        if table is None:
            return None
        samples.append(table.set_index("prompt_index"))
    prompts = sorted(set().union(*(s.index for s in samples)))
    fields = set.intersection(*(set(s.columns) for s in samples))
    return {
        name: np.stack([s[name].reindex(prompts).to_numpy(dtype=float) for s in samples])
        for name in fields
        if name in {"win", "policy_reward", "policy_length"}
    } | {"prompts": np.asarray(prompts)}


def _interval(runs, column: Column, scores, confidence, n_boot) -> Interval:
    if scores is not None and column.sample_field in scores:
        return crossed_bootstrap_ci(scores[column.sample_field], confidence, n_boot)
    if column.metric not in runs:
        return Interval(np.nan, np.nan, np.nan, 0)
    return t_interval(runs[column.metric], confidence)


def _p_value(prompt_scores, name: str, baseline: str) -> float:
    """Paired test of per-prompt win scores against the baseline over their common prompts."""
    mine, base = prompt_scores.get(name), prompt_scores.get(baseline)
    if name == baseline or mine is None or base is None:
        return float("nan")
    common, mine_at, base_at = np.intersect1d(mine["prompts"], base["prompts"], return_indices=True)
    if common.size == 0:
        return float("nan")
    return paired_prompt_test(mine["win"][:, mine_at], base["win"][:, base_at])


def _unfinished_runs(frame: pd.DataFrame) -> list[str]:
    runs = frame.drop_duplicates("run_id")
    runs = runs[runs["status"] != "finished"].sort_values("run_id")
    return [
        f"{row.run_id} ({row.status}{': ' + row.error if isinstance(row.error, str) else ''})"
        for row in runs.itertuples()
    ]


def _caption(data, checkpoint, baseline, selection, report_split, confidence, unfinished) -> str:
    seeds = ", ".join(f"{m} {n}" for m, n in zip(data["method"], data["n_seeds"], strict=True))
    text = (
        f"{report_split.capitalize()} results at the {checkpoint} checkpoint; hyperparameters and "
        f"checkpoint selected on {selection} (mean over seeds). Mean and "
        f"{100 * confidence:.0f}% CI: crossed bootstrap over seeds and prompts for win rate, judge "
        f"reward and length, Student t over seeds otherwise. Best in bold. p: Wilcoxon signed-rank "
        f"test paired by prompt against {baseline}. Seeds per method: {seeds}."
    )
    if unfinished:
        text += f" Not finished, left out: {'; '.join(unfinished)}."
    return text


def _plain_cell(row, column: Column) -> str:
    mean, low, high = (row[f"{column.metric}{s}"] for s in ("", "_low", "_high"))
    if np.isnan(mean):
        return "—"
    text = f"{mean:.{column.digits}f}"
    if np.isnan(low):
        return text
    return f"{text} [{low:.{column.digits}f}, {high:.{column.digits}f}]"


def _latex_cell(row, column: Column) -> str:
    text = _plain_cell(row, column)
    if "[" not in text:
        return text.replace("—", "--")
    mean, interval = text.split(" ", 1)
    return rf"{mean}\,{{\scriptsize {interval}}}"


def _latex_escape(text) -> str:
    text = (
        f"{text:g}" if isinstance(text, float) else str(text)
    )  # numeric method names (trainer.lr)
    for char, escaped in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&")):
        text = text.replace(char, escaped)
    return text.replace("#", r"\#").replace("—", "--")
