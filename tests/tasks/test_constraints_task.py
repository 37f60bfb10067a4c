"""The constraints task end to end on the tiny config: registry, preset, build, files, pi_ref the SFT
model, cache by stage, and the build facts it reports (the cliff share measured on pi_ref's samples,
the chosen-longer share)."""

import json

import numpy as np
import pytest
from test_presets import composed
from transformers import AutoModelForCausalLM, AutoTokenizer

from prefopt.tasks import available_tasks, build_task
from prefopt.tasks.cliffs import cliff_variance_share
from prefopt.tasks.constraints import ConstraintsTask
from prefopt.tasks.constraints.prompts import parse_prompt
from prefopt.tasks.constraints.task import BASE_FIELDS, SFT_FIELDS
from prefopt.tasks.preferences import bradley_terry_prob
from prefopt.tasks.synthetic import sample_split_pairs, settings_hash

# The values constraints_tiny changes: a pi_ref and data small enough to build in seconds.
TINY_SIZES = {
    "n_layer": 1,
    "n_embd": 32,
    "pretrain_steps": 120,
    "pretrain_batch_size": 64,
    "sft_steps": 30,
    "sft_batch_size": 64,
    "n_validation_prompts": 16,
    "n_test_prompts": 32,
    "n_train_pairs": 64,
    "n_eval_pairs": 16,
    "sampling_batch_size": 128,
}


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_registered_beside_reviews(constraints_tiny_params):
    assert {"constraints", "reviews"} <= set(available_tasks())
    assert isinstance(build_task(constraints_tiny_params), ConstraintsTask)
    with pytest.raises(ValueError, match="unknown parameters.*'target_clauses'.*sft_steps"):
        build_task({**constraints_tiny_params, "target_clauses": 3})  # a reviews setting
    with pytest.raises(ValueError, match=r"reference 'base'; valid: \['sft', 'pretrained'\]"):
        build_task({**constraints_tiny_params, "reference": "base"})


def test_constraints_tiny_composes_as_constraints_with_the_tiny_sizes(compose_config):
    tiny, tiny_choices = composed(compose_config, ["task=constraints_tiny"])
    sized = [f"task.{key}={value}" for key, value in TINY_SIZES.items()]
    full, full_choices = composed(compose_config, ["task=constraints", *sized])
    assert tiny == full
    assert tiny_choices == {**full_choices, "task": "constraints_tiny"}
    assert tiny["model"]["name_or_path"] == "@task" and tiny["judge"]["kind"] == "gold"


def test_tiny_build_is_fast_and_complete(constraints_tiny_artifacts, constraints_tiny_params):
    artifacts, params = constraints_tiny_artifacts, constraints_tiny_params
    info = artifacts.info
    assert info["seconds"] < 60
    assert artifacts.root.name == f"constraints-{artifacts.config_hash}"
    for split, n in [("train", params["n_train_pairs"]), ("test", params["n_eval_pairs"])]:
        assert len(_jsonl(artifacts.data_files[split])) == n == info["splits"][split]["n_pairs"]
        assert len(_jsonl(artifacts.unpaired_files[split])) == 2 * n
    assert info["n_prompts"]["validation"] == params["n_validation_prompts"]
    for split in ("train", "validation", "test"):
        assert 0.0 <= info["splits"][split]["chosen_longer"] <= 1.0
    assert 0.5 <= info["splits"]["train"]["bayes_accuracy"] <= 1.0
    assert 0.0 <= info["pi_ref"]["cliff_variance_share"] <= 1.0


def test_pairs_carry_exact_rewards_and_bt_probs(
    constraints_tiny_artifacts, constraints_tiny_task, constraints_tiny_params
):
    pairs = _jsonl(constraints_tiny_artifacts.data_files["train"])
    prompts = [p["prompt"] for p in pairs]
    chosen = constraints_tiny_task.gold_reward(prompts, [p["chosen"] for p in pairs])
    rejected = constraints_tiny_task.gold_reward(prompts, [p["rejected"] for p in pairs])
    np.testing.assert_allclose(chosen, [p["chosen_reward"] for p in pairs])
    np.testing.assert_allclose(rejected, [p["rejected_reward"] for p in pairs])
    assert np.all(np.abs(chosen - rejected) >= constraints_tiny_params["min_reward_gap"])
    expected = bradley_terry_prob(chosen - rejected, constraints_tiny_params["label_temperature"])
    np.testing.assert_allclose([p["preference_prob"] for p in pairs], expected)


def test_written_held_out_prompts_ask_for_unseen_combinations(constraints_tiny_artifacts):
    def combinations(files, key):
        return {parse_prompt(r[key]).combination for path in files for r in _jsonl(path)}

    artifacts = constraints_tiny_artifacts
    train = combinations(
        [artifacts.data_files["train"], artifacts.unpaired_files["train"]], "prompt"
    )
    held_out = combinations(artifacts.prompt_files.values(), "prompt")
    held_out_pairs = combinations(
        [artifacts.data_files[s] for s in ("validation", "test")], "prompt"
    )
    assert held_out and not train & held_out
    assert held_out_pairs <= held_out


