"""The reviews task end to end on the tiny config: API, build, cache by stage, pi_ref the SFT model,
the pre-trained reference as the cached base model, determinism, files and the facts it reports."""

import json
import math

import numpy as np
import pytest
from omegaconf import OmegaConf
from transformers import AutoModelForCausalLM, AutoTokenizer

from prefopt.models.sampling import sample_responses
from prefopt.tasks import Task, available_tasks, build_task
from prefopt.tasks.cliffs import cliff_variance_share
from prefopt.tasks.headroom import best_of_n_win_rate
from prefopt.tasks.preferences import bradley_terry_prob
from prefopt.tasks.reviews.task import BASE_FIELDS, SFT_FIELDS
from prefopt.tasks.synthetic import sample_split_pairs, settings_hash


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_registry_and_config_errors(tiny_params):
    assert available_tasks() == ["constraints", "reviews"]
    task = build_task(OmegaConf.create(tiny_params))
    assert isinstance(task, Task) and task.name == "reviews"
    with pytest.raises(
        ValueError, match=r"unknown task 'nope'; valid: \['constraints', 'reviews'\]"
    ):
        build_task({"name": "nope"})
    with pytest.raises(ValueError, match="unknown parameters.*'bogus'.*valid.*n_train_pairs"):
        build_task({**tiny_params, "bogus": 1})
    with pytest.raises(ValueError, match="no train prompts"):
        build_task({"name": "reviews", "n_validation_prompts": 600, "n_test_prompts": 600})


def test_presets_have_the_same_keys(preset_params):
    full, tiny = preset_params("reviews"), preset_params("reviews_tiny")
    assert full.keys() == tiny.keys()
    assert build_task(full).config_hash != build_task(tiny).config_hash


def test_tiny_build_is_fast_and_complete(tiny_artifacts, tiny_params):
    info = tiny_artifacts.info
    assert info["seconds"] < 30
    assert tiny_artifacts.root.name == f"reviews-{tiny_artifacts.config_hash}"
    for split, n in [
        ("train", tiny_params["n_train_pairs"]),
        ("test", tiny_params["n_eval_pairs"]),
    ]:
        pairs = _jsonl(tiny_artifacts.data_files[split])
        assert len(pairs) == n == info["splits"][split]["n_pairs"]
        assert len(_jsonl(tiny_artifacts.unpaired_files[split])) == 2 * n
    pair = _jsonl(tiny_artifacts.data_files["train"])[0]
    assert list(pair) == [
        "prompt",
        "chosen",
        "rejected",
        "chosen_reward",
        "rejected_reward",
        "preference_prob",
        "flipped",
    ]
    assert list(_jsonl(tiny_artifacts.unpaired_files["train"])[0]) == [
        "prompt",
        "completion",
        "label",
        "reward",
    ]
    assert 0.5 <= info["splits"]["train"]["bayes_accuracy"] <= 1.0


def test_pairs_carry_exact_rewards_and_bt_probs(tiny_artifacts, tiny_task, tiny_params):
    pairs = _jsonl(tiny_artifacts.data_files["train"])
    prompts = [p["prompt"] for p in pairs]
    chosen = tiny_task.gold_reward(prompts, [p["chosen"] for p in pairs])
    rejected = tiny_task.gold_reward(prompts, [p["rejected"] for p in pairs])
    np.testing.assert_allclose(chosen, [p["chosen_reward"] for p in pairs])
    np.testing.assert_allclose(rejected, [p["rejected_reward"] for p in pairs])
    assert np.all(np.abs(chosen - rejected) >= tiny_params["min_reward_gap"])
    np.testing.assert_array_equal([p["flipped"] for p in pairs], chosen < rejected)
    expected = bradley_terry_prob(chosen - rejected, tiny_params["label_temperature"])
    np.testing.assert_allclose([p["preference_prob"] for p in pairs], expected)


def test_held_out_prompts_are_disjoint(tiny_artifacts, tiny_params):
    train = {p["prompt"] for p in _jsonl(tiny_artifacts.data_files["train"])}
    val = [p["prompt"] for p in _jsonl(tiny_artifacts.prompt_files["validation"])]
    test = [p["prompt"] for p in _jsonl(tiny_artifacts.prompt_files["test"])]
    assert len(val) == tiny_params["n_validation_prompts"]
    assert len(test) == tiny_params["n_test_prompts"]
    assert not (train & set(val)) and not (train & set(test)) and not (set(val) & set(test))


