"""How held-out metrics move over training for each value of one swept setting.

One panel per metric (win rate, grammatical fraction, KL, ...), one line per value of the setting
(learning rate, beta, label flip rate, data size), the mean over seeds at each evaluation. The
studies of sensitivity use it where the method table would hide the setting.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from prefopt.analysis.overfitting import mean_curve
from prefopt.analysis.style import PAPER_RC, UNFINISHED_STYLE, figure_legend, panel_grid

LABELS = {
    "win_rate": "Win rate vs $\\pi_{\\mathrm{ref}}$ (%)",
    "grammatical": "Grammatical (%)",
    "kl": "KL($\\pi\\,\\|\\,\\pi_{\\mathrm{ref}}$) (nats)",
    "judge_reward": "Gold reward (judge scale)",
    "length": "Length (tokens)",
    "loss": "Held-out preference loss (nats)",
}
PERCENT = {"win_rate", "grammatical"}


def plot_setting_curves(
    frame: pd.DataFrame,
    setting: str,
    metrics=("win_rate", "grammatical", "kl"),
    x: str = "epoch",
    split: str = "validation",
    group: str | None = None,
):
    """Figure: ``metrics`` against ``x`` on ``split``, a line per value of ``setting``.

    ``group``: a column (such as ``run_label``) whose values get separate line styles, for studies
    that cross a setting with a few methods. Runs that did not finish are drawn dotted.
    """
    rows = frame[frame["split"] == split]
    if rows.empty or setting not in rows:
        raise ValueError(f"no {split} rows with column {setting!r} in the sweep")
    values = sorted(rows[setting].dropna().unique())
    groups = sorted(rows[group].dropna().unique()) if group else [None]
    styles = ["-", "--", "-.", ":"]
    with plt.rc_context(PAPER_RC):
        figure, axes = panel_grid(len(metrics))
        colors = plt.get_cmap("viridis")
        handles = {}
        for axis, metric in zip(axes, metrics, strict=True):
            for g_index, name in enumerate(groups):
                in_group = rows if name is None else rows[rows[group] == name]
                for v_index, value in enumerate(values):
                    runs = in_group[in_group[setting] == value]
                    if runs.empty or metric not in runs:
                        continue
                    curve = mean_curve(runs, metric, x)
                    scale = 100 if metric in PERCENT else 1
                    unfinished = (runs["status"] != "finished").any()
                    label = (
                        f"{setting.rsplit('.', 1)[-1]}={value:g}"
                        if isinstance(value, float)
                        else f"{setting.rsplit('.', 1)[-1]}={value}"
                    )
                    if name is not None:
                        label = f"{name}, {label}"
                    style = UNFINISHED_STYLE if unfinished else {"marker": "o"}
                    (line,) = axis.plot(
                        curve[x],
                        scale * curve["mean"],
                        color=colors(v_index / max(1, len(values) - 1)),
                        linestyle=styles[g_index % len(styles)],
                        **{k: v for k, v in style.items() if k != "linestyle"},
                    )
                    handles.setdefault(label, line)
            axis.set_xlabel("Epoch" if x == "epoch" else "Training step")
            axis.set_ylabel(LABELS.get(metric, metric))
            if metric == "win_rate":
                axis.axhline(50, color="0.6", linestyle=":", linewidth=0.8)
        figure_legend(figure, handles)
    return figure
