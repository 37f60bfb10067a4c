"""Evaluation: policies sampled on held-out prompts and judged against pi_ref's samples."""

from prefopt.eval.build import build_evaluator
from prefopt.eval.evaluator import Evaluator
from prefopt.eval.judges import (
    JUDGE_KINDS,
    GoldJudge,
    Judge,
    PairwiseLLMJudge,
    ProxyRewardJudge,
    RewardModelJudge,
    build_judge,
)
from prefopt.eval.sampling_cache import SamplingSettings

__all__ = [
    "JUDGE_KINDS",
    "Evaluator",
    "GoldJudge",
    "Judge",
    "PairwiseLLMJudge",
    "ProxyRewardJudge",
    "RewardModelJudge",
    "SamplingSettings",
    "build_evaluator",
    "build_judge",
]
