"""conf/eval and conf/judge: every key commented, and every file builds what it describes."""

from pathlib import Path

import pytest
from conftest import PROMPTS, StandInTask, load_model
from omegaconf import OmegaConf

from prefopt.eval import (
    Evaluator,
    GoldJudge,
    PairwiseLLMJudge,
    ProxyRewardJudge,
    RewardModelJudge,
    build_judge,
)

CONF = Path(__file__).resolve().parents[2] / "conf"
FILES = sorted((CONF / "eval").glob("*.yaml")) + sorted((CONF / "judge").glob("*.yaml"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_key_has_a_comment(path):
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert " # " in line, f"{path.name}: no comment on {line!r}"


def test_judge_configs_build(model_dir, classifier_dir, tmp_path):
    def load(name, **overrides):
        cfg = OmegaConf.load(CONF / "judge" / f"{name}.yaml")
        return OmegaConf.to_container(OmegaConf.merge(cfg, overrides), resolve=True)

    assert isinstance(build_judge(load("task_gold"), task=StandInTask()), GoldJudge)
    judge = build_judge(load("reward_model", name_or_path=str(classifier_dir)))
    assert isinstance(judge, RewardModelJudge)
    # the default answer tokens " A" / " B" are one token for this word-level tokenizer too
    judge = build_judge(load("llm_pairwise", name_or_path=str(model_dir)))
    assert isinstance(judge, PairwiseLLMJudge)
    pairs = [{"prompt": p, "chosen": "good", "rejected": "bad"} for p in PROMPTS[:8]]
    task = StandInTask(model_dir, tmp_path / "task")
    judge = build_judge(load("proxy", epochs=1), task=task, cache_dir=tmp_path, train_pairs=pairs)
    assert isinstance(judge, ProxyRewardJudge)


def test_eval_config_builds_an_evaluator(model_dir, tokenizer, tmp_path):
    eval_cfg = OmegaConf.load(CONF / "eval" / "default.yaml")
    evaluator = Evaluator(
        eval_cfg, GoldJudge(StandInTask()), tokenizer, load_model(model_dir),
        {"validation": PROMPTS, "test": PROMPTS}, tmp_path, "pi_ref",
    )  # fmt: skip
    assert evaluator.settings.samples_the_model
    limit = eval_cfg.num_prompts or len(PROMPTS)
    assert len(evaluator.prompts["validation"]) == min(len(PROMPTS), limit)
    validation, test = (evaluator.samples_per_prompt[split] for split in ("validation", "test"))
    assert validation.policy == eval_cfg.policy_samples_per_prompt
    assert validation.reference == eval_cfg.reference_samples_per_prompt
    assert test.policy == (eval_cfg.test_policy_samples_per_prompt or validation.policy)
    assert test.reference == (eval_cfg.test_reference_samples_per_prompt or validation.reference)
    # the floor for a gold judge on test: 8 policy samples against 64 of pi_ref's
    assert test.policy >= 8 and test.reference >= 64
