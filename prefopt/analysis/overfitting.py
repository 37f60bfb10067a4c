"""The overfitting curve: training loss still falls while the held-out win rate turns down.

**Bands.** At each x (step or epoch) a method has S seeds with estimates y_s (a win rate) and each
evaluation's own standard error se_s (the prompt-level interval the evaluator logs). With a seed
effect a_s of variance sigma^2 and evaluation errors e_s independent across seeds, y_s = mu + a_s +
e_s, the law of total variance gives for the mean over seeds

    Var(ybar) = Var(E[ybar | a]) + E[Var(ybar | a)] = sigma^2 / S + (1/S) * mean_s(se_s^2),

and E[sd(y)^2] = sigma^2 + mean_s(se_s^2), so sd(y)^2 / S estimates both parts at once. With two or
three seeds sd(y) can come out near 0 by chance, so the standard error is never taken below the
part the evaluations' own errors imply (`stats.seed_mean_se`):

    se(ybar) = max(sd(y) / sqrt(S), sqrt(sum_s se_s^2) / S);   S = 1: se_1.

The band is ybar -+ q * se(ybar) with q = t_{S-1} for S >= 3 seeds and the normal quantile below
(never a t-quantile with one degree of freedom); bands from fewer than `MIN_SEEDS` seeds are marked
in the figure. The validation prompts are shared by the seeds, so the part of se_s that comes from
which prompts were drawn is common to them: the floor counts it as if it averaged out over seeds,
so from two seeds on the band can be narrow by up to that part. An evaluation's se_s is
`<metric>_se` where the rows have it, else the wider half of the logged `<metric>_ci_low/high`
(the other may be clipped at 0 or 1) over the normal quantile of the evaluator's level; the
evaluator's t quantile over P prompts makes this overstate se_s by at most 3% for P >= 50.

**Onset against the noise.** `find_overfitting` smooths the win rate w_t with a centered moving
average of `PEAK_WINDOW` evaluations (fewer at the ends), s_t, and calls onset the first evaluation
t from which the mean of the next `DROP_RUN` evaluations falls more than `ONSET_SE` standard errors
(and at least `margin`) below the running peak of the smoothed curve before t:

    onset = min {t >= 1 : mean(w_t .. w_{t+k-1}) < max_{u<t} s_u - max(margin, z * se_t)},

k = DROP_RUN, z = ONSET_SE, se_t the root mean square of the k evaluations' standard errors. The
constants are set by simulation (tests/analysis/test_onset_simulation.py): on flat curves of 9-15
evaluations with the measured validation noise (1.85 points) the rule fires on 3-4% of them (the
test allows 5%), and it finds a 5-point drop held for the last 3 evaluations in 91-92% (at least
90%). The old rule (first
evaluation 2 points below the raw running peak) fired on 83-91% of flat curves. The smoothing
lowers a sharp true peak, which delays the onset rather than inventing one. Whether t is the onset
is settled once evaluation t + max(DROP_RUN - 1, PEAK_WINDOW // 2 - 1) is in, so the same rule
stops a run early that many evaluations late.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from prefopt.analysis.stats import seed_mean_se
from prefopt.analysis.style import (
    PAPER_RC,
    UNFINISHED_STYLE,
    figure_legend,
    is_row_end,
    is_row_start,
    panel_grid,
    twin_axis,
)
from prefopt.eval.stats import CONFIDENCE as EVAL_CONFIDENCE

X_LABELS = {"step": "Training step", "epoch": "Epoch"}
MIN_SEEDS = 3  # bands over fewer seeds use the normal quantile and are marked in figures
PEAK_WINDOW = 7  # evaluations in the centered moving average the running peak is taken on
DROP_RUN = 3  # evaluations whose mean must stay below the peak for an onset
ONSET_SE = 1.9  # how many standard errors below the peak that mean must fall
MIN_DROP = 0.0  # smallest drop below the peak that counts as an onset, whatever the noise


def centered_moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of each point's `window` neighbours along the last axis, fewer at the ends (odd window)."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be an odd number >= 1, got {window}")
    values = np.asarray(values, dtype=float)  # (..., T)
    length = values.shape[-1]
    zero = np.zeros((*values.shape[:-1], 1))
    sums = np.concatenate([zero, np.cumsum(values, axis=-1)], axis=-1)  # (..., T + 1)
    index = np.arange(length)
    low = np.maximum(index - window // 2, 0)  # (T,)
    high = np.minimum(index + window // 2 + 1, length)  # (T,)
    return (sums[..., high] - sums[..., low]) / (high - low)


def onset_indices(win_rates, standard_errors, margin: float = MIN_DROP, n_se: float = ONSET_SE):
    """Index of each curve's onset (module docstring), -1 where there is none.

    `win_rates`: (R, T) curves in evaluation order, no NaN; `standard_errors`: the same shape or
    one that broadcasts to it.
    """
    win_rates = np.atleast_2d(np.asarray(win_rates, dtype=float))  # (R, T)
    errors = np.broadcast_to(np.asarray(standard_errors, dtype=float), win_rates.shape)  # (R, T)
    n_curves, length = win_rates.shape
    starts = np.arange(1, length - DROP_RUN + 1)  # (W,) first evaluation of each drop window
    if starts.size == 0:
        return np.full(n_curves, -1)
    peak = np.maximum.accumulate(centered_moving_average(win_rates, PEAK_WINDOW), axis=1)
    drop = np.mean([win_rates[:, starts + k] for k in range(DROP_RUN)], axis=0)  # (R, W)
    window_se = np.sqrt(np.mean([errors[:, starts + k] ** 2 for k in range(DROP_RUN)], axis=0))
    threshold = np.maximum(margin, n_se * window_se)  # (R, W)
    fell = drop < peak[:, starts - 1] - threshold  # (R, W)
    return np.where(fell.any(axis=1), starts[np.argmax(fell, axis=1)], -1)


def find_overfitting(
    steps, win_rates, standard_errors, margin: float = MIN_DROP, n_se: float = ONSET_SE
) -> tuple[float, float, float | None]:
    """(peak_step, peak_value, onset_step or None) of one curve: the peak is its best evaluation,
    the onset as in the module docstring. Evaluations with a NaN win rate are left out, steps are
    sorted; `standard_errors` is one per evaluation or one for all."""
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    steps = np.asarray(steps, dtype=float)
    win_rates = np.asarray(win_rates, dtype=float)
    if steps.shape != win_rates.shape:
        raise ValueError(f"steps {steps.shape} and win_rates {win_rates.shape} differ in shape")
    errors = np.broadcast_to(np.asarray(standard_errors, dtype=float), win_rates.shape)
    keep = ~np.isnan(win_rates)
    if not keep.any():
        raise ValueError("find_overfitting needs at least one win rate that is not NaN")
    if np.isnan(errors[keep]).any():
        raise ValueError("find_overfitting needs a standard error for every win rate")
    order = np.argsort(steps[keep], kind="stable")
    steps, win_rates, errors = steps[keep][order], win_rates[keep][order], errors[keep][order]
    peak = int(np.argmax(win_rates))
    onset = int(onset_indices(win_rates[None, :], errors[None, :], margin, n_se)[0])
    return float(steps[peak]), float(win_rates[peak]), None if onset < 0 else float(steps[onset])


def evaluation_se(rows: pd.DataFrame, metric: str) -> pd.Series:
    """Each row's own standard error of `metric` (module docstring); NaN where none is logged."""
    if f"{metric}_se" in rows:
        return rows[f"{metric}_se"].astype(float)
    low, high = f"{metric}_ci_low", f"{metric}_ci_high"
    if low not in rows or high not in rows:
        return pd.Series(np.nan, index=rows.index)
    half = np.maximum(
        rows[metric] - rows[low], rows[high] - rows[metric]
    )  # one side may be clipped
    return half / stats.norm.ppf(0.5 + EVAL_CONFIDENCE / 2)