def test_cache_is_reused(tiny_artifacts, tiny_params):
    again = build_task(tiny_params).prepare(tiny_artifacts.root.parents[1], progress=False)
    assert again == tiny_artifacts


def test_seed_reproduces_files_byte_for_byte(tiny_artifacts, tiny_params, tmp_path):
    rebuilt = build_task(tiny_params).prepare(tmp_path, progress=False)
    files = ["data_files", "unpaired_files", "prompt_files"]
    for attr in files:
        for split, path in getattr(tiny_artifacts, attr).items():
            assert getattr(rebuilt, attr)[split].read_bytes() == path.read_bytes(), (attr, split)
    other_seed = build_task({**tiny_params, "seed": 1}).prepare(tmp_path, progress=False)
    assert other_seed.config_hash != tiny_artifacts.config_hash
    assert other_seed.data_files["train"].read_bytes() != rebuilt.data_files["train"].read_bytes()


def _stage(artifacts, task, stage, fields):
    """A model stage's directory in the cache of ``artifacts``."""
    return artifacts.root.parent / "stages" / f"reviews-{stage}-{settings_hash(task, fields)}"


def test_pi_ref_is_the_sft_model_and_the_base_model_is_selectable(
    tiny_artifacts, tiny_task, tiny_params
):
    weights = "model.safetensors"
    sft = _stage(tiny_artifacts, tiny_task, "sft", BASE_FIELDS + SFT_FIELDS)
    base = _stage(tiny_artifacts, tiny_task, "pretrained", BASE_FIELDS)
    info = tiny_artifacts.info
    assert info["reference"] == "sft" and "sft_final_loss" in info
    assert (tiny_artifacts.model_dir / weights).read_bytes() == (sft / weights).read_bytes()
    assert (sft / weights).read_bytes() != (base / weights).read_bytes()
    pretrained = build_task({**tiny_params, "reference": "pretrained"}).prepare(
        tiny_artifacts.root.parents[1], progress=False
    )
    assert pretrained.info["reference"] == "pretrained" and "sft_final_loss" not in pretrained.info
    assert (pretrained.model_dir / weights).read_bytes() == (base / weights).read_bytes()
    assert pretrained.info["pretrain_final_loss"] == info["pretrain_final_loss"]
    assert (  # the pairs are sampled from pi_ref
        pretrained.data_files["train"].read_bytes()
        != tiny_artifacts.data_files["train"].read_bytes()
    )
    with pytest.raises(ValueError, match=r"reference 'base'; valid: \['sft', 'pretrained'\]"):
        build_task({**tiny_params, "reference": "base"})


def test_the_pretrained_reference_is_the_cached_base_model(
    tiny_artifacts, tiny_params, pretrained_is_base_stage
):
    """With ``reference: pretrained`` pi_ref is the cached base stage byte for byte, the prompts
    are the SFT build's and the pairs are sampled from the base model instead."""
    built = pretrained_is_base_stage(tiny_artifacts, tiny_params)
    assert built.info["reference"] == "pretrained"


def test_each_stage_is_rebuilt_only_when_its_settings_change(
    tiny_artifacts, tiny_params, monkeypatch
):
    from prefopt.tasks import synthetic

    calls = []
    original = synthetic.pretrain

    def counted(*args, **kwargs):
        calls.append(kwargs["steps"])
        return original(*args, **kwargs)

    monkeypatch.setattr(synthetic, "pretrain", counted)
    cache = tiny_artifacts.root.parents[1]
    flipped = build_task({**tiny_params, "flip_rate": 0.3}).prepare(cache, progress=False)
    assert calls == []  # pi_ref comes from the stages the first build cached
    assert flipped.config_hash != tiny_artifacts.config_hash
    weights = "model.safetensors"
    assert (flipped.model_dir / weights).read_bytes() == (
        tiny_artifacts.model_dir / weights
    ).read_bytes()
    assert (
        flipped.data_files["train"].read_bytes() != tiny_artifacts.data_files["train"].read_bytes()
    )
    for split in ("validation", "test"):  # label noise is in the training labels only
        assert (
            flipped.data_files[split].read_bytes() == tiny_artifacts.data_files[split].read_bytes()
        )
    assert flipped.info["pretrain_final_loss"] == tiny_artifacts.info["pretrain_final_loss"]
    sft_steps = tiny_params["sft_steps"]
    build_task({**tiny_params, "target_clauses": 2}).prepare(cache, progress=False)
    assert calls == [sft_steps]  # the demonstrations meet the reward's targets: SFT again
    build_task({**tiny_params, "sft_follow_prob": 0.9}).prepare(cache, progress=False)
    assert calls == [sft_steps] * 2  # on the cached base model
    build_task({**tiny_params, "pretrain_steps": 20}).prepare(cache, progress=False)
    assert calls == [sft_steps] * 2 + [20, sft_steps]  # a base setting trains both stages


