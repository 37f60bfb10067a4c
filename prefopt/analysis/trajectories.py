"""Quantities over training, one panel per method, mean over finished runs with a 95% band.

- `plot_proxy_gold`: the proxy reward model's score and the gold reward of the policy's samples.
  Over-optimisation shows as the proxy still rising while the gold reward has turned down.
- `plot_logps`: log pi(y_w|x) and log pi(y_l|x) summed over response tokens. In DPO both often
  fall; what the loss needs is the margin (chosen - rejected) to grow, so a falling chosen
  log-prob alone is not a bug.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from prefopt.analysis.overfitting import X_LABELS, mean_curve
from prefopt.analysis.style import (
    PAPER_RC,
    figure_legend,
    is_row_end,
    is_row_start,
    panel_grid,
    twin_axis,
)


def plot_proxy_gold(
    frame: pd.DataFrame, split: str = "validation", x: str = "step", method: str = "loss.name"
):
    """Gold (judge) reward on the left axis, proxy reward on the right, against training."""
    series = [("judge_reward", "gold reward (judge)", "C0"), ("proxy_reward", "proxy reward", "C1")]
    labels = ("Gold reward (judge units)", "Proxy reward (RM units)")
    return _plot_series(frame, split, x, method, series, labels, twin=True)


def plot_logps(
    frame: pd.DataFrame, split: str | None = None, x: str = "step", method: str = "loss.name"
):
    """Chosen and rejected log-probs against training; split None: validation if it has them."""
    if split is None:
        held_out = frame[(frame["split"] == "validation")]
        has = "chosen_logps" in frame and held_out["chosen_logps"].notna().any()
        split = "validation" if has else "train"
    series = [("chosen_logps", "chosen", "C2"), ("rejected_logps", "rejected", "C3")]
    labels = (f"Response log-prob, {split} (nats)", None)
    return _plot_series(frame, split, x, method, series, labels, twin=False)


def _plot_series(frame, split, x, method, series, labels, twin: bool):
    if x not in X_LABELS:
        raise ValueError(f"x {x!r} is not one of {tuple(X_LABELS)}")
    rows = frame[(frame["split"] == split) & (frame["status"] == "finished")]
    metrics = [metric for metric, _, _ in series]
    missing = [metric for metric in metrics if metric not in rows or rows[metric].isna().all()]
    if missing:
        raise ValueError(f"no finished {split!r} row has {missing}")
    methods = sorted(rows[method].dropna().unique())
    with plt.rc_context(PAPER_RC):
        figure, axes = panel_grid(len(methods))
        handles = {}
        for index, (axis, name) in enumerate(zip(axes, methods, strict=True)):
            runs = rows[rows[method] == name]
            targets = [axis, twin_axis(axis, series[1][2])] if twin else [axis, axis]
            for target, (metric, label, color) in zip(targets, series, strict=True):
                curve = mean_curve(runs, metric, x)
                (handles[label],) = target.plot(curve[x], curve["mean"], color=color)
                target.fill_between(
                    curve[x], curve["low"], curve["high"], color=color, alpha=0.2, linewidth=0
                )
            if is_row_start(index, len(methods)):
                targets[0].set_ylabel(labels[0], color=series[0][2] if twin else "k")
            if twin and is_row_end(index, len(methods)):
                targets[1].set_ylabel(labels[1], color=series[1][2])
            axis.set_xlabel(X_LABELS[x])
            axis.set_title(f"{name} ({runs['run_id'].nunique()} finished runs)")
        figure_legend(figure, handles)
    return figure
