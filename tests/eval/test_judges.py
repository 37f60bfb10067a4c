"""Judges on tiny models built in the test: reward model, pairwise LLM, proxy, gold, build_judge."""

import logging

import numpy as np
import pytest
from conftest import StandInTask

from prefopt.eval import (
    GoldJudge,
    PairwiseLLMJudge,
    ProxyRewardJudge,
    RewardModelJudge,
    build_judge,
)
from prefopt.eval.judges import check_preferences, check_scores

PROMPTS = ["the cat sat", "the dog ran", "a cat is", "the dog was"]
RESP_A = ["on the mat", "very big", "good", "not red and blue"]
RESP_B = ["on the hat", "small", "bad bad", "not red and blue"]


def test_check_scores_rejects_nan_and_wrong_shape():
    with pytest.raises(ValueError, match="non-finite"):
        check_scores([1.0, float("nan")], 2, "j")
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        check_scores([1.0, 2.0, 3.0], 2, "j")
    with pytest.raises(ValueError, match="outside"):
        check_preferences([0.5, 1.5], 2, "j")


def test_reward_model_judge_scores_and_compares(classifier_dir):
    judge = RewardModelJudge(str(classifier_dir), batch_size=3)
    scores_a = judge.score(PROMPTS, RESP_A)
    scores_b = judge.score(PROMPTS, RESP_B)
    assert scores_a.shape == (4,) and np.isfinite(scores_a).all()
    assert scores_a[3] == pytest.approx(scores_b[3])  # same text, same reward
    expected = np.where(scores_a > scores_b, 1.0, np.where(scores_a < scores_b, 0.0, 0.5))
    expected[3] = 0.5
    assert judge.compare(PROMPTS, RESP_A, RESP_B)[:3].tolist() == expected[:3].tolist()
    # batching does not change the rewards
    one_batch = RewardModelJudge(str(classifier_dir), batch_size=8).score(PROMPTS, RESP_A)
    np.testing.assert_allclose(one_batch, scores_a, atol=1e-5)
    pair = RewardModelJudge(str(classifier_dir), input_format="pair").score(PROMPTS, RESP_A)
    assert pair.shape == (4,)
    with pytest.raises(ValueError, match="input_format"):
        RewardModelJudge(str(classifier_dir), input_format="xml")


def test_llm_judge_both_orders_sum_to_one(model_dir):
    template = "Prompt {prompt} Response A {first} Response B {second} The better Response is"
    judge = PairwiseLLMJudge(str(model_dir), template, answer_tokens=("A", "B"), batch_size=3)
    ab = judge.compare(PROMPTS, RESP_A, RESP_B)
    ba = judge.compare(PROMPTS, RESP_B, RESP_A)
    assert ab.shape == (4,) and ((ab >= 0) & (ab <= 1)).all()
    np.testing.assert_allclose(ab + ba, 1.0, atol=1e-12)
    # one order alone is biased by position: its two orders do not sum to one
    first = judge.first_preferred(PROMPTS, RESP_A, RESP_B)
    second = judge.first_preferred(PROMPTS, RESP_B, RESP_A)
    assert not np.allclose(first + second, 1.0, atol=1e-6)
    assert judge.compare(PROMPTS, RESP_A, RESP_A) == pytest.approx(np.full(4, 0.5))


def test_llm_judge_rejects_bad_template_and_answers(model_dir):
    with pytest.raises(ValueError, match=r"\{second\}"):
        PairwiseLLMJudge(str(model_dir), "{prompt} {first}")
    with pytest.raises(ValueError, match="one token"):
        PairwiseLLMJudge(str(model_dir), answer_tokens=("A B", "B"))


def toy_pairs(n=48):
    """Chosen responses say "good", rejected ones "bad": trivially learnable."""
    rng = np.random.default_rng(0)
    pairs = []
    for i in range(n):
        filler = " ".join(rng.choice(["the", "cat", "dog", "on", "mat", "red"], size=3))
        pairs.append(
            {
                "prompt": PROMPTS[i % len(PROMPTS)],
                "chosen": f"{filler} good good",
                "rejected": f"{filler} bad bad",
            }
        )
    return pairs


def test_proxy_judge_learns_its_pairs_and_is_cached(model_dir, tmp_path, caplog):
    pairs = toy_pairs()
    settings = dict(epochs=3, lr=3e-3, batch_size=16, seed=0)
    with caplog.at_level(logging.INFO):
        judge = ProxyRewardJudge(model_dir, pairs, tmp_path, **settings)
    assert "trained on 48 pairs" in caplog.text
    prompts = [p["prompt"] for p in pairs]
    chosen = judge.score(prompts, [p["chosen"] for p in pairs])
    rejected = judge.score(prompts, [p["rejected"] for p in pairs])
    assert (chosen > rejected).mean() > 0.5
    caplog.clear()
    with caplog.at_level(logging.INFO):
        again = ProxyRewardJudge(model_dir, pairs, tmp_path, **settings)
    assert "loaded from" in caplog.text
    np.testing.assert_allclose(again.score(prompts, [p["chosen"] for p in pairs]), chosen)
    with pytest.raises(ValueError, match="lacks"):
        ProxyRewardJudge(model_dir, [{"prompt": "a", "chosen": "b"}], tmp_path)
    with pytest.raises(ValueError, match="needs training pairs"):
        ProxyRewardJudge(model_dir, [], tmp_path)


def test_gold_judge_forwards_the_task():
    judge = build_judge({"kind": "gold"}, task=StandInTask())
    assert isinstance(judge, GoldJudge) and judge.pointwise
    assert judge.score(PROMPTS, RESP_A).tolist() == [0, 0, 1, 0]
    assert judge.compare(PROMPTS, RESP_A, RESP_B).tolist() == [0.5, 0.5, 1.0, 0.5]
    assert judge.response_metrics(PROMPTS, RESP_B)["grammatical"].tolist() == [1, 1, 0, 1]


def test_build_judge_errors(classifier_dir):
    with pytest.raises(ValueError, match="judge kind"):
        build_judge({"kind": "oracle"})
    with pytest.raises(ValueError, match="needs the built-in task"):
        build_judge({"kind": "gold"})
    with pytest.raises(ValueError, match="unknown settings"):
        build_judge({"kind": "reward_model", "name_or_path": str(classifier_dir), "temp": 1})
    with pytest.raises(ValueError, match="proxy judge needs"):
        build_judge({"kind": "proxy"}, train_pairs=toy_pairs())
    judge = build_judge({"kind": "reward_model", "name_or_path": str(classifier_dir)})
    assert isinstance(judge, RewardModelJudge)
