"""Confidence intervals that stay honest with few seeds, and a paired test by prompt.

A method's score is a mean over seeds s = 1..S and prompts p = 1..P of x[s, p] (a win indicator,
a judge reward, a length). Two sources of chance move it: which seeds were run and which prompts
were drawn, so `crossed_bootstrap_ci` resamples both, seeds and prompts independently (the prompts
are shared across seeds, so the design is crossed, not nested):

    x*_b = sum_s sum_p c_bs d_bp x[s, p] / sum_s sum_p c_bs d_bp,   c_b ~ Mult(S), d_b ~ Mult(P)

and returns mean +- t_{nu, 0.975} * sd(x*), with nu the Welch-Satterthwaite degrees of freedom of
the two variance parts v_seed = var(row means) / S and v_prompt = var(column means) / P:

    nu = (v_seed + v_prompt)^2 / (v_seed^2 / (S - 1) + v_prompt^2 / (P - 1)).

With 3 seeds and a large seed effect nu is near 2 and t = 4.3, not 1.96: a percentile bootstrap
over 3 seeds covers far less than 95% (it has only 10 distinct resamples of the seeds). The
interval errs on the wide side: resampling seeds and prompts both count the seed-by-prompt noise,
so on simulated win indicators (tests/analysis) a nominal 95% covered 98-99% with 3-5 seeds and
95% with one seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Interval:
    """A mean and its (1 - alpha) confidence interval; low/high are NaN when n < 2."""

    mean: float
    low: float
    high: float
    n_seeds: int

    def covers(self, value: float) -> bool:
        return bool(self.low <= value <= self.high)

    def clipped(self, lowest: float, highest: float) -> Interval:
        """The interval cut to the range the quantity can take (a rate to [0, 1])."""
        low, high = np.clip([self.low, self.high], lowest, highest)
        return Interval(self.mean, float(low), float(high), self.n_seeds)


def t_interval(values, confidence: float = 0.95) -> Interval:
    """Student t interval over per-seed values: mean +- t_{n-1} * sd / sqrt(n)."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return Interval(np.nan, np.nan, np.nan, 0)
    mean = float(values.mean())
    if values.size < 2:
        return Interval(mean, np.nan, np.nan, int(values.size))
    half = stats.t.ppf(0.5 + confidence / 2, values.size - 1) * values.std(ddof=1)
    half /= np.sqrt(values.size)
    return Interval(mean, mean - half, mean + half, int(values.size))


def crossed_bootstrap_ci(
    scores, confidence: float = 0.95, n_boot: int = 2000, rng: np.random.Generator | int = 0
) -> Interval:
    """Interval for the mean of `scores` (S seeds, P prompts; NaN = missing); see module doc."""
    scores = np.atleast_2d(np.asarray(scores, dtype=float))  # (S, P)
    rng = np.random.default_rng(rng)
    n_seeds, n_prompts = scores.shape
    present = ~np.isnan(scores)  # (S, P)
    if not present.any():
        return Interval(np.nan, np.nan, np.nan, 0)
    filled = np.where(present, scores, 0.0)
    mean = float(filled.sum() / present.sum())
    if n_prompts < 2:
        return t_interval(scores[:, 0], confidence)
    seed_counts = rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=n_boot)  # (B, S)
    prompt_counts = rng.multinomial(n_prompts, np.full(n_prompts, 1 / n_prompts), size=n_boot)
    totals = np.einsum("bs,sp,bp->b", seed_counts, filled, prompt_counts)  # (B,)
    weights = np.einsum("bs,sp,bp->b", seed_counts, present.astype(float), prompt_counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        replicates = totals / weights  # (B,)
    spread = float(np.nanstd(replicates, ddof=1))
    half = stats.t.ppf(0.5 + confidence / 2, _satterthwaite_df(scores)) * spread
    return Interval(mean, mean - half, mean + half, n_seeds)


def _satterthwaite_df(scores: np.ndarray) -> float:
    """Degrees of freedom of v_seed + v_prompt (module docstring); P - 1 with one seed."""
    n_seeds, n_prompts = scores.shape
    v_prompt = np.nanvar(np.nanmean(scores, axis=0), ddof=1) / n_prompts
    if n_seeds < 2:
        return float(n_prompts - 1)
    v_seed = np.nanvar(np.nanmean(scores, axis=1), ddof=1) / n_seeds
    denominator = v_seed**2 / (n_seeds - 1) + v_prompt**2 / (n_prompts - 1)
    if denominator == 0:
        return float(n_seeds + n_prompts - 2)
    return float((v_seed + v_prompt) ** 2 / denominator)


def paired_prompt_test(scores, baseline_scores) -> float:
    """Two-sided Wilcoxon signed-rank p-value of per-prompt differences (means over seeds).

    `scores`, `baseline_scores`: (S, P) and (S', P) over the same prompts (NaN = missing). Prompts
    missing from either side are dropped; p = 1 when every difference is zero.
    """
    method = np.nanmean(np.atleast_2d(np.asarray(scores, dtype=float)), axis=0)  # (P,)
    baseline = np.nanmean(np.atleast_2d(np.asarray(baseline_scores, dtype=float)), axis=0)
    if method.shape != baseline.shape:
        raise ValueError(f"prompt counts differ: {method.shape[0]} and {baseline.shape[0]}")
    differences = (method - baseline)[~np.isnan(method) & ~np.isnan(baseline)]
    if differences.size == 0:
        return float("nan")
    if np.all(differences == 0):
        return 1.0
    return float(stats.wilcoxon(differences, zero_method="wilcox").pvalue)


def seed_mean_se(estimates, standard_errors) -> tuple[float, float]:
    """Mean over seeds of per-run estimates (a KL) and its standard error (NaN = missing run).

    The spread over S seeds, sd / sqrt(S), already holds each estimate's own noise, but with two or
    three seeds it can come out near 0 by chance, so it is never taken below the part the runs'
    own standard errors imply, sqrt(sum_s se_s^2) / S. One seed: its own standard error. NaN
    where neither is known.
    """
    estimates = np.asarray(estimates, dtype=float)
    standard_errors = np.asarray(standard_errors, dtype=float)
    keep = ~np.isnan(estimates)
    estimates, standard_errors = estimates[keep], standard_errors[keep]
    if estimates.size == 0:
        return float("nan"), float("nan")
    mean = float(estimates.mean())
    within = float(np.sqrt(np.sum(standard_errors**2)) / estimates.size)  # NaN if any is missing
    spread = float(estimates.std(ddof=1) / np.sqrt(estimates.size)) if estimates.size > 1 else 0.0
    if np.isnan(within):
        return mean, spread if estimates.size > 1 else float("nan")
    return mean, max(spread, within)
