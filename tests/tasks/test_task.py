"""The reviews task end to end on the tiny config: API, build, cache, determinism, files."""

import json
import math

import numpy as np
import pytest
from omegaconf import OmegaConf
from transformers import AutoModelForCausalLM, AutoTokenizer

from prefopt.models.sampling import sample_responses
from prefopt.tasks import Task, available_tasks, build_task
from prefopt.tasks.preferences import bradley_terry_prob


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


def test_a_data_only_change_reuses_the_trained_pi_ref(tiny_artifacts, tiny_params, monkeypatch):
    from prefopt.tasks.reviews import task as reviews_task

    calls = []
    original = reviews_task.pretrain

    def counted(*args, **kwargs):
        calls.append(kwargs["steps"])
        return original(*args, **kwargs)

    monkeypatch.setattr(reviews_task, "pretrain", counted)
    cache = tiny_artifacts.root.parents[1]
    flipped = build_task({**tiny_params, "flip_rate": 0.3}).prepare(cache, progress=False)
    assert calls == []  # pi_ref comes from the stage the first build cached
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
    build_task({**tiny_params, "pretrain_steps": 20}).prepare(cache, progress=False)
    assert calls == [20]  # a setting pi_ref depends on trains a new one


def test_pi_ref_loads_and_matches_itself(tiny_artifacts, tiny_task):
    """pi_ref against itself with independent seeds: the win rate's 95% interval contains 1/2."""
    model = AutoModelForCausalLM.from_pretrained(tiny_artifacts.model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_artifacts.model_dir)
    prompts = [p["prompt"] for p in _jsonl(tiny_artifacts.prompt_files["test"])] * 8
    ids = tokenizer(prompts)["input_ids"]
    rewards = [
        tiny_task.gold_reward(
            prompts, sample_responses(model, tokenizer, ids, max_new_tokens=48, seed=s).texts
        )
        for s in (11, 12)
    ]
    wins = (rewards[0] > rewards[1]) + 0.5 * (rewards[0] == rewards[1])  # (N,)
    assert np.sum(rewards[0] != rewards[1]) >= 40  # enough decided comparisons to test
    half_width = 1.96 * wins.std(ddof=1) / math.sqrt(len(wins))
    assert abs(wins.mean() - 0.5) <= half_width
