"""Judges: one module each, behind the :class:`Judge` interface."""

from prefopt.eval.judges.base import Judge, check_preferences, check_scores
from prefopt.eval.judges.build import JUDGE_KINDS, build_judge
from prefopt.eval.judges.gold import GoldJudge
from prefopt.eval.judges.llm_pairwise import PairwiseLLMJudge
from prefopt.eval.judges.proxy import ProxyRewardJudge
from prefopt.eval.judges.reward_model import RewardModelJudge

__all__ = [
    "JUDGE_KINDS",
    "GoldJudge",
    "Judge",
    "PairwiseLLMJudge",
    "ProxyRewardJudge",
    "RewardModelJudge",
    "build_judge",
    "check_preferences",
    "check_scores",
]
