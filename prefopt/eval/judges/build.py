"""``build_judge``: a judge from its config (conf/judge/*.yaml)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path

from prefopt.eval.judges.base import Judge
from prefopt.eval.judges.gold import GoldJudge
from prefopt.eval.judges.llm_pairwise import PairwiseLLMJudge
from prefopt.eval.judges.proxy import ProxyRewardJudge
from prefopt.eval.judges.reward_model import RewardModelJudge

JUDGE_KINDS = ("gold", "reward_model", "llm_pairwise", "proxy")


def build_judge(
    judge_cfg: Mapping,
    task=None,
    cache_dir: str | Path | None = None,
    train_pairs: Sequence[Mapping[str, str]] | None = None,
    device: str = "cpu",
    *,
    heldout_pairs: Sequence[Mapping] | None = None,
) -> Judge:
    """Build the judge that ``judge_cfg.kind`` names; the other keys are its settings.

    gold needs ``task``; proxy needs ``train_pairs`` and ``cache_dir``, and starts from
    ``name_or_path`` or, when that is null, from the task's reference model directory. The proxy
    reports its accuracy on ``heldout_pairs`` (see :class:`ProxyRewardJudge`); other kinds, which
    train nothing, ignore them.
    """
    settings = {str(k): v for k, v in dict(judge_cfg).items()}
    kind = settings.pop("kind", None)
    if kind not in JUDGE_KINDS:
        raise ValueError(f"judge kind must be one of {JUDGE_KINDS}, got {kind!r}")
    if kind == "gold":
        if task is None:
            raise ValueError("the gold judge needs the built-in task; none was given")
        _check_settings(GoldJudge, settings, kind)
        return GoldJudge(task)
    if kind == "reward_model":
        _check_settings(RewardModelJudge, settings, kind)
        return RewardModelJudge(device=device, **settings)
    if kind == "llm_pairwise":
        _check_settings(PairwiseLLMJudge, settings, kind)
        return PairwiseLLMJudge(device=device, **settings)
    model_dir = settings.pop("name_or_path", None)
    if model_dir is None:
        if task is None or cache_dir is None:
            raise ValueError(
                "the proxy judge needs name_or_path, or a task and cache_dir for pi_ref's"
            )
        model_dir = task.prepare(cache_dir).model_dir
    if cache_dir is None:
        raise ValueError("the proxy judge needs a cache_dir to keep its trained model in")
    _check_settings(ProxyRewardJudge, settings, kind)
    return ProxyRewardJudge(
        model_dir,
        list(train_pairs or []),
        cache_dir,
        heldout_pairs=heldout_pairs,
        device=device,
        **settings,
    )


def _check_settings(judge_class: type, settings: Mapping, kind: str) -> None:
    """ValueError naming unknown settings and the valid ones."""
    fixed = {"self", "device", "task", "model_dir", "train_pairs", "heldout_pairs", "cache_dir"}
    valid = sorted(set(inspect.signature(judge_class.__init__).parameters) - fixed)
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        raise ValueError(f"unknown settings {unknown} for judge kind {kind!r}; valid: {valid}")
