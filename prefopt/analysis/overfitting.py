"""The overfitting curve: training loss still falls while the held-out win rate turns down.

`find_overfitting` gives the peak of the held-out win rate and the onset of overfitting, the first
evaluation after the peak at which the win rate is at least `margin` below it:

    peak = argmax_t w_t,    onset = min {t > peak : w_t <= w_peak - margin}

It only looks at values up to each point, so the same rule stops a run early.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from prefopt.analysis.style import (
    PAPER_RC,
    UNFINISHED_STYLE,
    figure_legend,
    is_row_end,
    is_row_start,
    panel_grid,
    twin_axis,
)

X_LABELS = {"step": "Training step", "epoch": "Epoch"}


def find_overfitting(steps, win_rates, margin: float) -> tuple[float, float, float | None]:
    """(peak_step, peak_value, onset_step or None); NaN win rates are ignored, steps are sorted."""
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    steps = np.asarray(steps, dtype=float)
    win_rates = np.asarray(win_rates, dtype=float)
    if steps.shape != win_rates.shape:
        raise ValueError(f"steps {steps.shape} and win_rates {win_rates.shape} differ in shape")
    keep = ~np.isnan(win_rates)
    if not keep.any():
        raise ValueError("find_overfitting needs at least one win rate that is not NaN")
    order = np.argsort(steps[keep], kind="stable")
    steps, win_rates = steps[keep][order], win_rates[keep][order]
    peak = int(np.argmax(win_rates))
    below = np.flatnonzero(win_rates[peak + 1 :] <= win_rates[peak] - margin)
    onset = float(steps[peak + 1 + below[0]]) if below.size else None
    return float(steps[peak]), float(win_rates[peak]), onset


def mean_curve(runs: pd.DataFrame, metric: str, x: str = "step", confidence: float = 0.95):
    """Mean of `metric` over runs at each x, with a band: a t interval over runs where there are
    two or more, else the run's own logged `<metric>_ci_low/high` (if any). Columns: x, mean,
    low, high, n."""
    rows = runs.dropna(subset=[metric, x])
    grouped = rows.groupby(x)[metric]
    curve = pd.DataFrame({"mean": grouped.mean(), "sd": grouped.std(), "n": grouped.count()})
    half = stats.t.ppf(0.5 + confidence / 2, np.maximum(curve["n"] - 1, 1)) * curve["sd"]
    curve["low"] = curve["mean"] - half / np.sqrt(curve["n"])
    curve["high"] = curve["mean"] + half / np.sqrt(curve["n"])
    logged = [f"{metric}_ci_low", f"{metric}_ci_high"]
    if all(column in rows for column in logged):
        single = curve["n"] == 1
        own = rows.groupby(x)[logged].mean()
        curve.loc[single, "low"] = own.loc[single, logged[0]]
        curve.loc[single, "high"] = own.loc[single, logged[1]]
    return curve.drop(columns="sd").reset_index()


def plot_overfitting(
    frame: pd.DataFrame,
    x: str = "step",
    margin: float = 0.02,
    method: str = "loss.name",
    heldout_split: str = "validation",
    titles: dict[str, str] | None = None,
):
    """One panel per method: train and held-out loss (left axis), held-out win rate with its band
    (right axis), peak and onset marked. Finished runs are averaged; runs that did not finish are
    drawn on their own, dotted, and named in the legend. Returns the figure."""
    if x not in X_LABELS:
        raise ValueError(f"x {x!r} is not one of {tuple(X_LABELS)}")
    methods = sorted(frame[method].dropna().unique())
    if not methods:
        raise ValueError(f"the frame has no {method!r} values to draw")
    with plt.rc_context(PAPER_RC):
        figure, axes = panel_grid(len(methods))
        handles = {}
        for index, (axis, name) in enumerate(zip(axes, methods, strict=True)):
            runs = frame[frame[method] == name]
            twin = _overfitting_panel(axis, runs, x, margin, heldout_split, handles)
            if is_row_start(index, len(methods)):
                axis.set_ylabel("Preference loss (nats)")
            if is_row_end(index, len(methods)):
                twin.set_ylabel(f"{heldout_split.capitalize()} win rate (%)", color="C0")
            axis.set_title((titles or {}).get(name, _panel_title(name, runs)))
        figure_legend(figure, handles)
    return figure


def _overfitting_panel(axis, runs, x, margin, heldout_split, handles: dict):
    """Draw one method's curves on `axis` and a twin axis, adding legend handles; the twin."""
    finished = runs[runs["status"] == "finished"]
    train = mean_curve(finished[finished["split"] == "train"], "loss", x)
    heldout_rows = finished[finished["split"] == heldout_split]
    heldout = mean_curve(heldout_rows, "loss", x)
    (handles["train loss"],) = axis.plot(train[x], train["mean"], color="0.25")
    if not heldout.empty:
        (handles[f"{heldout_split} loss"],) = axis.plot(
            heldout[x], heldout["mean"], color="0.25", linestyle="--"
        )
    axis.set_xlabel(X_LABELS[x])
    twin = twin_axis(axis, "C0")
    win = mean_curve(heldout_rows, "win_rate", x)
    if not win.empty:
        (handles["win rate"],) = twin.plot(win[x], 100 * win["mean"], color="C0", marker="o")
        low, high = (
            100 * win[b].clip(0.0, 1.0) for b in ("low", "high")
        )  # a rate stays in [0, 100]
        handles["95% CI"] = twin.fill_between(win[x], low, high, color="C0", alpha=0.2, linewidth=0)
        peak_x, peak, onset = find_overfitting(win[x], win["mean"], margin)
        (handles["peak"],) = twin.plot(peak_x, 100 * peak, "*", color="C3", markersize=9)
        if onset is not None:
            handles[f"onset (peak - {100 * margin:g} pts)"] = axis.axvline(
                onset, color="C3", linestyle="--", linewidth=1
            )
    for status, run in runs[runs["status"] != "finished"].groupby("status"):
        rows = run[run["split"] == heldout_split].dropna(subset=["win_rate"])
        for _, one in rows.groupby("run_id"):
            (handles[f"{status} run"],) = twin.plot(
                one[x], 100 * one["win_rate"], color="C1", **UNFINISHED_STYLE
            )
    return twin


def _panel_title(name: str, runs: pd.DataFrame) -> str:
    statuses = runs.drop_duplicates("run_id")["status"].value_counts()
    finished = int(statuses.get("finished", 0))
    others = ", ".join(f"{n} {s}" for s, n in statuses.items() if s != "finished")
    return f"{name} ({finished} finished" + (f", {others})" if others else ")")


def overfitting_summary(
    frame: pd.DataFrame,
    margin: float = 0.02,
    x: str = "step",
    method: str = "loss.name",
    heldout_split: str = "validation",
) -> pd.DataFrame:
    """Per method, on the mean held-out win rate of its finished runs: peak x, peak win rate,
    onset x (NaN when the win rate never fell `margin` below its peak) and the number of runs."""
    rows = frame[(frame["split"] == heldout_split) & (frame["status"] == "finished")]
    summary = []
    for name, runs in rows.groupby(method, sort=True):
        curve = mean_curve(runs, "win_rate", x)
        if curve.empty:
            continue
        peak_x, peak, onset = find_overfitting(curve[x], curve["mean"], margin)
        summary.append(
            {
                "method": name,
                f"peak_{x}": peak_x,
                "peak_win_rate": peak,
                f"onset_{x}": np.nan if onset is None else onset,
                "n_runs": runs["run_id"].nunique(),
            }
        )
    return pd.DataFrame(summary)
