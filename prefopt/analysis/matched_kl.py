"""Win rate at matched KL: the best win rate a loss reaches within a KL budget to pi_ref.

A loss that wins more by moving further from pi_ref is not better at the same cost. For each
loss, the points are the validation-selected checkpoints of all its trials, each with its KL
(nats), win rate and interval. The upper envelope W(k) = max{win_rate_j : kl_j <= k} (the
frontier of `frontier.pareto_frontier`, non-decreasing in k) is read at KL budgets of 0.5, 1
and 2 nats, with the interval of the point that attains it. A budget below every point's KL is
"not reached" (NaN, reached False): the envelope is never extrapolated nor interpolated, so a
point just above a budget does not count at it. A KL estimate below 0 (sampling noise) counts
as within every budget.

The envelope takes a maximum over trials, so even on test win rates it leans high when many
points crowd under a budget (the best of several noisy values); the interval is that of the one
point and does not carry the selection.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from prefopt.analysis.frontier import pareto_frontier
from prefopt.analysis.stats import t_interval

KL_BUDGETS = (0.5, 1.0, 2.0)  # nats
CONFIDENCE = 0.95  # of the normal interval built from a point's win_rate_se
COLUMNS = ["method", "budget", "win_rate", "ci_low", "ci_high", "kl_of_point", "reached"]


def win_rate_at_kl(
    points: pd.DataFrame,
    budgets: Sequence[float] = KL_BUDGETS,
    method: str = "method",
    confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """One row per method and budget: the envelope's win rate there and its point's interval.

    `points`: one row per checkpoint with columns `method`, kl, win_rate and either ci_low and
    ci_high (used when present) or win_rate_se (then win_rate -+ z * se). Columns of the result: COLUMNS.
    """
    ci_low, ci_high = _interval(points, confidence)
    points = points.assign(ci_low=ci_low, ci_high=ci_high)
    rows = []
    for name, group in points.groupby(method, sort=True):
        kl, win_rate = group["kl"].to_numpy(float), group["win_rate"].to_numpy(float)
        frontier_kl, frontier_win_rate = pareto_frontier(kl, win_rate)  # sorted by KL
        for budget in budgets:
            within = frontier_kl <= budget
            if not within.any():
                rows.append(_row(name, budget, None))
                continue
            best_kl, best = frontier_kl[within][-1], frontier_win_rate[within][-1]
            attaining = np.flatnonzero((kl == best_kl) & (win_rate == best))[0]
            rows.append(_row(name, budget, group.iloc[attaining]))
    return pd.DataFrame(rows, columns=COLUMNS)


def _interval(points: pd.DataFrame, confidence: float) -> tuple[pd.Series, pd.Series]:
    if {"ci_low", "ci_high"} <= set(points.columns):
        return points["ci_low"], points["ci_high"]
    if "win_rate_se" in points.columns:
        half = stats.norm.ppf(0.5 + confidence / 2) * points["win_rate_se"]
        return points["win_rate"] - half, points["win_rate"] + half
    raise ValueError("points need ci_low and ci_high, or win_rate_se")


def _row(name, budget: float, point: pd.Series | None) -> dict:
    if point is None:
        return dict(
            zip(COLUMNS, [name, budget, np.nan, np.nan, np.nan, np.nan, False], strict=True)
        )
    return {
        "method": name,
        "budget": budget,
        "win_rate": float(point["win_rate"]),
        "ci_low": float(point["ci_low"]),
        "ci_high": float(point["ci_high"]),
        "kl_of_point": float(point["kl"]),
        "reached": True,
    }


SEED_COLUMNS = ["method", "budget", "mean", "ci_low", "ci_high", "n_seeds", "seeds_reached"]


def reward_at_kl_by_seed(
    points: pd.DataFrame,
    reward: str = "judge_reward",
    budgets: Sequence[float] = KL_BUDGETS,
    method: str = "method",
    seed: str = "seed",
    confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """A method's frontier at each KL budget, with an interval over training seeds.

    For each method and seed, the envelope max{reward_j : kl_j <= budget} over every evaluation
    point of that seed's runs (all of the method's settings and checkpoints); then the mean over
    the seeds that reach the budget and its t-interval (``stats.t_interval``), so the interval
    covers the spread between trainings, not one draw. Columns: SEED_COLUMNS (``n_seeds``: seeds
    of the method, ``seeds_reached``: those with a point within the budget; the interval is NaN
    when fewer than 2 reach it).
    """
    rows = []
    for name, group in points.groupby(method, sort=True):
        seeds = group.groupby(seed)
        for budget in budgets:
            values = []
            for _, runs in seeds:
                frontier_kl, frontier = pareto_frontier(runs["kl"], runs[reward])
                within = frontier_kl <= budget
                if within.any():
                    values.append(frontier[within][-1])
            interval = t_interval(values, confidence)
            rows.append(
                {
                    "method": name,
                    "budget": budget,
                    "mean": interval.mean,
                    "ci_low": interval.low,
                    "ci_high": interval.high,
                    "n_seeds": seeds.ngroups,
                    "seeds_reached": interval.n_seeds,
                }
            )
    return pd.DataFrame(rows, columns=SEED_COLUMNS)
