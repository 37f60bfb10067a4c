"""The frontier study's driver: its plan, and its report from a points file alone."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
sys.path.insert(0, str(Path(__file__).resolve().parent / "analysis"))

import frontier  # noqa: E402


def test_the_plan_covers_every_method_at_three_seeds(capsys):
    frontier.main(["--dry-run"])
    out = capsys.readouterr().out
    # (5 losses x 3 + sft + 4 baselines x 3) x 3, then 2 noisy arms x 2 flip rates x 3 seeds (their
    # flip rate 0 is the clean arm's run)
    assert "frontier: 96 runs" in out
    assert "dry run: nothing launched" in out


def _points():
    rng = np.random.default_rng(0)
    rows = []
    for method, slope in (("dpo", 1.0), ("ppo_rm", 0.6)):
        for seed in (1, 2, 3):
            for flip in (0.0, 0.2):
                for step in range(0, 251, 25):
                    kl = step / 50
                    rows.append(
                        {
                            "run_label": method,
                            "status": "finished",
                            "seed": seed,
                            "task.flip_rate": flip,
                            "task.n_train_pairs": 2000,
                            "loss.beta": 0.5 if method == "dpo" else None,
                            "online.kl_coef": 0.1 if method == "ppo_rm" else None,
                            "step": step,
                            "kl": kl,
                            "judge_reward": slope * kl - 0.1 * kl**2 + rng.normal(0, 0.05),
                            "proxy_reward": kl,
                            "win_rate": 0.5 + 0.05 * kl,
                            "run_id": f"{method}/{seed}/{flip}",
                            "tokens_generated": 0 if method == "dpo" else 640 * step,
                            "tokens_trained": 1000 * step,
                            "reward_queries": 0 if method == "dpo" else 64 * step,
                        }
                    )
    return pd.DataFrame(rows)


def test_the_report_compares_frontiers_over_seeds_and_costs(tmp_path):
    path = frontier.report(_points(), tmp_path)
    text = path.read_text()
    assert (tmp_path / "figures" / "frontier.png").is_file()
    assert "Gold reward at a KL budget" in text and "pairs labelled 2000" in text
    fits = frontier.rl_fits(_points()).set_index("reward")
    # ppo_rm's gold 0.6 kl - 0.1 kl^2 turns over; its proxy (= kl) keeps rising
    assert fits.loc["judge_reward", "peak_sqrt_kl"] < 3 and fits.loc["proxy_reward", "beta"] < 0
    table = frontier.cost_to_reach(_points(), target=0.5).set_index("method")
    assert table.loc["dpo", "seeds_reached"] == 3 and table.loc["dpo", "reward_queries"] == 0
    # ppo_rm's gold 0.6 kl - 0.1 kl^2 first passes 0.5 at kl 1 (step 50), dpo's at kl 0.5
    assert table.loc["ppo_rm", "tokens_trained"] > table.loc["dpo", "tokens_trained"]
    assert table.loc["ppo_rm", "reward_queries"] > 0
    assert (
        frontier.cost_to_reach(_points(), target=5.0)
        .set_index("method")
        .loc["ppo_rm", "seeds_reached"]
        == 0
    )  # never reached: no cost


def test_every_arm_runs_in_the_study_folder_and_cache():
    arms = frontier.commands("frontier")
    cache = f"cache_dir={frontier.study_cache('frontier')}"
    assert all(cache in overrides for overrides in arms.values())
    names = {next(o for o in overrides if o.startswith("name=")) for overrides in arms.values()}
    assert names == {"name=frontier/methods", "name=frontier/noise"}
    assert "task.flip_rate=0.2,0.4" in arms["dpo_noise"] and "loss.beta=0.5" in arms["dpo_noise"]


def test_the_noise_table_takes_rate_zero_from_the_clean_arm_at_the_noisy_strength():
    points = _points()
    other = points[points["run_label"] == "dpo"].assign(**{"loss.beta": 2.0, "judge_reward": 99.0})
    table = frontier.noise_table(pd.concat([points, other])).set_index(["method", "flip_rate"])
    assert set(table.index) == {(m, f) for m in ("dpo", "ppo_rm") for f in (0.0, 0.2)}
    assert table.loc[("dpo", 0.0), "gold"] < 99  # beta 2's runs are not the noisy arm's
    assert (table["seeds"] == 3).all()


def test_export_writes_the_study_file_and_its_points(tmp_path, monkeypatch):
    from fabricate import fabricate_sweep

    monkeypatch.chdir(tmp_path)
    fabricate_sweep(tmp_path / "multirun" / "frontier" / "methods", seeds=(1,), unfinished=False)
    for path in tmp_path.rglob("*_test.jsonl"):
        path.unlink()  # eval.test_at=never: no test scores, so no prompt records
    points = pd.read_csv(frontier.export("frontier"))
    assert (tmp_path / "results" / "frontier" / "runs.parquet").is_file()
    rows, _ = frontier.read_study(tmp_path / "results" / "frontier" / "runs.parquet")
    assert len(points) == (rows["split"] == "validation").sum() > 0
    assert set(points["loss.beta"]) == {0.1, 0.5} and (points[frontier.COSTS] == 0).all().all()


def test_runs_of_another_layout_or_task_are_refused(tmp_path, monkeypatch):
    from fabricate import fabricate_sweep

    monkeypatch.chdir(tmp_path)
    fabricate_sweep(tmp_path / "multirun" / "frontier" / "dpo", seeds=(1,), unfinished=False)
    with pytest.raises(ValueError, match="runs outside"):
        frontier.export("frontier")
