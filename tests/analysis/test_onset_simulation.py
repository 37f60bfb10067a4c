"""The onset rule against the measured validation noise, on simulated curves.

Flat curves (no overfitting) must rarely get an onset; a 5-point drop held for the last 3
evaluations must be found. Curves have 9-15 evaluations, noise of 1.85 points per evaluation
(the validation noise measured on the committed runs), and that noise as their standard error.
"""

import numpy as np

from prefopt.analysis.overfitting import DROP_RUN, onset_indices

NOISE = 0.0185  # standard deviation of one evaluation's win rate
LENGTHS = range(9, 16)  # evaluations per curve
CURVES_PER_LENGTH = 600  # 4,200 curves in all
DROP = 0.05  # the planted fall of the win rate
DROP_LENGTH = 3  # evaluations it lasts, the last ones of the curve


def simulated_onsets(drop: float, seed: int) -> list[tuple[int, np.ndarray]]:
    """(length, onset index per curve) for each curve length; the last DROP_LENGTH evaluations
    lowered by `drop`."""
    rng = np.random.default_rng(seed)
    results = []
    for length in LENGTHS:
        curves = 0.7 + NOISE * rng.standard_normal((CURVES_PER_LENGTH, length))  # (R, T)
        curves[:, -DROP_LENGTH:] -= drop
        results.append((length, onset_indices(curves, NOISE)))
    return results


def test_flat_curves_rarely_get_an_onset():
    onsets = np.concatenate([found for _, found in simulated_onsets(drop=0.0, seed=0)])
    assert onsets.size >= 2000
    assert np.mean(onsets >= 0) <= 0.05


def test_a_sustained_five_point_drop_is_found():
    found = []
    for length, onsets in simulated_onsets(drop=DROP, seed=1):
        # found: the onset's window of DROP_RUN evaluations reaches into the drop
        found.append(onsets >= length - DROP_LENGTH - (DROP_RUN - 1))
    found = np.concatenate(found)
    assert found.size >= 2000
    assert found.mean() >= 0.90
