"""Gao et al.'s over-optimisation forms, best-of-n's KL and its unbiased estimator, by hand."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from prefopt.analysis.overoptimisation import (
    MIN_FIT_POINTS,
    best_of_n_estimate,
    best_of_n_weights,
    bon_kl,
    fit_bon,
    fit_groups,
    fit_rl,
    plot_overoptimisation,
)

D = np.sqrt([bon_kl(n) for n in (1, 2, 4, 8, 16, 32, 64, 128, 256)])  # Gao's d for N up to 256
NOISE_SD = 0.01  # noise added to the generated gains
TOLERANCE = 0.05  # |fitted - true| allowed for alpha and beta: at least 4 of their SEs (<= 0.011)


def form_gain(form, alpha, beta, d):
    """Gao et al.'s gain by hand: d (alpha - beta d) or d (alpha - beta log d)."""
    return d * (alpha - beta * (d if form == "bon" else np.log(d)))


def test_bon_kl_by_hand():
    assert bon_kl(1) == 0.0
    assert bon_kl(2) == pytest.approx(math.log(2) - 0.5)
    assert bon_kl(256) == pytest.approx(math.log(256) - 255 / 256)


@pytest.mark.parametrize("n", [0, -1, 2.5, True])
def test_bon_kl_refuses_a_non_count(n):
    with pytest.raises(ValueError, match="integer n >= 1"):
        bon_kl(n)


@pytest.mark.parametrize(("fit", "form"), [(fit_bon, "bon"), (fit_rl, "rl")])
def test_recovers_alpha_and_beta_from_noisy_points_of_its_form(fit, form):
    alpha, beta = 1.3, 0.6
    d = D[1:]  # d > 0, which the RL form needs
    gain = form_gain(form, alpha, beta, d) + np.random.default_rng(0).normal(0.0, NOISE_SD, d.shape)
    result = fit(d, gain)
    assert result.form == form and result.n_points == len(d)
    assert result.alpha == pytest.approx(alpha, abs=TOLERANCE)
    assert result.beta == pytest.approx(beta, abs=TOLERANCE)
    assert 0.3 * NOISE_SD < result.rms_residual < 2 * NOISE_SD
    assert result(d) == pytest.approx(form_gain(form, result.alpha, result.beta, d))


def test_exact_points_give_the_peak_formulas():
    d = D[1:]
    bon = fit_bon(d, d * (2.0 - 0.8 * d))
    assert bon.rms_residual == pytest.approx(0.0, abs=1e-12)
    assert bon.peak_d == pytest.approx(2.0 / (2 * 0.8))
    rl = fit_rl(d, d * (0.5 - 0.4 * np.log(d)))
    assert rl.peak_d == pytest.approx(math.exp(0.5 / 0.4 - 1))
    for result in (bon, rl):  # the peak is the fitted curve's highest point
        grid = np.linspace(1e-3, 5, 20001)
        assert grid[np.argmax(result(grid))] == pytest.approx(result.peak_d, abs=1e-3)


def test_a_gain_that_never_turns_over_peaks_at_infinity():
    d = D[1:]
    assert fit_bon(d, 0.7 * d + 0.1 * d**2).peak_d == math.inf  # beta < 0
    assert fit_rl(d, d * (1.0 + 0.2 * np.log(d))).peak_d == math.inf


def test_the_bon_form_takes_d_0_and_the_rl_form_refuses_it():
    gain = D * (1.0 - 0.3 * D)
    assert fit_bon(D, gain).n_points == len(D)
    with pytest.raises(ValueError, match="needs d > 0"):
        fit_rl(D, gain)


@pytest.mark.parametrize("fit", [fit_bon, fit_rl])
def test_bad_points_are_refused(fit):
    with pytest.raises(ValueError, match=f"at least {MIN_FIT_POINTS} points"):
        fit(D[1:MIN_FIT_POINTS], D[1:MIN_FIT_POINTS])
    with pytest.raises(ValueError, match="one length"):
        fit(D[1:], D[2:])
    with pytest.raises(ValueError, match="finite"):
        fit(D[1:], np.r_[np.nan, D[2:]])
    with pytest.raises(ValueError, match="distinct d"):
        fit(np.full(5, 0.5), np.arange(5.0))
    with pytest.raises(ValueError, match="never negative|d > 0"):
        fit(np.r_[-0.1, D[1:]], D)


def test_best_of_n_weights_by_hand():
    # M = 3, n = 2: C(0, 1), C(1, 1), C(2, 1) over C(3, 2) = 3
    assert best_of_n_weights(3, 2) == pytest.approx([0.0, 1 / 3, 2 / 3])
    assert best_of_n_weights(4, 1) == pytest.approx([0.25] * 4)  # n = 1: the mean
    assert best_of_n_weights(4, 4) == pytest.approx([0, 0, 0, 1])  # n = M: the top sample
    assert best_of_n_weights(512, 256).sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="1 <= n <= M"):
        best_of_n_weights(3, 4)


def test_the_estimate_is_the_mean_over_every_subset_of_size_n():
    rng = np.random.default_rng(1)
    selector, values = rng.normal(size=(3, 7)), rng.normal(size=(3, 7))  # 3 prompts, M = 7
    for n in (1, 2, 3, 7):
        by_subset = [
            [values[p, max(s, key=lambda i: selector[p, i])] for s in
             itertools.combinations(range(7), n)]
            for p in range(3)
        ]  # fmt: skip
        assert best_of_n_estimate(selector, values, n) == pytest.approx(np.mean(by_subset, axis=1))
    with pytest.raises(ValueError, match="prompts, samples"):
        best_of_n_estimate(selector, values[:, :3], 2)


def test_figure_draws_a_fit_per_reward_model(tmp_path):
    d = D[1:]
    points = pd.DataFrame(
        [
            {"rm_pairs": k, "d": x, "gold_gain": x * (a - 0.5 * x), "gold_gain_se": 0.02,
             "proxy_gain": a * x}
            for k, a in ((250, 0.6), (2000, 1.2)) for x in d
        ]
    )  # fmt: skip
    fits = fit_groups(points)
    assert fits[250].alpha == pytest.approx(0.6) and fits[2000].beta == pytest.approx(0.5)
    figure = plot_overoptimisation(points, fits=fits)
    curves = [line for line in figure.axes[0].lines if len(line.get_xdata()) == 100]
    assert len(curves) == 2  # one fitted curve per reward model, over its points' range of d
    for curve, k in zip(curves, (250, 2000), strict=True):
        assert curve.get_ydata() == pytest.approx(fits[k](curve.get_xdata()))
        assert curve.get_xdata().max() == pytest.approx(d.max())
    figure.savefig(tmp_path / "figure.png")
    with pytest.raises(ValueError, match="form must be one of"):
        fit_groups(points, form="ppo")
