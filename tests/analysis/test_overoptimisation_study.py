"""experiments/overoptimisation.py end to end at its smallest setting on the tiny task."""

import math
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments"))

import overoptimisation  # noqa: E402

from prefopt.analysis.overoptimisation import bon_kl  # noqa: E402
from prefopt.results.store import read_json  # noqa: E402

RM_PAIRS = (8, 16)
SMALLEST = [
    "--task", "reviews_tiny", "--rm-pairs", *map(str, RM_PAIRS), "--max-n", "4", "--samples", "8",
]  # fmt: skip


def test_n_grid_doubles_and_halfway():
    assert overoptimisation.n_grid(16) == [1, 2, 3, 4, 6, 8, 12, 16]
    assert overoptimisation.n_grid(5) == [1, 2, 3, 4, 5]


@pytest.mark.slow
def test_smallest_study_writes_points_fits_and_figure(tmp_path, capsys):
    cache = f"cache_dir={tmp_path / 'cache'}"
    overoptimisation.main([*SMALLEST, "--dry-run", cache])
    assert "2 proxy reward models on [8, 16] training pairs" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()
    overoptimisation.main([*SMALLEST, "--out", str(tmp_path / "out"), cache])
    points = pd.read_csv(tmp_path / "out" / "points.csv")
    assert sorted(points["rm_pairs"].unique()) == list(RM_PAIRS)
    for _, rows in points.groupby("rm_pairs"):
        assert rows["n"].tolist() == [1, 2, 3, 4]
        assert rows["d"].tolist() == pytest.approx([math.sqrt(bon_kl(n)) for n in (1, 2, 3, 4)])
        assert rows["gold_gain"].iloc[0] == pytest.approx(0.0, abs=1e-12)
        # the expected best of n by the proxy, under the proxy, never falls as n grows
        assert rows["proxy_gain"].is_monotonic_increasing
        assert (rows["gold_gain_se"].iloc[1:] > 0).all()
    fits = read_json(tmp_path / "out" / "fits.json")
    assert set(fits["reward_models"]) == {str(k) for k in RM_PAIRS}
    assert fits["samples_per_prompt"] == 8 and fits["prompts"] > 0
    for fit in fits["reward_models"].values():
        assert math.isfinite(fit["alpha"]) and fit["n_points"] == 4
        assert 0 <= fit["heldout_accuracy"] <= 1
    assert (tmp_path / "out" / "figures" / "overoptimisation.png").stat().st_size > 0
