"""Reward-model over-optimisation: gold and proxy reward against d = sqrt(KL), and its fitted forms.

Scaling Laws for Reward Model Overoptimization
Gao, Schulman, Hilton, arXiv 2210.10760.

The distance from pi_ref is d = sqrt(KL(pi || pi_ref)). Best-of-n from pi_ref has the analytic

    KL_bon(n) = log n - (n - 1) / n

(Stiennon et al. 2009.01325, appendix; Gao et al. section 2), exact when no two of the n samples tie
in the selecting reward and an upper bound otherwise (Beirami et al. 2401.01879). Gao et al. fit
the gold reward gain R(d), the gold reward minus pi_ref's (so that R(0) = 0 and neither form has an
intercept; the callers here pass that difference), with

    best-of-n (their eq. 1):  R(d) = d (alpha - beta d)
    RL (their eq. 2):         R(d) = d (alpha - beta log d)

Both are linear in (alpha, beta), R = alpha d - beta d^2 and R = alpha d - beta d log d, so the
least-squares fit is solved exactly (``numpy.linalg.lstsq``) rather than by iteration. The fitted
gain peaks at d* = alpha / (2 beta) (best-of-n) and d* = exp(alpha / beta - 1) (RL), for beta > 0.

Best-of-n's expected reward is estimated without bias from M >= n samples per prompt drawn once
(Nakano et al. 2112.09332, appendix; Gao et al., appendix): sorted by the selecting (proxy) score in
increasing order, the sample of rank i (1-based) is the best of a uniformly random n-subset of the
M with probability C(i - 1, n - 1) / C(M, n), and the estimate is that weighted sum of the scored
(gold or proxy) values. Ties in the selecting score are broken by sample order (a stable sort), for
which the estimate is exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from prefopt.analysis.style import PAPER_RC, figure_legend, method_colors, panel_grid
from prefopt.eval.stats import best_of_n_kl_bound

FORMS = ("bon", "rl")  # best-of-n: d (alpha - beta d); RL: d (alpha - beta log d)
FORM_LABELS = {"bon": r"fit $d(\alpha - \beta d)$", "rl": r"fit $d(\alpha - \beta \log d)$"}
GROUP_LABELS = {"rm_pairs": "RM on {} pairs"}  # legend entry of a group's value, by group column
MIN_FIT_POINTS = 3  # points with d > 0: two parameters and one degree of freedom for the residual


@dataclass(frozen=True)
class OveroptimisationFit:
    """A fitted form, its root-mean-square residual over the fitted points, and the d >= 0 at
    which the fitted gain is highest (inf where it rises without bound)."""

    form: str
    alpha: float
    beta: float
    rms_residual: float
    peak_d: float
    n_points: int

    def __call__(self, d) -> np.ndarray:
        """The fitted gain R(d) (the RL form is taken as 0 at d = 0, its limit)."""
        d = np.asarray(d, dtype=float)
        if self.form == "bon":
            return d * (self.alpha - self.beta * d)
        safe = np.where(d > 0, d, 1.0)
        return np.where(d > 0, d * (self.alpha - self.beta * np.log(safe)), 0.0)


def bon_kl(n: int) -> float:
    """KL(best-of-n || pi_ref) = log n - (n - 1) / n: 0 at n = 1, log 2 - 1/2 at n = 2."""
    if isinstance(n, bool) or not float(n).is_integer() or n < 1:
        raise ValueError(f"best-of-n needs an integer n >= 1, got {n!r}")
    return best_of_n_kl_bound(int(n))


def best_of_n_weights(m: int, n: int) -> np.ndarray:
    """(m,) C(i - 1, n - 1) / C(m, n) for ranks i = 1..m in increasing order of the selecting
    score: the chance that rank i is the best of a uniformly random n-subset of the m samples."""
    if not 1 <= n <= m:
        raise ValueError(f"best-of-{n} needs 1 <= n <= M samples per prompt, got M = {m}")
    total = math.comb(m, n)
    return np.array([math.comb(i - 1, n - 1) / total for i in range(1, m + 1)])


def best_of_n_estimate(selector, values, n: int) -> np.ndarray:
    """(P,) unbiased estimate, per prompt, of E[value of the best of n samples by ``selector``],
    from ``selector`` and ``values`` of shape (P, M), the M samples of each prompt."""
    selector, values = np.asarray(selector, dtype=float), np.asarray(values, dtype=float)
    if selector.ndim != 2 or selector.shape != values.shape:
        raise ValueError(
            f"selector and values must both be (prompts, samples), got {selector.shape} and "
            f"{values.shape}"
        )
    order = np.argsort(selector, axis=1, kind="stable")  # (P, M) increasing selecting score
    ranked = np.take_along_axis(values, order, axis=1)  # (P, M)
    return ranked @ best_of_n_weights(selector.shape[1], n)  # (P,)


def fit_bon(d, gain) -> OveroptimisationFit:
    """Least squares of gain = d (alpha - beta d) over points with d >= 0 (gain: gold reward minus
    pi_ref's, 0 at d = 0); the fitted gain peaks at d = alpha / (2 beta)."""
    d, gain = _points(d, gain, "bon")
    alpha, beta, rms = _least_squares(np.column_stack([d, -(d**2)]), gain)
    peak = _peak(alpha, beta, lambda: alpha / (2 * beta))
    return OveroptimisationFit("bon", alpha, beta, rms, peak, len(d))


def fit_rl(d, gain) -> OveroptimisationFit:
    """Least squares of gain = d (alpha - beta log d) over points with d > 0 (gain: gold reward
    minus pi_ref's); the fitted gain peaks at d = exp(alpha / beta - 1)."""
    d, gain = _points(d, gain, "rl")
    alpha, beta, rms = _least_squares(np.column_stack([d, -d * np.log(d)]), gain)
    peak = _peak(alpha, beta, lambda: math.exp(alpha / beta - 1))
    return OveroptimisationFit("rl", alpha, beta, rms, peak, len(d))


FITS = {"bon": fit_bon, "rl": fit_rl}


def _peak(alpha: float, beta: float, stationary) -> float:
    """The d >= 0 of the highest fitted gain: the stationary point ``stationary()`` (a maximum)
    where beta > 0; else inf where the gain grows without bound (beta < 0, or beta = 0 < alpha),
    else 0 (beta = 0 and alpha <= 0: the gain never rises)."""
    if beta > 0:
        return max(stationary(), 0.0)
    return math.inf if (beta < 0 or alpha > 0) else 0.0


def _points(d, gain, form: str) -> tuple[np.ndarray, np.ndarray]:
    """The checked (d, gain) arrays of a fit."""
    d, gain = np.asarray(d, dtype=float), np.asarray(gain, dtype=float)
    if d.ndim != 1 or d.shape != gain.shape:
        raise ValueError(f"d and gain must be 1-D of one length, got {d.shape} and {gain.shape}")
    if not (np.isfinite(d).all() and np.isfinite(gain).all()):
        raise ValueError("d and gain must be finite (drop the points without a value first)")
    if form == "rl" and (d <= 0).any():
        raise ValueError(
            "the RL form d (alpha - beta log d) needs d > 0 (log d); drop the d = 0 point, where "
            "the form is 0 by its limit"
        )
    if (d < 0).any():
        raise ValueError(f"d = sqrt(KL) is never negative; got min {d.min()}")
    if int((d > 0).sum()) < MIN_FIT_POINTS:
        raise ValueError(
            f"the {form} form needs at least {MIN_FIT_POINTS} points with d > 0 (two parameters "
            f"and a residual), got {int((d > 0).sum())}"
        )
    return d, gain


def _least_squares(design: np.ndarray, gain: np.ndarray) -> tuple[float, float, float]:
    """(alpha, beta, rms residual) of gain ~ design @ (alpha, beta), design (K, 2)."""
    coef, _, rank, _ = np.linalg.lstsq(design, gain, rcond=None)
    if rank < 2:
        raise ValueError("the points do not determine alpha and beta (they need distinct d > 0)")
    residual = gain - design @ coef  # (K,)
    return float(coef[0]), float(coef[1]), float(np.sqrt(np.mean(residual**2)))


def fit_groups(
    points: pd.DataFrame, form: str = "bon", group: str = "rm_pairs"
) -> dict[object, OveroptimisationFit]:
    """The form fitted to ``gold_gain`` against ``d`` for each value of ``group`` (the RL form
    leaves out d = 0)."""
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    fits = {}
    for name, rows in points.groupby(group, sort=True):
        rows = rows[rows["d"] > 0] if form == "rl" else rows
        fits[name] = FITS[form](rows["d"], rows["gold_gain"])
    return fits


def plot_overoptimisation(
    points: pd.DataFrame,
    form: str = "bon",
    group: str = "rm_pairs",
    fits: Mapping[object, OveroptimisationFit] | None = None,
):
    """Two panels against d = sqrt(KL): gold gain (points, their standard errors where the frame
    has ``gold_gain_se``, and the fitted form) and proxy gain, a colour per value of ``group``
    (e.g. the reward model's training pairs). ``points``: columns d, gold_gain, proxy_gain and
    ``group``; ``fits`` defaults to :func:`fit_groups`."""
    fits = fit_groups(points, form, group) if fits is None else fits
    colors = method_colors(points[group])
    with plt.rc_context(PAPER_RC):
        figure, (gold, proxy) = panel_grid(2, height=2.4)
        handles = {}
        for name, rows in points.groupby(group, sort=True):
            rows = rows.sort_values("d")
            color = colors[name]
            gold.errorbar(
                rows["d"],
                rows["gold_gain"],
                yerr=rows.get("gold_gain_se"),
                color=color,
                linestyle="",
                marker="o",
            )
            grid = np.linspace(0.0, rows["d"].max(), 100)
            label = GROUP_LABELS.get(group, f"{group} = {{}}").format(name)
            (handles[label],) = gold.plot(grid, fits[name](grid), color=color)
            proxy.plot(rows["d"], rows["proxy_gain"], color=color, marker="o", linestyle="--")
        handles[FORM_LABELS[form]] = plt.Line2D([], [], color="0.4")
        for axis, what in ((gold, "Gold"), (proxy, "Proxy")):
            axis.axhline(0, color="0.6", linewidth=0.8, linestyle=":")
            axis.set_xlabel(r"$d = \sqrt{\mathrm{KL}}$ ($\sqrt{\mathrm{nats}}$)")
            axis.set_ylabel(f"{what} reward gain over " + r"$\pi_{\mathrm{ref}}$")
        gold.set_title("Gold reward of the proxy's choice")
        proxy.set_title("Proxy reward of its own choice")
        figure_legend(figure, handles)
    return figure
