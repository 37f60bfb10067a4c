"""The evaluator on tiny GPT-2s: self-play, agreement with the samples file, caching, errors."""

import json
import logging

import numpy as np
import pytest
import torch
from conftest import PROMPTS, GoodWordJudge, WordCountJudge, load_model
from scipy import stats

from prefopt.eval import Evaluator, Judge, PairwiseLLMJudge
from prefopt.models.logprobs import build_batch, sequence_logps

EVAL_CFG = {"max_new_tokens": 10, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "batch_size": 16}


def make_evaluator(model_dir, tokenizer, cache_dir, judge=None, prompts=None, **cfg):
    return Evaluator(
        {**EVAL_CFG, **cfg},
        judge or WordCountJudge(),
        tokenizer,
        load_model(model_dir),
        prompts or {"validation": PROMPTS, "test": PROMPTS[:8]},
        cache_dir,
        baseline_fingerprint="pi_ref",
    )


def perturbed_copy(model_dir, scale=0.5):
    model = load_model(model_dir)
    with torch.no_grad():
        torch.manual_seed(3)
        for param in model.parameters():
            param.add_(scale * torch.randn_like(param) * param.std().clamp_min(1e-3))
    return model


def test_reference_against_itself(model_dir, tokenizer, tmp_path):
    evaluator = make_evaluator(model_dir, tokenizer, tmp_path)
    copy = load_model(model_dir)
    metrics = evaluator.evaluate(copy, "validation", step=0, seed=1)
    assert metrics["win_rate_ci_low"] <= 0.5 <= metrics["win_rate_ci_high"]
    assert metrics["kl"] == 0.0 and metrics["kl_se"] == 0.0
    assert "logratio" not in metrics
    expected = {
        "win_rate", "win_rate_ci_low", "win_rate_ci_high", "lc_win_rate", "judge_reward",
        "ref_judge_reward", "kl", "kl_se", "length", "ref_length", "truncated_frac",
        "distinct_1", "distinct_2", "eval_seconds", "long_frac",
    }  # fmt: skip
    assert expected <= set(metrics)
    assert all(np.isfinite(v) for v in metrics.values())
    # other seeds or steps give other samples, the same seed and step the same ones
    again = evaluator.evaluate(copy, "validation", step=0, seed=1)
    later = evaluator.evaluate(copy, "validation", step=5, seed=1)
    assert again["length"] == metrics["length"]
    assert later["length"] != metrics["length"] or later["distinct_2"] != metrics["distinct_2"]


def test_metrics_agree_with_the_samples_file(model_dir, tokenizer, tmp_path):
    # one pi_ref sample per prompt: the preference is the single comparison of the two rewards
    evaluator = make_evaluator(
        model_dir, tokenizer, tmp_path / "cache", reference_samples_per_prompt=1
    )
    policy = perturbed_copy(model_dir)
    path = tmp_path / "run" / "samples.jsonl"
    metrics = evaluator.evaluate(policy, "validation", step=3, seed=0, samples_path=path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["prompt_index"] for r in rows] == list(range(len(PROMPTS)))
    assert not [p for p in path.parent.iterdir() if p.name != "samples.jsonl"]  # no temp files

    # win rate, ties half, and its t interval, from the rewards in the file
    wins = np.array(
        [
            1.0 if r["policy_reward"] > r["reference_reward"] else
            0.5 if r["policy_reward"] == r["reference_reward"] else 0.0
            for r in rows
        ]
    )  # fmt: skip
    assert metrics["win_rate"] == pytest.approx(wins.mean())
    half = stats.t.ppf(0.975, len(wins) - 1) * wins.std(ddof=1) / np.sqrt(len(wins))
    assert metrics["win_rate_ci_low"] == pytest.approx(max(0.0, wins.mean() - half))
    assert metrics["win_rate_ci_high"] == pytest.approx(min(1.0, wins.mean() + half))
    # word count judge: the reward is the number of words
    assert [r["policy_reward"] for r in rows] == [len(r["policy"].split()) for r in rows]
    assert metrics["length"] == pytest.approx(np.mean([r["policy_length"] for r in rows]))
    assert metrics["truncated_frac"] == pytest.approx(
        np.mean([not r["policy_finished"] for r in rows])
    )

    # KL: score the policy's sampled tokens with both models by hand
    reference = load_model(model_dir)
    eos = tokenizer.eos_token_id
    logratios = []
    for r in rows:
        prompt = tokenizer(r["prompt"], add_special_tokens=False)["input_ids"]
        response = r["policy_token_ids"]
        assert (response[-1] == eos) == r["policy_finished"]
        ids = torch.tensor([prompt + response])
        with torch.no_grad():
            scores = []
            for model in (policy, reference):
                logp = torch.log_softmax(model(ids).logits[0].double(), -1)  # (T, V)
                positions = range(len(prompt) - 1, len(prompt) + len(response) - 1)
                scores.append(sum(logp[t, ids[0, t + 1]].item() for t in positions))
        logratios.append(scores[0] - scores[1])
    assert metrics["kl"] == pytest.approx(np.mean(logratios), abs=1e-4)
    assert metrics["kl_se"] == pytest.approx(
        np.std(logratios, ddof=1) / np.sqrt(len(logratios)), abs=1e-4
    )
    assert metrics["kl"] > 0  # a different policy is away from pi_ref


