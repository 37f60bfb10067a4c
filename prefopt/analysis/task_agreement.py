"""Do two tasks rank the methods alike? Each method's rank per task and Kendall's tau-b between them.

A method's score on a task is the mean over seeds of its test `metric` at the checkpoint and
setting chosen on validation (`selection.py`), the same runs as the task's method table. Ranks
are 1 for the best, ties sharing their mean rank. Kendall's tau-b between two tasks' scores,
over the methods both have,

    tau_b = (C - D) / sqrt((C + D + T_x) (C + D + T_y)),

with C and D the concordant and discordant pairs of methods and T_x, T_y the pairs tied in one
task only (scipy's ``kendalltau``, variant b), is 1 when the tasks order the methods the same way
and -1 when reversed. Its interval resamples seeds within each task and method (a bootstrap over
each cell's seeds, the tasks apart) and takes the 2.5 and 97.5 percentiles of the resampled tau-b:
it covers which seeds were run, not which methods or tasks were chosen. With fewer than
``MIN_SEEDS`` seeds in some cell there is no interval: one seed's mean has no spread to resample.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from prefopt.analysis.selection import checkpoint_rows, select_hyperparameters

TASK = "task.name"  # the config key that names a run's task
MIN_SEEDS = 2  # seeds every (task, method) cell needs for tau-b's interval
METRIC_LABELS = {"win_rate": "win rate (%)", "reward_accuracy": "reward accuracy (%)"}


def seed_scores(
    frame: pd.DataFrame,
    checkpoint: str = "best",
    method: str = "loss.name",
    select_metric: str = "win_rate",
    metric: str = "win_rate",
    task: str = TASK,
) -> pd.DataFrame:
    """One row per finished run of each method's selected setting, task by task: ``task``,
    ``method``, ``seed`` and ``value``, the run's test ``metric`` at its selected checkpoint
    (settings and checkpoints chosen on validation ``select_metric`` within the task)."""
    rows = []
    for name, runs in frame.groupby(task, sort=True):
        selected = select_hyperparameters(
            checkpoint_rows(runs, checkpoint, select_metric), method=method
        )
        for _, run in selected.iterrows():
            value = run.get(metric, np.nan)
            rows.append(
                {"task": name, "method": run[method], "seed": run.get("seed"), "value": value}
            )
    return pd.DataFrame(rows, columns=["task", "method", "seed", "value"])


def rank_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Per method (rows) and task: the mean score (``<task> mean``), seeds (``<task> seeds``) and
    rank (``<task> rank``, 1 the best, ties averaged); methods ordered by their mean rank."""
    means = scores.groupby(["method", "task"])["value"].agg(["mean", "count"]).unstack("task")
    table = pd.DataFrame(index=means.index)
    for name in means["mean"].columns:
        table[f"{name} mean"] = means["mean"][name]
        table[f"{name} seeds"] = means["count"][name].fillna(0).astype(int)
        table[f"{name} rank"] = means["mean"][name].rank(ascending=False, method="average")
    ranks = table[[c for c in table.columns if c.endswith(" rank")]]
    return table.loc[ranks.mean(axis=1).sort_values(kind="stable").index]


def kendall_tau_b(x, y) -> float:
    """Kendall's tau-b of two equally long score vectors (NaN with fewer than 2 pairs or where one
    vector is constant)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"scores of unequal shapes {x.shape} and {y.shape}")
    if x.size < 2:
        return float("nan")
    return float(stats.kendalltau(x, y, variant="b").statistic)


@dataclass(frozen=True)
class Agreement:
    """Kendall's tau-b between two tasks over the ``n_methods`` methods both have, with its seed
    bootstrap percentile interval (NaN when some cell has fewer than ``MIN_SEEDS`` seeds)."""

    first: str
    second: str
    n_methods: int
    tau_b: float
    low: float
    high: float
    min_seeds: int


def task_agreement(
    scores: pd.DataFrame, n_boot: int = 2000, confidence: float = 0.95, rng=0
) -> list[Agreement]:
    """tau-b and its interval for every pair of tasks of ``scores`` (from ``seed_scores``)."""
    rng = np.random.default_rng(rng)
    scores = scores.dropna(subset=["value"])
    cells = {key: group["value"].to_numpy() for key, group in scores.groupby(["task", "method"])}
    results = []
    for first, second in combinations(sorted(scores["task"].unique()), 2):
        methods = sorted({m for t, m in cells if t == first} & {m for t, m in cells if t == second})
        samples = [cells[(t, m)] for t in (first, second) for m in methods]
        fewest = min((len(s) for s in samples), default=0)
        tau = kendall_tau_b(*_task_means(samples, len(methods)))
        low = high = float("nan")
        if len(methods) >= 2 and fewest >= MIN_SEEDS:
            draws = [
                kendall_tau_b(
                    *_task_means([rng.choice(s, size=len(s)) for s in samples], len(methods))
                )
                for _ in range(n_boot)
            ]
            tail = 100 * (1 - confidence) / 2
            low, high = np.nanpercentile(draws, [tail, 100 - tail])
        results.append(Agreement(first, second, len(methods), tau, float(low), float(high), fewest))
    return results


def _task_means(samples: list[np.ndarray], n_methods: int) -> tuple[np.ndarray, np.ndarray]:
    """The per-method means of the first task's ``n_methods`` cells and of the second's."""
    means = np.array([s.mean() for s in samples])  # (2 * n_methods,)
    return means[:n_methods], means[n_methods:]


def agreement_lines(scores: pd.DataFrame, metric: str, scale: float = 100.0) -> list[str]:
    """Markdown: the rank table of ``metric`` (a key of METRIC_LABELS) and one line of tau-b per
    pair of tasks."""
    metric_name = METRIC_LABELS[metric]
    if scores.empty:
        return ["No finished run to rank.", ""]
    table = rank_table(scores)
    tasks = [c[: -len(" mean")] for c in table.columns if c.endswith(" mean")]
    header = "| Method | " + " | ".join(f"{t}: {metric_name} (rank)" for t in tasks) + " |"
    lines = [header, "|---|" + "---|" * len(tasks)]
    for name, row in table.iterrows():
        cells = []
        for t in tasks:
            mean = row[f"{t} mean"]
            cells.append(
                "—"
                if pd.isna(mean)
                else f"{scale * mean:.1f} ({row[f'{t} rank']:g}; {_seeds(row[f'{t} seeds'])})"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    for result in task_agreement(scores):
        interval = (
            f"95% interval over seeds [{result.low:.2f}, {result.high:.2f}]"
            if not np.isnan(result.low)
            else f"no interval: some method has fewer than {MIN_SEEDS} seeds in a task"
        )
        lines.append(
            f"Kendall's tau-b between {result.first} and {result.second} over "
            f"{result.n_methods} methods: {result.tau_b:.2f} ({interval})."
        )
    return [*lines, ""]


def _seeds(count: float) -> str:
    """'1 seed', '3 seeds'."""
    return f"{int(count)} seed" + ("" if int(count) == 1 else "s")
