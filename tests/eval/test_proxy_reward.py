"""The proxy reward model as a stage: held-out accuracy against the Bayes ceiling, reward
normalisation, the cache of train_info.json, and the checks of held-out pairs."""

import json
import logging

import numpy as np
import pytest
from conftest import WordCountJudge

from prefopt.eval import ProxyRewardJudge, build_judge
from prefopt.eval.judges.reward_stats import heldout_report, reward_moments

SETTINGS = dict(epochs=2, lr=3e-3, batch_size=16, seed=0)


def toy_pairs(n=32):
    """Chosen responses say "good", rejected ones "bad" (learnable); fillers vary the texts."""
    fillers = ["the cat", "a dog", "the mat", "red and blue", "very big", "not small"]
    prompts = ["the cat sat", "the dog ran", "a cat is", "the dog was"]
    return [
        {
            "prompt": prompts[i % len(prompts)],
            "chosen": f"{fillers[i % len(fillers)]} good",
            "rejected": f"{fillers[(i + 1) % len(fillers)]} bad bad",
        }
        for i in range(n)
    ]


HELDOUT = [
    {
        "prompt": "the cat sat",
        "chosen": "on the mat good",
        "rejected": "bad",
        "preference_prob": 0.9,
    },
    {"prompt": "a dog is", "chosen": "small", "rejected": "very big good", "preference_prob": 0.2},
    {"prompt": "the dog ran", "chosen": "red", "rejected": "red", "preference_prob": 0.5},
]