def test_cliff_share_is_measured_on_pi_refs_train_samples(
    constraints_tiny_artifacts, constraints_tiny_task, constraints_tiny_params
):
    """The reported share is cliff_variance_share of the gold rewards of every pi_ref sample drawn
    for the train pairs, grouped by outcome (complete, unfinished, ungrammatical)."""
    artifacts, task = constraints_tiny_artifacts, constraints_tiny_task
    model = AutoModelForCausalLM.from_pretrained(artifacts.model_dir)
    tokenizer = AutoTokenizer.from_pretrained(artifacts.model_dir)
    train = sample_split_pairs(
        model, tokenizer, task.split_prompts(), task.gold_reward, task.config
    )
    samples = train["train"]
    assert len(samples.all_texts) == artifacts.info["pi_ref"]["n_samples"]
    metrics = task.response_metrics(samples.all_prompts, samples.all_texts)
    outcomes = [
        "complete" if g else ("unfinished" if u else "ungrammatical")
        for g, u in zip(metrics["grammatical"], metrics["unfinished"], strict=True)
    ]
    share = cliff_variance_share(task.gold_reward(samples.all_prompts, samples.all_texts), outcomes)
    assert artifacts.info["pi_ref"]["cliff_variance_share"] == pytest.approx(share)
    assert artifacts.info["pi_ref"]["grammatical"] == pytest.approx(np.mean(metrics["grammatical"]))


def test_cache_reuse_and_seeds(constraints_tiny_artifacts, constraints_tiny_params, tmp_path):
    cache = constraints_tiny_artifacts.root.parents[1]
    assert build_task(constraints_tiny_params).prepare(cache, progress=False) == (
        constraints_tiny_artifacts
    )
    rebuilt = build_task(constraints_tiny_params).prepare(tmp_path, progress=False)
    for attr in ("data_files", "unpaired_files", "prompt_files"):
        for split, path in getattr(constraints_tiny_artifacts, attr).items():
            assert getattr(rebuilt, attr)[split].read_bytes() == path.read_bytes(), (attr, split)
    other = build_task({**constraints_tiny_params, "seed": 1})
    assert (
        other.split_prompts()["test"] != build_task(constraints_tiny_params).split_prompts()["test"]
    )


def _stage(artifacts, task, stage, fields):
    """A model stage's directory in the cache of ``artifacts``."""
    stages = artifacts.root.parent / "stages"
    return stages / f"constraints-{stage}-{settings_hash(task, fields)}"


def test_pi_ref_is_the_sft_model_and_the_base_model_is_selectable(
    constraints_tiny_artifacts, constraints_tiny_task, constraints_tiny_params
):
    artifacts, task = constraints_tiny_artifacts, constraints_tiny_task
    weights = "model.safetensors"
    sft = _stage(artifacts, task, "sft", BASE_FIELDS + SFT_FIELDS)
    base = _stage(artifacts, task, "pretrained", BASE_FIELDS)
    assert artifacts.info["reference"] == "sft" and "sft_final_loss" in artifacts.info
    assert (artifacts.model_dir / weights).read_bytes() == (sft / weights).read_bytes()
    assert (sft / weights).read_bytes() != (base / weights).read_bytes()
    pretrained_params = {**constraints_tiny_params, "reference": "pretrained"}
    pretrained = build_task(pretrained_params).prepare(artifacts.root.parents[1], progress=False)
    assert pretrained.info["reference"] == "pretrained" and "sft_final_loss" not in pretrained.info
    assert (pretrained.model_dir / weights).read_bytes() == (base / weights).read_bytes()
    assert pretrained.info["pretrain_final_loss"] == artifacts.info["pretrain_final_loss"]
    assert (  # the pairs are sampled from pi_ref
        pretrained.data_files["train"].read_bytes() != artifacts.data_files["train"].read_bytes()
    )


def test_each_stage_is_rebuilt_only_when_its_settings_change(
    constraints_tiny_artifacts, constraints_tiny_params, monkeypatch
):
    from prefopt.tasks import synthetic

    calls = []
    original = synthetic.pretrain

    def counted(*args, **kwargs):
        calls.append(kwargs["steps"])
        return original(*args, **kwargs)

    monkeypatch.setattr(synthetic, "pretrain", counted)
    cache = constraints_tiny_artifacts.root.parents[1]
    params = constraints_tiny_params
    changed = build_task({**params, "length_penalty": 0.1}).prepare(cache, progress=False)
    assert calls == []  # pi_ref comes from the stages the first build cached
    assert changed.config_hash != constraints_tiny_artifacts.config_hash
    weights = "model.safetensors"
    assert (changed.model_dir / weights).read_bytes() == (
        constraints_tiny_artifacts.model_dir / weights
    ).read_bytes()
    build_task({**params, "sft_follow_prob": 0.9}).prepare(cache, progress=False)
    assert calls == [params["sft_steps"]]  # SFT again, on the cached base model
    build_task({**params, "pretrain_follow_prob": 0.1}).prepare(cache, progress=False)
    assert calls == [params["sft_steps"], params["pretrain_steps"], params["sft_steps"]]