def test_reported_pi_ref_facts_are_those_of_its_samples(tiny_artifacts, tiny_task, tiny_params):
    """The cliff share and validity of pi_ref's train samples; the best-of-16 win rate of its
    samples for the validation prompts, drawn with the seed the build uses."""
    model = AutoModelForCausalLM.from_pretrained(tiny_artifacts.model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_artifacts.model_dir)
    cfg, splits = tiny_task.config, tiny_task.split_prompts()
    samples = sample_split_pairs(model, tokenizer, splits, tiny_task.gold_reward, cfg)["train"]
    reported = tiny_artifacts.info["pi_ref"]
    assert reported["n_samples"] == len(samples.all_texts)
    metrics = tiny_task.response_metrics(samples.all_prompts, samples.all_texts)
    outcomes = [
        "complete" if g else ("unfinished" if u else "ungrammatical")
        for g, u in zip(metrics["grammatical"], metrics["unfinished"], strict=True)
    ]
    rewards = tiny_task.gold_reward(samples.all_prompts, samples.all_texts)
    assert reported["cliff_variance_share"] == pytest.approx(
        cliff_variance_share(rewards, outcomes)
    )
    assert reported["grammatical"] == pytest.approx(np.mean(metrics["grammatical"]))
    complete = metrics["grammatical"]
    assert reported["clauses_met"] == pytest.approx(
        np.mean(metrics["n_clauses"][complete] == tiny_params["target_clauses"])
    )
    best_of_16 = best_of_n_win_rate(
        model,
        tokenizer,
        splits["validation"],
        tiny_task.gold_reward,
        seed=10 * cfg.seed + 4,
        max_new_tokens=cfg.max_new_tokens,
        temperature=cfg.sampling_temperature,
        batch_size=cfg.sampling_batch_size,
    )
    assert reported["best_of_16_win_rate"] == best_of_16


SELF_PLAY_SEED_PAIRS = 10  # independent pi_ref-against-itself comparisons
MIN_COVERAGE = (
    0.8  # share whose 95% interval covers 1/2 (all 10 by chance with p = 0.6; < 8: 0.012)
)


def test_pi_ref_loads_and_matches_itself(tiny_artifacts, tiny_task):
    """pi_ref against itself over 10 pairs of independent seeds: each pair's 95% interval covers
    1/2 in at least 80% of the pairs, and the pooled win rate is within 3 standard errors of 1/2."""
    model = AutoModelForCausalLM.from_pretrained(tiny_artifacts.model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_artifacts.model_dir)
    prompts = [p["prompt"] for p in _jsonl(tiny_artifacts.prompt_files["test"])] * 8
    ids = tokenizer(prompts)["input_ids"]
    covered, all_wins = [], []
    for pair in range(SELF_PLAY_SEED_PAIRS):
        rewards = [
            tiny_task.gold_reward(
                prompts, sample_responses(model, tokenizer, ids, max_new_tokens=48, seed=s).texts
            )
            for s in (11 + 2 * pair, 12 + 2 * pair)
        ]
        wins = (rewards[0] > rewards[1]) + 0.5 * (rewards[0] == rewards[1])  # (N,)
        assert np.sum(rewards[0] != rewards[1]) >= 40  # enough decided comparisons to test
        half_width = 1.96 * wins.std(ddof=1) / math.sqrt(len(wins))
        covered.append(abs(wins.mean() - 0.5) <= half_width)
        all_wins.append(wins)
    pooled = np.concatenate(all_wins)  # (pairs * N,)
    assert np.mean(covered) >= MIN_COVERAGE
    assert abs(pooled.mean() - 0.5) <= 3 * pooled.std(ddof=1) / math.sqrt(len(pooled))
