"""Expected validation performance against the number of tuning trials.

Show Your Work: Improved Reporting of Experimental Results.
Dodge, Gururangan, Card, Schwartz and Smith, arXiv 1909.03004.

A loss tuned with n random trials reports the best of their validation scores. With N i.i.d.
trials v_1..v_N drawn from a fixed search space, the expected best of n trials (n draws with
replacement from the empirical distribution) is, with v_(1) <= ... <= v_(N) sorted,

    E[max of n] = sum_i v_(i) * ((i / N)^n - ((i - 1) / N)^n),

since (i / N)^n is the empirical probability that all n draws are at most v_(i). The band is
one standard deviation of that maximum, sqrt(E[max^2] - E[max]^2), clipped to [v_(1), v_(N)] as
in the paper. A curve that still climbs at n = N says the budget was too small to tell how good
the loss can get; one that flattens early says the search space is easy to tune.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import StrMethodFormatter

from prefopt.analysis.style import PAPER_RC, figure_legend, method_colors, panel_grid


def expected_max(values, n_trials) -> tuple[np.ndarray, np.ndarray]:
    """(E[max], sd of the max) of n draws with replacement from `values`, for each n given.

    `values`: the validation score of every trial; a trial without one (NaN) is refused, since
    dropping it would make the loss look easier to tune than it is (score a diverged run).
    """
    values = np.sort(np.asarray(values, dtype=float).ravel())  # (N,)
    if values.size == 0 or np.isnan(values).any():
        raise ValueError("every trial needs a validation value (score a diverged run; none NaN)")
    n_trials = np.atleast_1d(np.asarray(n_trials, dtype=float))  # (K,)
    if (n_trials < 1).any():
        raise ValueError(f"numbers of trials must be at least 1, got {n_trials.min():g}")
    rank = np.arange(1, values.size + 1) / values.size  # (N,): i / N
    at_most = rank[None, :] ** n_trials[:, None]  # (K, N): P(max <= v_(i))
    probability = np.diff(at_most, axis=1, prepend=0.0)  # (K, N): P(max = v_(i))
    mean = probability @ values  # (K,)
    variance = np.clip(probability @ values**2 - mean**2, 0, None)
    return mean, np.sqrt(variance)


def expected_validation(values) -> pd.DataFrame:
    """E[max] and its sd for n = 1..N trials: columns n_trials, expected, sd, low, high."""
    n_trials = np.arange(1, np.asarray(values).size + 1)
    mean, spread = expected_max(values, n_trials)
    lowest, highest = np.nanmin(values), np.nanmax(values)
    return pd.DataFrame(
        {
            "n_trials": n_trials,
            "expected": mean,
            "sd": spread,
            "low": np.clip(mean - spread, lowest, highest),
            "high": np.clip(mean + spread, lowest, highest),
        }
    )


def plot_expected_validation(
    trials: Mapping[str, Sequence[float]], ylabel: str = "Validation win rate (%)"
):
    """One curve per method (method -> its trials' validation values), a band of +-1 sd."""
    colors = method_colors(trials)
    with plt.rc_context(PAPER_RC):
        figure, (axis,) = panel_grid(1)
        handles = {}
        for name in sorted(trials):
            curve = expected_validation(trials[name])
            color = colors[name]
            (handles[name],) = axis.plot(
                curve["n_trials"], curve["expected"], color=color, label=name
            )
            axis.fill_between(
                curve["n_trials"], curve["low"], curve["high"], color=color, alpha=0.2, linewidth=0
            )
        axis.set_xscale("log", base=2)
        axis.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))  # 1, 2, 4 rather than 2^k
        axis.set_xlabel("Hyperparameter trials")
        axis.set_ylabel(ylabel)
        axis.set_title("Expected best validation score")
        figure_legend(figure, handles)
    return figure
