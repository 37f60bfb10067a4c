"""Statistics over per-prompt evaluation results: win rates, intervals, diversity.

A *preference* p in [0, 1] is the judge's probability that the policy's response beats pi_ref's
(1 win, 0.5 tie, 0 loss for pointwise judges). The evaluator passes one p_i per prompt to the
interval, and one p_ij per (prompt, reference sample) comparison to the length statistics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import optimize, special, stats

CONFIDENCE = 0.95  # two-sided level of every interval reported here
LC_MIN_SIDE_SHARE = 0.1  # share of comparisons needed on each side of 0 length difference for LC


def mean_and_se(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of the mean, se = std(values, ddof=1) / sqrt(n) (0 when n == 1)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError("mean_and_se needs at least one value")
    if values.size == 1:
        return float(values[0]), 0.0
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(values.size))


def win_rate_ci(preferences: np.ndarray) -> tuple[float, float, float]:
    """Win rate (ties half) and its 95% Student-t interval over prompts, clipped to [0, 1].

    win = mean(p_i), interval = win -+ t_{0.975, n-1} * se(p). All prompts alike (se = 0) give a
    zero-width interval.
    """
    win, se = mean_and_se(preferences)
    n = np.asarray(preferences).size
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * se) if n > 1 else 0.0
    return win, max(0.0, win - half), min(1.0, win + half)


def length_controlled_win_rate(preferences: np.ndarray, length_diff: np.ndarray) -> float:
    """The win rate the judge would give at equal lengths, as AlpacaEval's LC win rate.

    Fits P(win_i) = sigmoid(a + b * tanh(d_i / std(d))) to the soft labels p_i by maximum likelihood
    (d_i = policy length - reference length, a tiny ridge keeps a finite when every p_i is 0 or 1)
    and returns sigmoid(a), the prediction at zero length difference. That prediction is supported
    only where the comparisons hold length differences on both sides of 0: NaN (logged as null)
    when fewer than ``LC_MIN_SIDE_SHARE`` of them are <= 0 or >= 0, where the fit would extrapolate
    (a policy much longer than pi_ref everywhere).
    """
    p = np.asarray(preferences, dtype=np.float64)
    d = np.asarray(length_diff, dtype=np.float64)
    if p.shape != d.shape or p.ndim != 1 or p.size == 0:
        raise ValueError(f"need two equal 1-d arrays, got shapes {p.shape} and {d.shape}")
    if min((d <= 0).mean(), (d >= 0).mean()) < LC_MIN_SIDE_SHARE:
        return math.nan
    scale = d.std()
    x = np.tanh(d / scale) if scale > 0 else np.zeros_like(d)  # (N,)
    ridge = 1e-4

    def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] + theta[1] * x  # (N,)
        # soft-label cross entropy: -[p log s(z) + (1-p) log s(-z)]
        loss = -(p * special.log_expit(z) + (1 - p) * special.log_expit(-z)).mean()
        residual = special.expit(z) - p  # (N,)
        grad = np.array([residual.mean(), (residual * x).mean()])
        return loss + ridge * (theta @ theta), grad + 2 * ridge * theta

    fit = optimize.minimize(loss_and_grad, np.zeros(2), jac=True, method="L-BFGS-B")
    return float(special.expit(fit.x[0]))


def length_bucket_win_rates(preferences: np.ndarray, length_diff: np.ndarray) -> dict[str, float]:
    """Win rate where the policy's response is no longer than pi_ref's (``win_rate_short``) and
    where it is longer (``win_rate_long``), with ``long_frac``, the share of the comparisons in the
    second.

    An empty bucket has no key.
    """
    p = np.asarray(preferences, dtype=np.float64)
    longer = np.asarray(length_diff) > 0  # (N,)
    out = {"long_frac": float(longer.mean())}
    if (~longer).any():
        out["win_rate_short"] = float(p[~longer].mean())
    if longer.any():
        out["win_rate_long"] = float(p[longer].mean())
    return out


def distinct_n(sequences: Sequence[Sequence[int]], n: int) -> float:
    """Distinct-n (Li et al. 2016): distinct n-grams / all n-grams, pooled over the sequences.

    0 when no sequence has n tokens.
    """
    grams = [tuple(seq[i : i + n]) for seq in sequences for i in range(len(seq) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def preferences_from_scores(scores_a: np.ndarray, scores_b: np.ndarray) -> np.ndarray:
    """Pointwise preference: 1 where a scores higher, 0.5 on a tie, 0 where it scores lower."""
    return 0.5 * (1.0 + np.sign(np.asarray(scores_a, float) - np.asarray(scores_b, float)))


def best_of_n_kl_bound(n: int) -> float:
    """Upper bound on KL(best-of-n || pi_ref): log n - (n - 1) / n (Beirami et al. 2401.01879)."""
    return float(np.log(n) - (n - 1) / n)


def best_of_n_kl_estimate(rewards: np.ndarray, n: int) -> float:
    """Plug-in KL(best-of-n || pi_ref) from M pi_ref samples per prompt, rewards (P, M).

    Best-of-n depends on y only through its reward, so the KL equals the KL between the
    reward-level distributions. With the empirical CDF F of a prompt's M rewards, level r has pi_ref
    mass q(r) = F(r) - F(r-) and best-of-n mass w(r) = F(r)^n - F(r-)^n; KL = sum_r w log(w / q),
    averaged over prompts. Ties lower it; without ties it nears the bound as M grows.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    if rewards.ndim != 2 or rewards.shape[1] == 0:
        raise ValueError(f"rewards must be (prompts, samples), got shape {rewards.shape}")
    m = rewards.shape[1]
    total = 0.0
    for row in rewards:
        _, counts = np.unique(row, return_counts=True)  # levels in increasing order
        cdf = np.cumsum(counts) / m  # (L,) F(r)
        below = cdf - counts / m  # (L,) F(r-)
        w = cdf**n - below**n  # (L,)
        q = counts / m  # (L,)
        kept = w > 0
        total += float((w[kept] * np.log(w[kept] / q[kept])).sum())
    return total / rewards.shape[0]