def test_heldout_report_by_hand_with_word_count_rewards():
    # rewards are word counts: pair 0 is right (4 > 1), pair 1 wrong (1 < 3), pair 2 a tie (1 = 1)
    report = heldout_report(WordCountJudge(), HELDOUT)
    assert report["heldout_accuracy"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert report["heldout_pairs"] == 3
    assert report["bayes_accuracy"] == pytest.approx((0.9 + 0.8 + 0.5) / 3)
    unknown = [{k: v for k, v in pair.items() if k != "preference_prob"} for pair in HELDOUT]
    assert "bayes_accuracy" not in heldout_report(WordCountJudge(), HELDOUT[:2] + unknown[2:])


def test_reward_moments_by_hand_with_word_count_rewards():
    # responses' word counts: 4, 1 (chosen), 1, 3 (rejected) over the first two pairs
    moments = reward_moments(WordCountJudge(), HELDOUT[:2])
    counts = np.array([4.0, 1.0, 1.0, 3.0])
    mean = counts.sum() / 4
    assert moments["reward_mean"] == pytest.approx(mean)
    assert moments["reward_std"] == pytest.approx(np.sqrt(((counts - mean) ** 2).sum() / 4))


@pytest.fixture(scope="module")
def trained(model_dir, tmp_path_factory):
    """A proxy trained once on toy_pairs, with HELDOUT reported, and its cache directory."""
    cache = tmp_path_factory.mktemp("proxy_cache")
    judge = ProxyRewardJudge(model_dir, toy_pairs(), cache, heldout_pairs=HELDOUT, **SETTINGS)
    return judge, cache


def scores_of(judge, pairs):
    prompts = [p["prompt"] for p in pairs]
    chosen = judge.score(prompts, [p["chosen"] for p in pairs])
    rejected = judge.score(prompts, [p["rejected"] for p in pairs])
    return chosen, rejected


def test_heldout_accuracy_is_the_share_of_pairs_the_scores_order(trained):
    judge, _ = trained
    chosen, rejected = scores_of(judge, HELDOUT)
    points = [
        1.0 if c > r else 0.5 if c == r else 0.0 for c, r in zip(chosen, rejected, strict=True)
    ]
    assert judge.info["heldout_accuracy"] == pytest.approx(sum(points) / len(points))
    assert chosen[2] == rejected[2]  # the tie counted half
    assert judge.info["heldout_pairs"] == 3
    assert judge.info["bayes_accuracy"] == pytest.approx((0.9 + 0.8 + 0.5) / 3)
    saved = json.loads((judge.path / "train_info.json").read_text())
    assert [saved["heldout"][key] for key in saved["heldout"]] == [
        {k: judge.info[k] for k in ("heldout_accuracy", "heldout_pairs", "bayes_accuracy")}
    ]
    for key in ("pairs", "final_loss", "last_epoch_accuracy", "reward_mean", "reward_std"):
        assert judge.info[key] == saved[key]


def test_normalized_scores_have_mean_0_and_std_1_over_the_training_responses(trained, model_dir):
    raw, cache = trained
    judge = ProxyRewardJudge(model_dir, toy_pairs(), cache, normalize=True, **SETTINGS)
    assert judge.path == raw.path and judge.name != raw.name
    rewards = np.concatenate(scores_of(judge, toy_pairs()))  # (2P,)
    assert rewards.mean() == pytest.approx(0.0, abs=1e-6)
    assert rewards.std() == pytest.approx(1.0, abs=1e-6)
    raw_rewards = np.concatenate(scores_of(raw, toy_pairs()))
    assert raw_rewards.std() != pytest.approx(1.0, abs=1e-3)  # normalising changed the scale
    np.testing.assert_allclose(
        rewards, (raw_rewards - raw_rewards.mean()) / raw_rewards.std(), atol=1e-6
    )


def test_cache_is_reused_and_keeps_each_heldout_set(trained, model_dir, caplog):
    first, cache = trained
    other = HELDOUT[:2]
    with caplog.at_level(logging.INFO):
        judge = ProxyRewardJudge(model_dir, toy_pairs(), cache, heldout_pairs=other, **SETTINGS)
    assert "loaded from" in caplog.text and "trained on" not in caplog.text
    assert judge.path == first.path  # held-out pairs do not change the model's key
    assert judge.info["heldout_pairs"] == 2 and "held-out pairs" in caplog.text
    assert len(json.loads((judge.path / "train_info.json").read_text())["heldout"]) == 2
    caplog.clear()
    with caplog.at_level(logging.INFO):
        again = ProxyRewardJudge(model_dir, toy_pairs(), cache, heldout_pairs=other, **SETTINGS)
    assert "held-out pairs" not in caplog.text  # read back, not measured again
    assert again.info == judge.info


def test_moments_missing_from_an_older_cache_are_measured_and_saved(trained, model_dir):
    first, cache = trained
    info_path = first.path / "train_info.json"
    old = json.loads(info_path.read_text())
    info_path.write_text(json.dumps({k: v for k, v in old.items() if not k.startswith("reward_")}))
    judge = ProxyRewardJudge(model_dir, toy_pairs(), cache, **SETTINGS)
    assert judge.info["reward_mean"] == pytest.approx(old["reward_mean"], abs=1e-6)
    assert json.loads(info_path.read_text())["reward_std"] == pytest.approx(old["reward_std"])


def test_bad_heldout_pairs_are_refused_naming_the_pair(trained, model_dir):
    _, cache = trained
    missing = HELDOUT[:2] + [{"prompt": "a", "chosen": "b"}]
    with pytest.raises(ValueError, match=r"held-out pair 2 lacks \['rejected'\]"):
        ProxyRewardJudge(model_dir, toy_pairs(), cache, heldout_pairs=missing, **SETTINGS)
    out_of_range = [{**HELDOUT[0]}, {**HELDOUT[1], "preference_prob": 1.5}]
    with pytest.raises(ValueError, match="held-out pair 1 has preference_prob=1.5"):
        ProxyRewardJudge(model_dir, toy_pairs(), cache, heldout_pairs=out_of_range, **SETTINGS)


def test_build_judge_passes_heldout_pairs_and_normalize(trained, model_dir):
    first, cache = trained
    cfg = {"kind": "proxy", "name_or_path": str(model_dir), "normalize": True, **SETTINGS}
    judge = build_judge(cfg, cache_dir=cache, train_pairs=toy_pairs(), heldout_pairs=HELDOUT)
    assert judge.path == first.path and judge.normalize
    assert judge.info["heldout_accuracy"] == first.info["heldout_accuracy"]
    with pytest.raises(ValueError, match="unknown settings"):
        build_judge({**cfg, "heldout_pairs": HELDOUT}, cache_dir=cache, train_pairs=toy_pairs())
