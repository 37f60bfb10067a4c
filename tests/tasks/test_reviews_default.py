"""The default reviews config (slow: builds pi_ref, about 1-2 minutes on 2 cores)."""

import json
import math

import numpy as np
import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from prefopt.models.sampling import sample_responses
from prefopt.tasks import build_task

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_build(preset_params, tmp_path_factory):
    task = build_task(preset_params("reviews"))
    return task, task.prepare(tmp_path_factory.mktemp("cache"), progress=False)


def test_default_build_time_and_grammaticality(default_build):
    _, artifacts = default_build
    assert artifacts.info["seconds"] < 180
    assert artifacts.info["pi_ref"]["grammatical"] >= 0.95


def test_pi_ref_against_itself_on_test_prompts(default_build):
    task, artifacts = default_build
    model = AutoModelForCausalLM.from_pretrained(artifacts.model_dir)
    tokenizer = AutoTokenizer.from_pretrained(artifacts.model_dir)
    lines = artifacts.prompt_files["test"].read_text().splitlines()
    prompts = [json.loads(line)["prompt"] for line in lines]
    ids = tokenizer(prompts)["input_ids"]
    rewards = [
        task.gold_reward(
            prompts, sample_responses(model, tokenizer, ids, max_new_tokens=48, seed=s).texts
        )
        for s in (21, 22)
    ]
    wins = (rewards[0] > rewards[1]) + 0.5 * (rewards[0] == rewards[1])  # (N,)
    half_width = 1.96 * wins.std(ddof=1) / math.sqrt(len(wins))
    assert abs(wins.mean() - 0.5) <= half_width
    assert half_width < 0.05
    grammatical = task.response_metrics(
        prompts, sample_responses(model, tokenizer, ids, max_new_tokens=48, seed=23).texts
    )["grammatical"]
    assert np.mean(grammatical) >= 0.95
