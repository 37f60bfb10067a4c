"""The default constraints config against the default reviews config (slow: builds both pi_refs,
about 5 minutes on 2 cores): no cliff dominates its reward, its SFT pi_ref follows requests better
than the base model, and its length preference differs from the reviews task's."""

import json
import math

import numpy as np
import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from prefopt.models.sampling import sample_responses
from prefopt.tasks import build_task
from prefopt.tasks.cliffs import cliff_variance_share
from prefopt.tasks.constraints.task import BASE_FIELDS
from prefopt.tasks.synthetic import settings_hash

pytestmark = pytest.mark.slow

MAX_CLIFF_SHARE = 0.2  # cliff values explain less than this share of the reward's variance


@pytest.fixture(scope="module")
def default_builds(preset_params, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    builds = {}
    for name in ("constraints", "reviews"):
        task = build_task(preset_params(name))
        builds[name] = task, task.prepare(cache, progress=False)
    return builds


def test_build_time_validity_cliff_share_and_headroom(default_builds):
    _, artifacts = default_builds["constraints"]
    assert artifacts.info["seconds"] < 480
    assert artifacts.info["pi_ref"]["grammatical"] >= 0.95
    assert artifacts.info["pi_ref"]["cliff_variance_share"] < MAX_CLIFF_SHARE
    assert artifacts.info["pi_ref"]["best_of_16_win_rate"] >= 0.75  # headroom above pi_ref


def _test_samples(task, artifacts, model_dir, seed):
    """Samples of the model in ``model_dir`` for each test prompt, twice; their metrics, rewards."""
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    lines = artifacts.prompt_files["test"].read_text().splitlines()
    prompts = [json.loads(line)["prompt"] for line in lines] * 2
    texts = sample_responses(
        model, tokenizer, tokenizer(prompts)["input_ids"], max_new_tokens=48, seed=seed
    ).texts
    return task.response_metrics(prompts, texts), task.gold_reward(prompts, texts)


def test_cliff_share_on_fresh_samples_for_test_prompts(default_builds):
    task, artifacts = default_builds["constraints"]
    metrics, rewards = _test_samples(task, artifacts, artifacts.model_dir, seed=31)
    outcomes = np.where(
        metrics["grammatical"], "complete", np.where(metrics["unfinished"], "unfinished", "bad")
    )
    assert cliff_variance_share(rewards, outcomes) < MAX_CLIFF_SHARE
    assert np.nanmean(metrics["constraints_met"]) < 0.8  # headroom: pi_ref is far from optimal


def test_the_sft_pi_ref_scores_higher_than_the_base_model(default_builds):
    task, artifacts = default_builds["constraints"]
    stages = artifacts.root.parent / "stages"
    base = stages / f"constraints-pretrained-{settings_hash(task, BASE_FIELDS)}"
    rewards = {}
    for name, model_dir in (("sft", artifacts.model_dir), ("base", base)):
        _, rewards[name] = _test_samples(task, artifacts, model_dir, seed=32)
    gain = rewards["sft"].mean() - rewards["base"].mean()
    se = np.sqrt((rewards["sft"].var() + rewards["base"].var()) / rewards["sft"].size)
    assert gain > 3 * se, (rewards["sft"].mean(), rewards["base"].mean())


def test_the_chosen_response_is_longer_less_often_than_on_reviews(default_builds):
    """Two-proportion z-test on the train pairs' chosen-longer shares (pairs of unequal length)."""
    shares, sizes = {}, {}
    for name, (_, artifacts) in default_builds.items():
        lines = artifacts.data_files["train"].read_text().splitlines()
        pairs = [json.loads(line) for line in lines]
        diff = np.array([len(p["chosen"].split()) - len(p["rejected"].split()) for p in pairs])
        shares[name], sizes[name] = np.mean(diff[diff != 0] > 0), np.sum(diff != 0)
        assert shares[name] == pytest.approx(artifacts.info["splits"]["train"]["chosen_longer"])
    assert shares["constraints"] < 0.5 < shares["reviews"]
    n_c, n_r = sizes["constraints"], sizes["reviews"]
    pooled = (shares["constraints"] * n_c + shares["reviews"] * n_r) / (n_c + n_r)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_r))
    assert abs(shares["constraints"] - shares["reviews"]) > 3 * se
