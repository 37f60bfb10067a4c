"""Reward against KL to pi_ref (the DPO paper's figure 2) and win rate against sqrt(KL).

Every evaluation point of every run is a dot; a method's curve in the left panel is its frontier,
the highest reward reached at or below each KL (cumulative maximum over points sorted by KL); in
the right panel it is the mean win rate in quantile bins of sqrt(KL), where over-optimisation shows
as a hump (Gao et al. 2210.10760; Rafailov et al. 2406.02900). Best-of-N sampled from pi_ref is the
reference curve, at its estimated KL when the run store has one, else at the bound
log N - (N - 1) / N. A KL estimate below 0 (sampling noise: a KL is never negative) is drawn at 0.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from prefopt.analysis.style import PAPER_RC, figure_legend, method_colors, panel_grid

PI_REF = r"$\pi_{\mathrm{ref}}$"
REWARD_LABELS = {
    "judge_reward": "Gold reward (judge scale)",
    "win_rate": f"Win rate vs {PI_REF} (%)",
}


def pareto_frontier(kl, reward) -> tuple[np.ndarray, np.ndarray]:
    """The points that no point of lower or equal KL beats: (kl, reward) sorted by KL."""
    kl, reward = np.asarray(kl, dtype=float), np.asarray(reward, dtype=float)
    keep = ~(np.isnan(kl) | np.isnan(reward))
    order = np.argsort(kl[keep], kind="stable")
    kl, reward = kl[keep][order], reward[keep][order]
    best_so_far = np.maximum.accumulate(reward) if reward.size else reward
    on_frontier = np.r_[True, best_so_far[1:] > best_so_far[:-1]] if reward.size else []
    return kl[on_frontier], reward[on_frontier]


def binned_mean(x, y, n_bins: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Mean of y in n_bins quantile bins of x: (bin mean x, bin mean y), empty bins dropped."""
    table = pd.DataFrame({"x": x, "y": y}).dropna()
    if table.empty:
        return np.array([]), np.array([])
    n_bins = min(n_bins, table["x"].nunique())
    table["bin"] = pd.qcut(table["x"], n_bins, labels=False, duplicates="drop")
    means = table.groupby("bin")[["x", "y"]].mean()
    return means["x"].to_numpy(), means["y"].to_numpy()


def plot_frontier(
    frame: pd.DataFrame,
    best_of_n: pd.DataFrame | None = None,
    reward: str = "judge_reward",
    split: str = "validation",
    method: str = "loss.name",
):
    """Two panels: `reward` against KL (frontier per method) and win rate against sqrt(KL)."""
    if reward not in REWARD_LABELS:
        raise ValueError(f"reward {reward!r} is not one of {tuple(REWARD_LABELS)}")
    points = frame[frame["split"] == split].dropna(subset=["kl"])
    if points.empty:
        raise ValueError(f"no {split!r} row of the frame has a KL to draw")
    colors = method_colors(points[method].dropna())
    with plt.rc_context(PAPER_RC):
        figure, (left, right) = panel_grid(2, height=2.4)
        handles = {}
        for name, rows in points.groupby(method, sort=True):
            color = colors[name]
            scale = 100.0 if reward == "win_rate" else 1.0
            kl = rows["kl"].clip(lower=0)
            _scatter(left, rows, kl, scale * rows[reward], color)
            (handles[name],) = left.plot(
                *pareto_frontier(kl, scale * rows[reward]), color=color, drawstyle="steps-post"
            )
            if "win_rate" in rows:
                root_kl = np.sqrt(kl)
                _scatter(right, rows, root_kl, 100 * rows["win_rate"], color)
                right.plot(*binned_mean(root_kl, 100 * rows["win_rate"]), color=color, marker="o")
        if best_of_n is not None and not best_of_n.empty and reward in best_of_n:
            handles.update(_best_of_n(left, right, best_of_n, reward))
        if (points["status"] != "finished").any():
            handles["run not finished"] = Line2D(
                [], [], linestyle="", marker="o", markerfacecolor="none", color="0.4"
            )
        left.set_xlabel(rf"KL($\pi\,\|\,${PI_REF}) (nats)")
        left.set_ylabel(REWARD_LABELS[reward])
        left.set_title(f"Reward-KL frontier ({split})")
        right.set_xlabel(r"$\sqrt{\mathrm{KL}}$ ($\sqrt{\mathrm{nats}}$)")
        right.set_ylabel(REWARD_LABELS["win_rate"])
        right.axhline(50, color="0.6", linewidth=0.8, linestyle=":")
        right.set_title(rf"Win rate against $\sqrt{{\mathrm{{KL}}}}$ ({split})")
        figure_legend(figure, handles)
    return figure


def _scatter(axis, rows: pd.DataFrame, x, y, color) -> None:
    finished = (rows["status"] == "finished").to_numpy()
    x, y = np.asarray(x), np.asarray(y)
    axis.scatter(x[finished], y[finished], s=6, color=color, alpha=0.35, linewidths=0)
    axis.scatter(
        x[~finished], y[~finished], s=10, facecolors="none", edgecolors=color, linewidths=0.7
    )


def _best_of_n(left, right, best_of_n: pd.DataFrame, reward: str) -> dict:
    has_estimate = "kl_estimate" in best_of_n and best_of_n["kl_estimate"].notna().all()
    kl = best_of_n["kl_estimate"] if has_estimate else best_of_n["kl_bound"]
    label = f"Best-of-N from {PI_REF}" + ("" if has_estimate else " (KL bound)")
    scale = 100.0 if reward == "win_rate" else 1.0
    (handle,) = left.plot(kl, scale * best_of_n[reward], color="k", marker="s", linestyle="--")
    if "win_rate" in best_of_n:
        right.plot(
            np.sqrt(kl.clip(lower=0)),
            100 * best_of_n["win_rate"],
            color="k",
            marker="s",
            linestyle="--",
        )
    return {label: handle}