def test_k_policy_samples_are_judged_against_m_reference_samples(model_dir, tokenizer, tmp_path):
    k, m = 2, 3
    evaluator = make_evaluator(
        model_dir,
        tokenizer,
        tmp_path,
        policy_samples_per_prompt=k,
        reference_samples_per_prompt=m,
    )
    policy = perturbed_copy(model_dir)
    path = tmp_path / "samples.jsonl"
    metrics = evaluator.evaluate(policy, "validation", 2, 0, samples_path=path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == len(PROMPTS)
    for r in rows:
        assert len(r["reference_all"]) == m and len(r["policy_all"]) == k
        assert [len(p) for p in r["preference_all"]] == [m] * k
        assert r["reference"] == r["reference_all"][0] and r["policy"] == r["policy_all"][0]
        assert r["reference_reward"] == r["reference_reward_all"][0]
        assert r["reference_length"] == r["reference_length_all"][0]
        assert r["policy_token_ids"] == r["policy_token_ids_all"][0]
        assert r["policy_finished"] == r["policy_finished_all"][0]
    # independent draws on both sides: most prompts' samples are not all the same
    assert np.mean([len(set(r["reference_all"])) > 1 for r in rows]) > 0.5
    assert np.mean([len(set(r["policy_all"])) > 1 for r in rows]) > 0.5
    # word count judge, worked out from the texts: p_iab = 1, 0.5 or 0; p_i = mean_ab p_iab
    words = lambda text: len(text.split())  # noqa: E731
    each = np.array(
        [
            [
                [np.sign(words(y) - words(ref)) / 2 + 0.5 for ref in r["reference_all"]]
                for y in r["policy_all"]
            ]
            for r in rows
        ]
    )  # (N, k, m)
    assert [r["reference_reward_all"] for r in rows] == [
        [words(ref) for ref in r["reference_all"]] for r in rows
    ]
    assert [r["policy_reward_all"] for r in rows] == [
        [words(y) for y in r["policy_all"]] for r in rows
    ]
    assert each.tolist() == [r["preference_all"] for r in rows]
    per_prompt = each.mean(axis=(1, 2))  # (N,)
    assert [r["preference"] for r in rows] == pytest.approx(per_prompt.tolist())
    assert (each.min(axis=(1, 2)) < each.max(axis=(1, 2))).any()  # the comparisons do differ
    half = stats.t.ppf(0.975, len(rows) - 1) * per_prompt.std(ddof=1) / np.sqrt(len(rows))
    assert metrics["win_rate"] == pytest.approx(per_prompt.mean())
    assert metrics["win_rate_ci_low"] == pytest.approx(max(0.0, per_prompt.mean() - half))
    assert metrics["win_rate_ci_high"] == pytest.approx(min(1.0, per_prompt.mean() + half))
    # both sides' metrics average all their samples; length buckets count comparisons
    policies = [y for r in rows for y in r["policy_all"]]
    references = [ref for r in rows for ref in r["reference_all"]]
    assert metrics["judge_reward"] == pytest.approx(np.mean([words(t) for t in policies]))
    assert metrics["ref_judge_reward"] == pytest.approx(np.mean([words(t) for t in references]))
    assert [r["policy_reward"] for r in rows] == pytest.approx(
        [np.mean(r["policy_reward_all"]) for r in rows]
    )
    policy_lengths = np.array([r["policy_length_all"] for r in rows])  # (N, k)
    ref_lengths = np.array([r["reference_length_all"] for r in rows])  # (N, m)
    assert metrics["length"] == pytest.approx(policy_lengths.mean())
    assert [r["policy_length"] for r in rows] == pytest.approx(policy_lengths.mean(axis=1))
    assert metrics["ref_length"] == pytest.approx(ref_lengths.mean())
    finished = np.array([r["policy_finished_all"] for r in rows])  # (N, k)
    assert metrics["truncated_frac"] == pytest.approx(1.0 - finished.mean())
    longer = policy_lengths[:, :, None] > ref_lengths[:, None, :]  # (N, k, m)
    assert metrics["long_frac"] == pytest.approx(longer.mean())
    assert metrics["win_rate_long"] == pytest.approx(each[longer].mean())
    assert metrics["win_rate_short"] == pytest.approx(each[~longer].mean())
    # KL over all k * N samples, its standard error over the prompts' means
    logratios = np.array([r["logratio_all"] for r in rows])  # (N, k)
    assert [r["logratio"] for r in rows] == pytest.approx(logratios.mean(axis=1))
    by_prompt = logratios.mean(axis=1)  # (N,)
    assert metrics["kl"] == pytest.approx(by_prompt.mean())
    assert metrics["kl_se"] == pytest.approx(by_prompt.std(ddof=1) / np.sqrt(len(rows)))
    # the first of the k policy samples are the samples a single-sample evaluation draws
    single = make_evaluator(model_dir, tokenizer, tmp_path, reference_samples_per_prompt=m)
    single.evaluate(policy, "validation", 2, 0, samples_path=tmp_path / "single.jsonl")
    first = [json.loads(line) for line in (tmp_path / "single.jsonl").read_text().splitlines()]
    assert [r["policy"] for r in first] == [r["policy"] for r in rows]


def test_the_test_split_has_its_own_sample_counts(model_dir, tokenizer, tmp_path):
    counts = {
        "policy_samples_per_prompt": 1,
        "reference_samples_per_prompt": 2,
        "test_policy_samples_per_prompt": 3,
        "test_reference_samples_per_prompt": 4,
    }
    evaluator = make_evaluator(model_dir, tokenizer, tmp_path, **counts)
    for split, (k, m) in {"validation": (1, 2), "test": (3, 4)}.items():
        path = tmp_path / f"{split}.jsonl"
        evaluator.evaluate(load_model(model_dir), split, 0, 0, samples_path=path)
        row = json.loads(path.read_text().splitlines()[0])
        assert (len(row["policy_all"]), len(row["reference_all"])) == (k, m)
    # null test counts are the validation ones
    unset = {**counts, "test_policy_samples_per_prompt": None}
    unset["test_reference_samples_per_prompt"] = None
    fallback = make_evaluator(model_dir, tokenizer, tmp_path, **unset).samples_per_prompt["test"]
    assert (fallback.policy, fallback.reference) == (1, 2)


class CountingPairwiseJudge(Judge):
    """Pairwise judge that prefers more words (ties half) and records the responses it compared."""

    name = "counting_pairwise"
    pointwise = False

    def __init__(self):
        self.calls = []

    def compare(self, prompts, responses_a, responses_b):
        self.calls.append(list(responses_b))
        a = np.array([len(t.split()) for t in responses_a])
        b = np.array([len(t.split()) for t in responses_b])
        return 0.5 * (1.0 + np.sign(a - b))


def test_a_pairwise_judge_is_called_once_per_reference_set(model_dir, tokenizer, tmp_path):
    judge = CountingPairwiseJudge()
    counts = {"policy_samples_per_prompt": 2, "reference_samples_per_prompt": 3}
    pairwise = make_evaluator(model_dir, tokenizer, tmp_path, judge=judge, **counts)
    policy = perturbed_copy(model_dir)
    metrics = pairwise.evaluate(policy, "test", step=0, seed=0)
    reference = pairwise.reference("test")
    # each call compares all k * N policy samples with one of pi_ref's m sets
    assert judge.calls == [texts * 2 for texts in reference.texts] and len(judge.calls) == 3
    assert "judge_reward" not in metrics
    # the same preferences as the word-count judge, which scores each response once
    pointwise = make_evaluator(model_dir, tokenizer, tmp_path, **counts)
    expected = pointwise.evaluate(policy, "test", step=0, seed=0)
    for key in ("win_rate", "win_rate_ci_low", "lc_win_rate", "long_frac"):
        assert metrics[key] == pytest.approx(expected[key])


@pytest.mark.parametrize(
    "name",
    [
        "policy_samples_per_prompt",
        "reference_samples_per_prompt",
        "test_policy_samples_per_prompt",
        "test_reference_samples_per_prompt",
    ],
)
def test_samples_per_prompt_must_be_a_positive_integer(model_dir, tokenizer, tmp_path, name):
    nullable = name.startswith("test_")
    for bad in (0, 2.5, True) if nullable else (0, 2.5, None, True):
        with pytest.raises(ValueError, match=name):
            make_evaluator(model_dir, tokenizer, tmp_path, **{name: bad})


def test_a_policy_tuned_towards_the_judge_wins_and_moves_away(model_dir, tokenizer, tmp_path):
    evaluator = make_evaluator(model_dir, tokenizer, tmp_path, judge=GoodWordJudge())
    policy = load_model(model_dir).train()
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-2)
    target = tokenizer("good good good", add_special_tokens=False)["input_ids"]
    target.append(tokenizer.eos_token_id)
    prompt_ids = evaluator.prompt_ids["validation"]
    batch = build_batch(prompt_ids, [target] * len(prompt_ids), tokenizer.pad_token_id)
    for _ in range(20):  # supervised steps towards responses the judge likes
        loss = -sequence_logps(policy, **batch)[0].mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    start = evaluator.evaluate(load_model(model_dir), "validation", step=0, seed=0)
    tuned = evaluator.evaluate(policy, "validation", step=20, seed=0)
    assert start["win_rate_ci_low"] <= 0.5 <= start["win_rate_ci_high"]
    assert tuned["win_rate_ci_low"] > 0.5
    assert tuned["judge_reward"] > tuned["ref_judge_reward"]
    assert tuned["kl"] > start["kl"] + 1.0
    assert tuned["has_good"] > tuned["ref_has_good"]
    assert tuned["truncated_frac"] < start["truncated_frac"]