def mean_curve(runs: pd.DataFrame, metric: str, x: str = "step", confidence: float = 0.95):
    """Mean of `metric` over runs at each x and its band (module docstring). Columns: x, mean,
    se, low, high, n (runs); low/high are NaN where the standard error is unknown."""
    rows = runs.dropna(subset=[metric, x])
    rows = rows.assign(_se=evaluation_se(rows, metric))
    points = [
        (value, len(group), *seed_mean_se(group[metric], group["_se"]))
        for value, group in rows.groupby(x, sort=True)
    ]
    curve = pd.DataFrame(points, columns=[x, "n", "mean", "se"])
    quantile = np.where(
        curve["n"] >= MIN_SEEDS,
        stats.t.ppf(0.5 + confidence / 2, np.maximum(curve["n"] - 1, 1)),
        stats.norm.ppf(0.5 + confidence / 2),
    )
    curve["low"] = curve["mean"] - quantile * curve["se"]
    curve["high"] = curve["mean"] + quantile * curve["se"]
    return curve[[x, "mean", "se", "low", "high", "n"]]


def plot_overfitting(
    frame: pd.DataFrame,
    x: str = "step",
    margin: float = MIN_DROP,
    method: str = "loss.name",
    heldout_split: str = "validation",
    titles: dict[str, str] | None = None,
):
    """One panel per method: train and held-out loss (left axis), held-out win rate with its band
    (right axis), peak and onset (a drop of at least `margin`) marked. Finished runs are averaged;
    runs that did not finish are drawn on their own, dotted, and named in the legend. Returns the
    figure."""
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
        few = f" (< {MIN_SEEDS} seeds: normal quantile)" if (win["n"] < MIN_SEEDS).any() else ""
        handles[f"95% CI{few}"] = twin.fill_between(
            win[x], low, high, color="C0", alpha=0.2, linewidth=0
        )
        peak_x, peak, onset = find_overfitting(win[x], win["mean"], win["se"], margin)
        (handles["peak"],) = twin.plot(peak_x, 100 * peak, "*", color="C3", markersize=9)
        if onset is not None:
            handles[f"onset ({DROP_RUN}-eval mean > {ONSET_SE:g} SE below peak)"] = axis.axvline(
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
    margin: float = MIN_DROP,
    x: str = "step",
    method: str = "loss.name",
    heldout_split: str = "validation",
) -> pd.DataFrame:
    """Per method, on the mean held-out win rate of its finished runs and its standard error: peak
    x, peak win rate, onset x (module docstring; NaN when there is none) and the number of runs."""
    rows = frame[(frame["split"] == heldout_split) & (frame["status"] == "finished")]
    summary = []
    for name, runs in rows.groupby(method, sort=True):
        curve = mean_curve(runs, "win_rate", x)
        if curve.empty:
            continue
        peak_x, peak, onset = find_overfitting(curve[x], curve["mean"], curve["se"], margin)
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
