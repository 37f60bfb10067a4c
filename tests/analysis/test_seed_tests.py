"""Seed-level tests: hand-computed cases, and simulated studies for their size and power."""

import math

import numpy as np
import pytest
from scipy import stats

from prefopt.analysis.seed_tests import (
    compare_methods,
    detectable_effect,
    holm,
    permutation_test,
    welch_power,
    welch_test,
)
from prefopt.analysis.stats import paired_prompt_test

N_STUDIES = 2000
SEED_SD = 3.5  # points: DPO's three seeds reached 72.6, 79.9 and 72.7
KTO_DPO_GAP = 4.0  # points


def test_welch_test_agrees_with_scipy():
    rng = np.random.default_rng(0)
    method, baseline = rng.normal(0, 1, 5), rng.normal(1, 3, 7)
    reference = stats.ttest_ind(method, baseline, equal_var=False)
    assert welch_test(method, baseline) == pytest.approx(
        (reference.statistic, reference.df, reference.pvalue), rel=1e-9
    )
    assert all(math.isnan(value) for value in welch_test([1.0], [2.0, 3.0]))


def test_permutation_test_by_hand():
    # 3 against 3: C(6, 3) = 20 relabelings; only the observed split and its mirror image reach
    # the observed |t|, so p = 2 / 20.
    assert permutation_test([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == (0.1, 20, True)
    # [1, 3] against [2, 4]: splits {1,3}|{2,4}, {2,4}|{1,3} tie the observed |t|, {1,4}|{2,3} and
    # its mirror give 0, {1,2}|{3,4} and {3,4}|{1,2} exceed it: 4 of 6.
    p, n_relabelings, exact = permutation_test([1.0, 3.0], [2.0, 4.0])
    assert (p, n_relabelings, exact) == (pytest.approx(4 / 6), 6, True)
    assert permutation_test([2.0, 2.0, 2.0], [2.0, 2.0])[0] == 1.0
    assert math.isnan(permutation_test([1.0], [2.0, 3.0])[0])


def test_permutation_test_samples_relabelings_beyond_the_exact_limit():
    rng = np.random.default_rng(1)
    method, baseline = rng.normal(1.5, 1, 6), rng.normal(0, 1, 6)
    exact_p, n_exact, _ = permutation_test(method, baseline)
    sampled_p, n_sampled, exact = permutation_test(method, baseline, max_exact=100, n_random=5000)
    assert n_exact == math.comb(12, 6) and (n_sampled, exact) == (5000, False)
    # Monte Carlo sd of p is at most sqrt(0.25 / 5000) = 0.7 points.
    assert sampled_p == pytest.approx(exact_p, abs=0.03)
    assert sampled_p >= 1 / 5001


def test_holm_by_hand():
    # sorted: a 0.01 * 4 = 0.04, c 0.03 * 3 = 0.09, b 0.04 * 2 = 0.08 -> 0.09 (step-down max);
    # the NaN comparison counts in the family of 4 but stays NaN.
    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": float("nan")})
    assert adjusted["a"] == pytest.approx(0.04)
    assert adjusted["b"] == pytest.approx(0.09) and adjusted["c"] == pytest.approx(0.09)
    assert math.isnan(adjusted["d"])
    # x 0.02 * 2 = 0.04, y 0.3 * 1; capped at 1: 0.6 * 2 -> 1, and y never below it.
    assert holm({"x": 0.02, "y": 0.3}) == pytest.approx({"x": 0.04, "y": 0.3})
    assert holm({"x": 0.6, "y": 0.7}) == {"x": 1.0, "y": 1.0}


def test_power_is_symmetric_and_grows_with_effect_and_seeds():
    assert welch_power(4.0, SEED_SD, SEED_SD, 5, 5) == pytest.approx(
        welch_power(-4.0, SEED_SD, SEED_SD, 5, 5)
    )
    powers = [welch_power(effect, SEED_SD, SEED_SD, 5, 5) for effect in (0.0, 2.0, 4.0, 8.0)]
    assert np.all(np.diff(powers) > 0) and powers[0] < 0.05
    assert welch_power(4.0, SEED_SD, SEED_SD, 10, 10) > powers[2]
    effect = detectable_effect(SEED_SD, SEED_SD, 5, 5)
    assert welch_power(effect, SEED_SD, SEED_SD, 5, 5) == pytest.approx(0.8, abs=1e-6)
    assert math.isnan(welch_power(4.0, 0.0, 0.0, 5, 5))


def test_seed_level_tests_hold_their_size_where_the_prompt_test_does_not():
    """A seed effect and no method effect: 5 seeds a method, 500 prompts, 2,000 studies.

    Seeds move the win probability by N(0, 3.5 points); the Welch and permutation tests on
    per-seed means reject 4.5% and 4.0% of the studies at 0.05 (Welch's exact size here: 4.4%);
    the prompt-paired Wilcoxon, conditional on the trained models, rejects 32.5% of 200 of them.
    """
    rng = np.random.default_rng(17)
    n_seeds, n_prompts = 5, 500
    probability = 0.75 + rng.normal(0, SEED_SD / 100, (N_STUDIES, 2, n_seeds, 1))
    wins = rng.random((N_STUDIES, 2, n_seeds, n_prompts)) < probability  # (studies, 2, S, P)
    seed_means = 100 * wins.mean(axis=3)  # (studies, 2, S)
    welch = np.mean([welch_test(m, b)[2] < 0.05 for m, b in seed_means])
    permutation = np.mean([permutation_test(m, b)[0] < 0.05 for m, b in seed_means])
    prompt = np.mean([paired_prompt_test(m, b) < 0.05 for m, b in wins[:200].astype(float)])
    message = f"rejections: Welch {welch:.1%}, permutation {permutation:.1%}, prompt {prompt:.1%}"
    assert welch <= 0.06 and permutation <= 0.06, message
    # Welch's exact size at these spreads (normal seeds, the prompt noise counted in the sd).
    seed_sd = np.sqrt(SEED_SD**2 + 100**2 * 0.75 * 0.25 / n_prompts)
    assert welch == pytest.approx(welch_power(0.0, seed_sd, seed_sd, 5, 5), abs=0.015), message
    assert prompt > 0.2, message


@pytest.mark.parametrize("n_seeds", [5, 10])
def test_power_at_the_kto_dpo_gap_agrees_with_the_analytic_power(n_seeds):
    """A planted 4-point effect over a 3.5-point seed sd, 2,000 studies.

    Simulated power of Welch's test: 32.0% with 5 seeds a method (analytic 33.2%), 67.4% with
    10 (analytic 67.1%); the permutation test at 5 seeds: 32.5%. Binomial sd of a simulated
    power near 0.5 over 2,000 studies: 1.1 points.
    """
    rng = np.random.default_rng(n_seeds)
    baseline = 75 + rng.normal(0, SEED_SD, (N_STUDIES, n_seeds))
    method = 75 + KTO_DPO_GAP + rng.normal(0, SEED_SD, (N_STUDIES, n_seeds))
    rejected = np.mean([welch_test(m, b)[2] < 0.05 for m, b in zip(method, baseline, strict=True)])
    analytic = welch_power(KTO_DPO_GAP, SEED_SD, SEED_SD, n_seeds, n_seeds)
    message = f"{n_seeds} seeds: simulated power {rejected:.1%}, analytic {analytic:.1%}"
    assert rejected == pytest.approx(analytic, abs=0.03), message
    if n_seeds == 5:
        permutation = np.mean(
            [permutation_test(m, b)[0] < 0.05 for m, b in zip(method, baseline, strict=True)]
        )
        message += f", permutation {permutation:.1%}"
        assert permutation == pytest.approx(rejected, abs=0.05), message


def test_compare_methods_corrects_over_the_declared_family():
    rng = np.random.default_rng(3)
    seed_means = {
        "dpo": [72.6, 79.9, 72.7],
        "kto": rng.normal(80, 2, 5),
        "ipo": rng.normal(74, 2, 5),
        "orpo": [70.0],
    }
    family = [("kto", "dpo"), ("ipo", "dpo"), ("orpo", "dpo")]
    table = compare_methods(seed_means, family, effect=KTO_DPO_GAP)
    assert list(zip(table["method"], table["baseline"], strict=True)) == family
    expected = holm(dict(enumerate(table["welch_p"])))
    assert table["welch_p_holm"].tolist() == pytest.approx(list(expected.values()), nan_ok=True)
    orpo = table.set_index("method").loc["orpo"]
    assert math.isnan(orpo["welch_p"]) and math.isnan(orpo["power"]) and orpo["n_method"] == 1
    kto = table.set_index("method").loc["kto"]
    assert kto["n_relabelings"] == math.comb(8, 5) and kto["exact"]
    assert kto["welch_p_holm"] >= kto["welch_p"]
    with pytest.raises(ValueError, match="no comparison"):
        compare_methods(seed_means, [], effect=KTO_DPO_GAP)


def test_welch_interval_matches_a_hand_computed_case():
    from prefopt.analysis.seed_tests import welch_interval

    # a: mean 2, var 1, n 3 -> var of mean 1/3; b: mean 3, var 2, n 2 -> 1
    # se = sqrt(4/3); df = (4/3)^2 / ((1/3)^2 / 2 + 1^2 / 1) = 32/19
    interval = welch_interval([1.0, 2.0, 3.0], [2.0, 4.0])
    half = stats.t.ppf(0.975, 32 / 19) * (4 / 3) ** 0.5
    assert interval.mean == pytest.approx(-1.0)
    assert interval.low == pytest.approx(-1.0 - half) and interval.high == pytest.approx(-1 + half)
    assert interval.n_seeds == 2
    one = welch_interval([1.0], [2.0, 4.0])
    assert one.mean == pytest.approx(-2.0) and np.isnan(one.low) and np.isnan(one.high)
