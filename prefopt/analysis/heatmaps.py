"""Heatmaps of the final and the best win rate over beta x learning rate, one row per method.

A cell is the mean over a setting's finished seeds of the run's last (final) or highest (best)
value of `metric` on `split`. One colour scale serves every panel so that methods compare. A cell
marked * has runs that did not finish (left out of the mean); a grey n/a cell has no finished run;
a best cell marked † has a run whose highest value is at the start (step 0, the untrained policy).
A method with fewer than MIN_AXIS_VALUES values on either axis is left out: a one-row or one-column
grid (the 1 x 1 of a sweep at default settings) shows nothing the method table does not.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from prefopt.analysis.selection import START
from prefopt.analysis.style import FULL_WIDTH, PAPER_RC
from prefopt.analysis.tables import START_MARK

AGGREGATES = ("final", "best")
MIN_AXIS_VALUES = 2  # values a method's grid needs on each axis to be drawn


def cell_values(
    frame: pd.DataFrame,
    metric: str = "win_rate",
    split: str = "validation",
    rows: str = "loss.beta",
    columns: str = "trainer.lr",
    method: str = "loss.name",
) -> pd.DataFrame:
    """One row per (method, rows value, columns value): final, best (means over finished runs),
    n_finished, n_unfinished, n_best_at_start (finished runs whose best is at the start)."""
    runs = frame.drop_duplicates("run_id")[["run_id", "status", method, rows, columns]]
    evaluated = frame[(frame["split"] == split) & frame[metric].notna()].sort_values("step")
    per_run = evaluated.groupby("run_id")[metric].agg(final="last", best="max")
    best_steps = evaluated.loc[evaluated.groupby("run_id")[metric].idxmax(), ["run_id", "step"]]
    per_run["best_at_start"] = best_steps.set_index("run_id")["step"] == START
    runs = runs.join(per_run, on="run_id")
    finished = runs["status"] == "finished"
    keys = [method, rows, columns]
    table = runs[finished].groupby(keys)[list(AGGREGATES)].mean()
    counts = runs.assign(
        finished=finished,
        unfinished=~finished,
        best_at_start=finished & runs["best_at_start"].fillna(False).astype(bool),
    ).groupby(keys)
    table = counts[["finished", "unfinished", "best_at_start"]].sum().join(table)
    return table.rename(
        columns={
            "finished": "n_finished",
            "unfinished": "n_unfinished",
            "best_at_start": "n_best_at_start",
        }
    ).reset_index()


def methods_with_grid(
    frame: pd.DataFrame,
    metric: str = "win_rate",
    split: str = "validation",
    rows: str = "loss.beta",
    columns: str = "trainer.lr",
    method: str = "loss.name",
) -> list[str]:
    """The methods whose finished runs have a `metric` at MIN_AXIS_VALUES or more values of both
    `rows` and `columns`, sorted."""
    if not {rows, columns, method, metric} <= set(frame.columns):
        return []
    cells = cell_values(frame, metric, split, rows, columns, method).dropna(subset=["best"])
    counts = cells.groupby(method)[[rows, columns]].nunique()
    return sorted(counts.index[(counts >= MIN_AXIS_VALUES).all(axis=1)])


def plot_heatmaps(
    frame: pd.DataFrame,
    metric: str = "win_rate",
    split: str = "validation",
    rows: str = "loss.beta",
    columns: str = "trainer.lr",
    method: str = "loss.name",
):
    """Rows: methods with a grid (`methods_with_grid`); columns: final and best. Values in % for
    rates. Returns the figure."""
    for column in (rows, columns, method, metric):
        if column not in frame:
            raise ValueError(f"column {column!r} is not in the frame")
    methods = methods_with_grid(frame, metric, split, rows, columns, method)
    if not methods:
        raise ValueError(
            f"no method has {MIN_AXIS_VALUES} or more values of both {rows} and {columns} with a "
            f"finished {split} {metric}: its heatmap would be a single row or column"
        )
    cells = cell_values(frame, metric, split, rows, columns, method)
    cells = cells[cells[method].isin(methods)]
    scale = 100.0 if metric.endswith("rate") else 1.0
    finite = cells[list(AGGREGATES)].to_numpy(dtype=float) * scale
    vmin, vmax = np.nanmin(finite), np.nanmax(finite)
    with plt.rc_context(PAPER_RC):
        figure, axes = plt.subplots(
            len(methods),
            2,
            figsize=(FULL_WIDTH * 0.75, 1.7 * len(methods) + 0.4),
            squeeze=False,
            layout="constrained",
        )
        for (left, right), name in zip(axes, methods, strict=True):
            mine = cells[cells[method] == name]
            for axis, aggregate in ((left, "final"), (right, "best")):
                image = _heatmap(axis, mine, aggregate, rows, columns, scale, vmin, vmax)
                axis.set_title(f"{name}: {aggregate} {split} {metric.replace('_', ' ')}")
        unit = " (%)" if scale == 100.0 else ""
        figure.colorbar(image, ax=axes, label=f"{metric.replace('_', ' ')}{unit}", shrink=0.8)
        notes = []
        if (cells["n_unfinished"] > 0).any():
            notes.append("* a run of this cell did not finish (left out of the mean)")
        if (cells["n_best_at_start"] > 0).any():
            notes.append(
                f"{START_MARK} the best evaluation is the start (step {START}) for a run of this "
                "cell: no improvement found"
            )
        if notes:
            figure.supxlabel("\n".join(notes), fontsize=7)
    return figure


def _heatmap(axis, cells, aggregate, rows, columns, scale, vmin, vmax):
    row_values = sorted(cells[rows].unique())
    column_values = sorted(cells[columns].unique())
    grid = cells.pivot_table(index=rows, columns=columns, values=aggregate, dropna=False)
    grid = grid.reindex(index=row_values, columns=column_values) * scale
    unfinished = cells.pivot_table(
        index=rows, columns=columns, values="n_unfinished", aggfunc="sum"
    )
    unfinished = unfinished.reindex(index=row_values, columns=column_values).fillna(0)
    at_start = cells.pivot_table(
        index=rows, columns=columns, values="n_best_at_start", aggfunc="sum"
    )
    at_start = at_start.reindex(index=row_values, columns=column_values).fillna(0)
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")
    image = axis.imshow(
        np.ma.masked_invalid(grid.to_numpy(dtype=float)),
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        aspect="auto",
        origin="lower",
    )
    middle = (vmin + vmax) / 2
    for i, j in np.ndindex(grid.shape):
        value = grid.iat[i, j]
        mark = "*" if unfinished.iat[i, j] > 0 else ""
        if aggregate == "best" and at_start.iat[i, j] > 0:
            mark += START_MARK
        text = "n/a" if np.isnan(value) else f"{value:.1f}{mark}"
        color = "k" if np.isnan(value) or value > middle else "w"
        axis.text(j, i, text, ha="center", va="center", color=color, fontsize=7)
    axis.set_xticks(range(len(column_values)), [f"{v:g}" for v in column_values])
    axis.set_yticks(range(len(row_values)), [f"{v:g}" for v in row_values])
    axis.set_xlabel(f"{columns} (learning rate)" if columns.endswith("lr") else columns)
    axis.set_ylabel(f"{rows} (β)" if rows.endswith("beta") else rows)
    return image
