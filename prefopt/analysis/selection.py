"""Pick a checkpoint per run and a hyperparameter setting per method, on the validation split.

checkpoint "best": the step of the run's highest validation `metric` (early stopping);
checkpoint "final": the run's last validation step. The report split (test) is read at that same
step, so test numbers never take part in a choice. A method's setting is the one whose finished
runs have the highest mean validation score over seeds.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from prefopt.results.sweep import config_columns

CHECKPOINTS = ("best", "final")
START = 0  # step (and epoch) of the start of training: the policy is still its initial model
# Config keys that name a replicate or a place, not a hyperparameter to select.
_NOT_HYPERPARAMETER = re.compile(
    r"(^|\.)(\w*seed|\w*dir|\w*path|output\w*|run_label|name|num_threads)$"
)


def hyperparameter_columns(frame: pd.DataFrame, method: str = "loss.name") -> list[str]:
    """Config columns that vary across the sweep, without `method`, seeds, directories and paths."""
    columns = []
    for column in config_columns(frame):
        if column == method or _NOT_HYPERPARAMETER.search(column):
            continue
        values = frame[column].dropna()
        if values.map(repr).nunique() > 1:
            columns.append(column)
    return columns


def checkpoint_rows(
    frame: pd.DataFrame,
    checkpoint: str = "best",
    metric: str = "win_rate",
    select_split: str = "validation",
    report_split: str = "test",
) -> pd.DataFrame:
    """One row per run with a `select_split` evaluation: its config, the chosen `step`/`epoch`,
    `score` (the validation metric there), `at_start` (the chosen step is START: no checkpoint
    beat the untrained policy) and the report split's metrics at that step (NaN where the run did
    not evaluate the report split at that step)."""
    if checkpoint not in CHECKPOINTS:
        raise ValueError(f"checkpoint {checkpoint!r} is not one of {CHECKPOINTS}")
    run_columns = ["run_id", "status", "error", "run_dir", *config_columns(frame)]
    rows = []
    for _, run in frame.groupby("run_id", sort=True):
        selecting = run[(run["split"] == select_split) & run[metric].notna()]
        if selecting.empty:
            continue
        selecting = selecting.sort_values("step")
        chosen = (
            selecting.loc[selecting[metric].idxmax()]
            if checkpoint == "best"
            else selecting.iloc[-1]
        )
        reported = run[(run["split"] == report_split) & (run["step"] == chosen["step"])]
        row = {column: run[column].iloc[0] for column in run_columns}
        row.update(step=chosen["step"], epoch=chosen["epoch"], score=chosen[metric])
        row["at_start"] = bool(chosen["step"] == START)
        if not reported.empty:
            metrics = reported.iloc[-1].drop(labels=[*run_columns, "split", "step", "epoch"])
            row.update(metrics.to_dict())
        rows.append(row)
    result = pd.DataFrame(rows)
    result.attrs["config_columns"] = config_columns(frame)
    return result


def select_hyperparameters(
    checkpoints: pd.DataFrame, method: str = "loss.name", hyperparameters: list[str] | None = None
) -> pd.DataFrame:
    """The finished runs of each method's best setting (highest mean `score` over seeds).

    `hyperparameters`: the columns that make a setting (default: those varying in the sweep).
    Adds `setting`, a label such as "beta=0.5, lr=0.0001".
    """
    if hyperparameters is None:
        hyperparameters = hyperparameter_columns(checkpoints, method=method)
    finished = checkpoints[checkpoints["status"] == "finished"].copy()
    if finished.empty:
        return finished.assign(setting=pd.Series(dtype=str))
    finished["setting"] = [setting_label(row, hyperparameters) for _, row in finished.iterrows()]
    means = finished.groupby([method, "setting"], sort=True)["score"].mean().reset_index()
    best = means.loc[means.groupby(method)["score"].idxmax()]
    chosen = set(zip(best[method], best["setting"], strict=True))
    keep = [(m, s) in chosen for m, s in zip(finished[method], finished["setting"], strict=True)]
    return finished[keep].reset_index(drop=True)


def setting_label(row: pd.Series, hyperparameters: list[str]) -> str:
    """'beta=0.5, lr=0.0001' from the row's hyperparameters (last key component when unique)."""
    short = [column.rsplit(".", 1)[-1] for column in hyperparameters]
    names = [s if short.count(s) == 1 else c for s, c in zip(short, hyperparameters, strict=True)]
    parts = []
    for name, column in zip(names, hyperparameters, strict=True):
        value = row[column]
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        parts.append(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}")
    return ", ".join(parts)


def selected_setting_rows(
    frame: pd.DataFrame,
    checkpoint: str = "best",
    method: str = "loss.name",
    select_metric: str = "win_rate",
) -> pd.DataFrame:
    """Every row of `frame` (any status) whose run has its method's selected setting, with a
    `setting` column; the setting is chosen on validation `select_metric` among finished runs."""
    hyperparameters = hyperparameter_columns(frame, method=method)
    selected = select_hyperparameters(
        checkpoint_rows(frame, checkpoint, select_metric),
        method=method,
        hyperparameters=hyperparameters,
    )
    chosen = set(zip(selected[method], selected["setting"], strict=True))
    runs = frame.drop_duplicates("run_id").set_index("run_id")
    settings = {run_id: setting_label(row, hyperparameters) for run_id, row in runs.iterrows()}
    labelled = frame.assign(setting=frame["run_id"].map(settings))
    keep = [(m, s) in chosen for m, s in zip(labelled[method], labelled["setting"], strict=True)]
    return labelled[keep]