def test_reference_samples_are_computed_once(model_dir, tokenizer, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="prefopt.eval.sampling_cache"):
        first = make_evaluator(model_dir, tokenizer, tmp_path)
        first.evaluate(load_model(model_dir), "test", step=0, seed=0)
        assert "computed and cached" in caplog.text and "loaded" not in caplog.text
        caplog.clear()
        second = make_evaluator(model_dir, tokenizer, tmp_path)
        second.evaluate(load_model(model_dir), "test", step=0, seed=0)
        assert "loaded from cache" in caplog.text and "computed" not in caplog.text
        assert second.reference("test").samples == first.reference("test").samples
        caplog.clear()
        make_evaluator(model_dir, tokenizer, tmp_path, max_new_tokens=6).reference("test")
        assert "computed and cached" in caplog.text  # other settings, other samples
        caplog.clear()
        more = make_evaluator(model_dir, tokenizer, tmp_path, reference_samples_per_prompt=5)
        assert len(more.reference("test").samples.texts) == 5 * len(PROMPTS[:8])
        assert "computed and cached" in caplog.text  # k is part of the cache key


def test_tempered_sampling_is_not_called_kl(model_dir, tokenizer, tmp_path):
    evaluator = make_evaluator(model_dir, tokenizer, tmp_path, temperature=0.7)
    metrics = evaluator.evaluate(perturbed_copy(model_dir), "test", step=0, seed=0)
    assert "kl" not in metrics and "logratio" in metrics and "logratio_se" in metrics


