"""The default reviews config (slow: builds the base model and the SFT pi_ref, 2-3 minutes on one
thread): build time, pi_ref's validity and headroom, the SFT pi_ref scores above the base model,
and the pre-trained reference is the pi_ref the task built before it had an SFT stage."""

import json
import math

import numpy as np
import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from prefopt.models.sampling import sample_responses
from prefopt.tasks import build_task
from prefopt.tasks.reviews.task import BASE_FIELDS
from prefopt.tasks.synthetic import settings_hash

pytestmark = pytest.mark.slow

# sha256 of the files of the default reviews build (seed 0, one torch thread) written by the task
# before it had an SFT stage (version 2, pi_ref the pre-trained model).
DIGESTS_BEFORE_SFT = {
    "model/model.safetensors": "703f99581950fcb41906713057da993ecffb87c8ea834231fb8c3c1d824614a4",
    "pairs/train.jsonl": "d06dc44914a54edc83cfded07a1d92b2a0a26944eb7487b5e40437a83512e1c2",
    "pairs/validation.jsonl": "ee08d3b0f2e01be7e515934bac81130a9f8ed7a52768305f71d5cb5ce3bee81f",
    "pairs/test.jsonl": "748bd7e3ecfdb8917f6a41be0d0274c32fd2a3c77ba10e26e37488d606b413ca",
    "unpaired/train.jsonl": "c29b46da56dc409cd901158f943e155fa5f096283e525d38117bcb3fdb6ff8ba",
    "unpaired/validation.jsonl": "81cadd3c5bacb819051f0d5f67723f3ed32dd1d78de7c303f6520d3a4a95f4aa",
    "unpaired/test.jsonl": "885b987b74ffb3a6a3e4cad7ae36047312ecae03f5df99a3c79cb829cecb0c82",
    "prompts/validation.jsonl": "a818170203508fbe8768762425d0d8aab59887b2a1386d291fad79de6ae0eab6",
    "prompts/test.jsonl": "4287e4b2f07223de157657f46ec8307aaea43ae841a70dc440a64c2e13b02c06",
}


@pytest.fixture(scope="module")
def default_build(preset_params, tmp_path_factory):
    task = build_task(preset_params("reviews"))
    return task, task.prepare(tmp_path_factory.mktemp("cache"), progress=False)


def test_default_build_validity_and_headroom(default_build):
    _, artifacts = default_build
    info = artifacts.info  # its build seconds are reported there, not tested (a busy CPU is slow)
    assert info["reference"] == "sft"
    assert info["pi_ref"]["grammatical"] >= 0.95
    assert info["pi_ref"]["best_of_16_win_rate"] >= 0.75


def _test_samples(artifacts, model_dir, seed):
    """The test prompts and one sample of the model in ``model_dir`` for each."""
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    lines = artifacts.prompt_files["test"].read_text().splitlines()
    prompts = [json.loads(line)["prompt"] for line in lines]
    ids = tokenizer(prompts)["input_ids"]
    return prompts, sample_responses(model, tokenizer, ids, max_new_tokens=48, seed=seed).texts


def test_pi_ref_against_itself_on_test_prompts(default_build):
    task, artifacts = default_build
    rewards = [
        task.gold_reward(*_test_samples(artifacts, artifacts.model_dir, seed=s)) for s in (21, 22)
    ]
    wins = (rewards[0] > rewards[1]) + 0.5 * (rewards[0] == rewards[1])  # (N,)
    half_width = 1.96 * wins.std(ddof=1) / math.sqrt(len(wins))
    assert abs(wins.mean() - 0.5) <= half_width
    assert half_width < 0.05
    grammatical = task.response_metrics(*_test_samples(artifacts, artifacts.model_dir, seed=23))
    assert np.mean(grammatical["grammatical"]) >= 0.95


def test_the_sft_pi_ref_scores_higher_than_the_base_model(default_build):
    task, artifacts = default_build
    base = (
        artifacts.root.parent / "stages" / f"reviews-pretrained-{settings_hash(task, BASE_FIELDS)}"
    )
    rewards = {
        name: task.gold_reward(*_test_samples(artifacts, model_dir, seed=24))
        for name, model_dir in (("sft", artifacts.model_dir), ("base", base))
    }
    gain = rewards["sft"].mean() - rewards["base"].mean()
    se = np.sqrt((rewards["sft"].var() + rewards["base"].var()) / rewards["sft"].size)
    assert gain > 3 * se, (rewards["sft"].mean(), rewards["base"].mean())


def test_the_pretrained_reference_is_the_pi_ref_built_before_sft(
    default_build, preset_params, file_digests
):
    _, artifacts = default_build
    task = build_task({**preset_params("reviews"), "reference": "pretrained"})
    built = task.prepare(artifacts.root.parents[1], progress=False)  # the cached base model
    assert built.info["reference"] == "pretrained"
    assert file_digests(built) == DIGESTS_BEFORE_SFT
