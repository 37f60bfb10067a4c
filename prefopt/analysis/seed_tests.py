"""Seed-level comparison of two methods from their per-seed test means.

A method's score on a test set is conditional on the models it trained: a paired test by prompt
(`stats.paired_prompt_test`) says whether these trained models differ, not whether the methods
do. Here each seed is one observation, a_1..a_n (method) and b_1..b_m (baseline), and a test
asks whether the methods' means differ given the spread between seeds:

- Welch's t: t = (mean(a) - mean(b)) / se, se^2 = s_a^2 / n + s_b^2 / m, against Student t with
  the Welch-Satterthwaite degrees of freedom nu = se^4 / ((s_a^2/n)^2/(n-1) + (s_b^2/m)^2/(m-1)).
- A permutation test over seeds, the check that needs no normality: the same statistic |t|
  computed over relabelings of the pooled n + m seeds into groups of n and m (studentized, so
  that it stays valid for unequal spreads; Janssen 1997, "Studentized permutation tests for
  non-i.i.d. hypotheses and the generalized Behrens-Fisher problem"). Exact over all C(n+m, n)
  relabelings when there are at most MAX_EXACT_RELABELINGS, else MONTE_CARLO_RELABELINGS random
  ones with p = (1 + hits) / (1 + draws). The exact p is a multiple of 1 / C(n+m, n) and never
  below 2 / C(n+m, n): with 3 seeds a side (20 relabelings) it is at least 0.1, so it cannot
  reject at 0.05 whatever the data.
- Holm's step-down correction over a family of comparisons declared before the runs: the k-th
  smallest of m p-values becomes max_{j<=k} min(1, (m - j + 1) p_(j)).
- Power of Welch's test at a stated effect for the observed seed spreads, taken as the true
  ones: the mean difference D ~ N(effect, sigma^2), sigma^2 = sd_a^2 / n + sd_b^2 / m, is
  independent of the sample variances s_a^2 ~ sd_a^2 chi2_{n-1} / (n-1) (and s_b^2 alike), so

      power = E_{s_a, s_b}[ P(|D| > t_{nu(s), 1-alpha/2} * se(s)) ],

  integrated over a grid of POWER_GRID chi-square quantiles a side (within 0.01 points of 400,000
  simulated studies). The noncentral t with nu at the true spreads, exact for Student's t,
  overstates Welch's power, whose nu is random and smaller: 35.7% against 33.2% at 5 seeds a
  side and a 4-point effect over a 3.5-point seed sd; Welch's size there is 4.4%, not 5%. The
  power at the observed difference adds nothing to the p-value (Hoenig and Heisey 2001), so the
  effect is a stated one, and `detectable_effect` gives the difference detected with
  TARGET_POWER.

A side with fewer than 2 seeds has no spread: its tests and power are NaN.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import chain, combinations
from math import comb

import numpy as np
import pandas as pd
from scipy import optimize, stats

from prefopt.analysis.stats import Interval

ALPHA = 0.05  # two-sided level of every test and of the power
MAX_EXACT_RELABELINGS = 200_000  # all relabelings up to here (10 seeds a side is 184,756)
MONTE_CARLO_RELABELINGS = 20_000  # random ones beyond it (sd of p at 0.05: 0.15 points)
TARGET_POWER = 0.8  # the power `detectable_effect` solves for
POWER_GRID = 128  # chi-square quantiles a side in the power integral


@dataclass(frozen=True)
class SeedComparison:
    """Method against baseline over seeds; p-values two-sided, power at `effect`."""

    difference: float  # mean(method) - mean(baseline)
    n_method: int
    n_baseline: int
    welch_t: float
    welch_df: float
    welch_p: float
    permutation_p: float
    n_relabelings: int  # relabelings the permutation p counts over
    exact: bool  # all relabelings (True) or a Monte Carlo sample of them
    effect: float
    power: float  # of Welch's test at `effect` for the observed spreads
    detectable_effect: float  # the effect Welch's test detects with TARGET_POWER


def welch_test(method, baseline) -> tuple[float, float, float]:
    """(t, degrees of freedom, two-sided p) of Welch's t-test; NaN with fewer than 2 a side."""
    method, baseline = _present(method), _present(baseline)
    if method.size < 2 or baseline.size < 2:
        return float("nan"), float("nan"), float("nan")
    se, df = _welch_se_df(
        method.var(ddof=1) / method.size,
        method.size,
        baseline.var(ddof=1) / baseline.size,
        baseline.size,
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (method.mean() - baseline.mean()) / se
    return float(t), float(df), float(2 * stats.t.sf(abs(t), df)) if se > 0 else float("nan")


def welch_interval(method, baseline, confidence: float = 1 - ALPHA) -> Interval:
    """mean(method) - mean(baseline) and its Welch interval, difference +- t_{nu} * se (the
    quantities of `welch_test`); low/high NaN with fewer than 2 seeds a side."""
    method, baseline = _present(method), _present(baseline)
    if method.size == 0 or baseline.size == 0:
        return Interval(np.nan, np.nan, np.nan, 0)
    difference = float(method.mean() - baseline.mean())
    n_seeds = int(min(method.size, baseline.size))
    if n_seeds < 2:
        return Interval(difference, np.nan, np.nan, n_seeds)
    se, df = _welch_se_df(
        method.var(ddof=1) / method.size,
        method.size,
        baseline.var(ddof=1) / baseline.size,
        baseline.size,
    )
    half = float(stats.t.ppf(0.5 + confidence / 2, df) * se) if se > 0 else 0.0
    return Interval(difference, difference - half, difference + half, n_seeds)


def _welch_se_df(var_mean_a, n_a, var_mean_b, n_b):
    """se = sqrt(v_a + v_b) and the Welch-Satterthwaite df from the variances of the two means."""
    total = var_mean_a + var_mean_b
    with np.errstate(divide="ignore", invalid="ignore"):
        df = total**2 / (var_mean_a**2 / (n_a - 1) + var_mean_b**2 / (n_b - 1))
    return np.sqrt(total), df


def permutation_test(
    method,
    baseline,
    max_exact: int = MAX_EXACT_RELABELINGS,
    n_random: int = MONTE_CARLO_RELABELINGS,
    rng: np.random.Generator | int = 0,
) -> tuple[float, int, bool]:
    """(two-sided p, relabelings counted, exact) of the studentized permutation test over seeds."""
    method, baseline = _present(method), _present(baseline)
    n_method, n_baseline = method.size, baseline.size
    if n_method < 2 or n_baseline < 2:
        return float("nan"), 0, False
    pooled = np.concatenate([method, baseline])  # (n + m,)
    n_total = comb(pooled.size, n_method)
    exact = n_total <= max_exact
    if exact:
        chosen = np.fromiter(
            chain.from_iterable(combinations(range(pooled.size), n_method)),
            dtype=int,
            count=n_total * n_method,
        ).reshape(n_total, n_method)  # (R, n): the seeds labelled "method"
        in_method = np.zeros((n_total, pooled.size), dtype=bool)  # (R, n + m)
        np.put_along_axis(in_method, chosen, True, axis=1)
    else:
        labels = np.arange(pooled.size) < n_method  # (n + m,)
        in_method = np.random.default_rng(rng).permuted(np.tile(labels, (n_random, 1)), axis=1)
    relabeled = _abs_welch_t(pooled, in_method)  # (R,)
    observed = _abs_welch_t(pooled, np.arange(pooled.size)[None, :] < n_method)[0]
    if np.isnan(observed) or observed == 0:
        return 1.0, int(in_method.shape[0]), exact
    hits = int(np.sum(relabeled >= observed * (1 - 1e-12)))  # the identity relabeling counts
    if exact:
        return hits / n_total, n_total, True
    return (1 + hits) / (1 + n_random), n_random, False


def _abs_welch_t(pooled: np.ndarray, in_method: np.ndarray) -> np.ndarray:
    """|Welch t| of each relabeling (rows of in_method); 0 where both groups are constant."""
    weights = in_method.astype(float)  # (R, n + m)
    n_method = weights.sum(axis=1)  # (R,)
    n_baseline = pooled.size - n_method
    centred = pooled - pooled.mean()  # (n + m,): keeps the sums of squares well conditioned
    sum_method = weights @ centred  # (R,)
    sum_baseline = centred.sum() - sum_method
    squares_method = weights @ centred**2  # (R,)
    squares_baseline = np.sum(centred**2) - squares_method
    var_method = (squares_method - sum_method**2 / n_method) / (n_method - 1)
    var_baseline = (squares_baseline - sum_baseline**2 / n_baseline) / (n_baseline - 1)
    difference = sum_method / n_method - sum_baseline / n_baseline
    se = np.sqrt(np.clip(var_method / n_method + var_baseline / n_baseline, 0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.abs(difference) / se
    return np.nan_to_num(t, nan=0.0, posinf=np.inf)


def welch_power(effect, sd_method, sd_baseline, n_method, n_baseline, alpha=ALPHA) -> float:
    """Power of two-sided Welch's t at a true difference `effect` (module docstring)."""
    sigma = np.sqrt(sd_method**2 / n_method + sd_baseline**2 / n_baseline)
    if not sigma > 0 or n_method < 2 or n_baseline < 2:
        return float("nan")
    quantiles = (np.arange(POWER_GRID) + 0.5) / POWER_GRID  # (K,)
    ratio_method = stats.chi2.ppf(quantiles, n_method - 1) / (n_method - 1)  # s^2 / sd^2, (K,)
    ratio_baseline = stats.chi2.ppf(quantiles, n_baseline - 1) / (n_baseline - 1)
    se, df = _welch_se_df(
        sd_method**2 * ratio_method[:, None] / n_method,  # (K, 1)
        n_method,
        sd_baseline**2 * ratio_baseline[None, :] / n_baseline,  # (1, K)
        n_baseline,
    )  # (K, K) each
    threshold = stats.t.ppf(1 - alpha / 2, np.nan_to_num(df, nan=np.inf)) * se  # (K, K)
    rejects = stats.norm.sf((threshold - effect) / sigma) + stats.norm.cdf(
        (-threshold - effect) / sigma
    )  # (K, K)
    return float(rejects.mean())


def detectable_effect(
    sd_method, sd_baseline, n_method, n_baseline, power=TARGET_POWER, alpha=ALPHA
) -> float:
    """The difference that Welch's test detects with probability `power`; NaN without spread."""
    if np.isnan(welch_power(1.0, sd_method, sd_baseline, n_method, n_baseline, alpha)):
        return float("nan")
    sigma = np.sqrt(sd_method**2 / n_method + sd_baseline**2 / n_baseline)
    return float(
        optimize.brentq(
            lambda effect: (
                welch_power(effect, sd_method, sd_baseline, n_method, n_baseline, alpha) - power
            ),
            0.0,
            20 * sigma,  # power is 1 at 20 sigma
        )
    )


def compare_seeds(
    method, baseline, effect: float, alpha: float = ALPHA, rng: np.random.Generator | int = 0
) -> SeedComparison:
    """Welch's t, the permutation check and the power at `effect` of method against baseline."""
    method, baseline = _present(method), _present(baseline)
    t, df, welch_p = welch_test(method, baseline)
    permutation_p, n_relabelings, exact = permutation_test(method, baseline, rng=rng)
    spread = (
        (method.std(ddof=1), baseline.std(ddof=1), method.size, baseline.size)
        if method.size > 1 and baseline.size > 1
        else None
    )
    return SeedComparison(
        difference=float(method.mean() - baseline.mean())
        if method.size and baseline.size
        else np.nan,
        n_method=int(method.size),
        n_baseline=int(baseline.size),
        welch_t=t,
        welch_df=df,
        welch_p=welch_p,
        permutation_p=permutation_p,
        n_relabelings=n_relabelings,
        exact=exact,
        effect=float(effect),
        power=welch_power(effect, *spread, alpha) if spread else float("nan"),
        detectable_effect=detectable_effect(*spread, alpha=alpha) if spread else float("nan"),
    )


def holm(p_values: Mapping[Hashable, float]) -> dict[Hashable, float]:
    """Holm-adjusted p-values by name; a NaN p stays NaN but counts in the family's size."""
    names = list(p_values)
    raw = np.array([p_values[name] for name in names], dtype=float)  # (m,)
    order = np.argsort(np.where(np.isnan(raw), np.inf, raw), kind="stable")
    scaled = (len(raw) - np.arange(len(raw))) * raw[order]  # (m - j + 1) p_(j)
    adjusted = np.minimum(1.0, np.fmax.accumulate(scaled))
    result = np.empty_like(raw)
    result[order] = adjusted
    result[np.isnan(raw)] = np.nan
    return dict(zip(names, result.tolist(), strict=True))


def compare_methods(
    seed_means: Mapping[str, Sequence[float]],
    comparisons: Sequence[tuple[str, str]],
    effect: float,
    alpha: float = ALPHA,
    rng: np.random.Generator | int = 0,
) -> pd.DataFrame:
    """One row per declared (method, baseline) pair, Holm-adjusted over the family.

    `seed_means`: method -> its per-seed test means. Columns: method, baseline, the fields of
    `SeedComparison`, welch_p_holm and permutation_p_holm.
    """
    if not comparisons:
        raise ValueError("no comparison declared")
    rng = np.random.default_rng(rng)
    rows = [
        {
            "method": method,
            "baseline": baseline,
            **asdict(compare_seeds(seed_means[method], seed_means[baseline], effect, alpha, rng)),
        }
        for method, baseline in comparisons
    ]
    table = pd.DataFrame(rows)
    for column in ("welch_p", "permutation_p"):
        table[f"{column}_holm"] = list(holm(dict(enumerate(table[column]))).values())
    return table


def _present(values) -> np.ndarray:
    values = np.asarray(values, dtype=float).ravel()
    return values[~np.isnan(values)]