def test_response_metrics_and_proxy_rewards(model_dir, tokenizer, tmp_path):
    evaluator = Evaluator(
        EVAL_CFG,
        GoodWordJudge(),
        tokenizer,
        load_model(model_dir),
        {"test": PROMPTS[:8]},
        tmp_path,
        "pi_ref",
        proxy_judge=WordCountJudge(),
    )
    metrics = evaluator.evaluate(load_model(model_dir), "test", step=0, seed=0)
    assert 0.0 <= metrics["has_good"] <= 1.0 and "ref_has_good" in metrics
    assert metrics["proxy_reward"] == pytest.approx(metrics["length"], abs=1.0)


def test_pairwise_judge(model_dir, tokenizer, tmp_path):
    judge = PairwiseLLMJudge(
        str(model_dir), "Prompt {prompt} A {first} B {second} Response", answer_tokens=("A", "B")
    )
    evaluator = make_evaluator(model_dir, tokenizer, tmp_path, judge=judge)
    metrics = evaluator.evaluate(perturbed_copy(model_dir), "test", step=0, seed=0)
    assert 0 <= metrics["win_rate_ci_low"] <= metrics["win_rate"] <= metrics["win_rate_ci_high"]
    assert "judge_reward" not in metrics
    with pytest.raises(ValueError, match="pointwise"):
        evaluator.best_of_n("test", ns=(1, 2))


def test_best_of_n(model_dir, tokenizer, tmp_path):
    evaluator = make_evaluator(model_dir, tokenizer, tmp_path)
    rows = evaluator.best_of_n("test", ns=(1, 2, 4), seed=0)
    assert [r["n"] for r in rows] == [1, 2, 4]
    rewards = [r["judge_reward"] for r in rows]
    assert rewards == sorted(rewards)  # the best of more samples is never worse
    for r in rows:
        assert r["kl_estimate"] <= r["kl_bound"] + 1e-12
    assert rows[0]["kl_bound"] == 0.0 and rows[0]["kl_estimate"] == 0.0
    with pytest.raises(ValueError, match="positive"):
        evaluator.best_of_n("test", ns=(0, 2))


class BrokenJudge(Judge):
    name = "broken"

    def __init__(self, output):
        self.output = output

    def score(self, prompts, responses):
        return self.output(len(responses))


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (lambda n: np.full(n, np.nan), "non-finite"),
        (lambda n: np.zeros(n + 1), "shape"),
        (lambda n: np.zeros((n, 2)), "shape"),
    ],
)
def test_bad_judge_output_is_an_error(model_dir, tokenizer, tmp_path, output, message):
    evaluator = make_evaluator(model_dir, tokenizer, tmp_path, judge=BrokenJudge(output))
    with pytest.raises(ValueError, match=message):
        evaluator.evaluate(load_model(model_dir), "test", step=0, seed=0)


class MetricJudge(WordCountJudge):
    def __init__(self, metric):
        self.metric = metric

    def response_metrics(self, prompts, responses):
        return {"sentiment": self.metric(len(responses))}


def test_response_metrics_skip_nan_and_reject_bad_shapes(model_dir, tokenizer, tmp_path):
    half_defined = lambda n: np.where(np.arange(n) % 2 == 0, 1.0, np.nan)  # noqa: E731
    evaluator = make_evaluator(model_dir, tokenizer, tmp_path, judge=MetricJudge(half_defined))
    metrics = evaluator.evaluate(load_model(model_dir), "test", step=0, seed=0)
    assert metrics["sentiment"] == 1.0 and metrics["ref_sentiment"] == 1.0
    undefined = make_evaluator(
        model_dir, tokenizer, tmp_path, judge=MetricJudge(lambda n: np.full(n, np.nan))
    )
    assert "sentiment" not in undefined.evaluate(load_model(model_dir), "test", step=0, seed=0)
    for bad in (lambda n: np.zeros(n - 1), lambda n: np.full(n, np.inf)):
        with pytest.raises(ValueError, match="response metric 'sentiment'"):
            make_evaluator(model_dir, tokenizer, tmp_path, judge=MetricJudge(bad)).reference("test")


def test_bad_prompts_and_splits(model_dir, tokenizer, tmp_path):
    with pytest.raises(ValueError, match="no prompts"):
        make_evaluator(model_dir, tokenizer, tmp_path, prompts={"test": []})
    with pytest.raises(ValueError, match="at least one split"):
        Evaluator(EVAL_CFG, WordCountJudge(), tokenizer, load_model(model_dir), {}, tmp_path, "k")
    with pytest.raises(ValueError, match="num_prompts"):
        make_evaluator(model_dir, tokenizer, tmp_path, num_prompts=0)
    evaluator = make_evaluator(model_dir, tokenizer, tmp_path, num_prompts=5)
    assert len(evaluator.prompts["validation"]) == 5
    with pytest.raises(ValueError, match="unknown split 'train'"):
        evaluator.evaluate(load_model(model_dir), "train", step=0, seed=0)
