"""``build_evaluator``: the task, judges and evaluator of a run, from its resolved config.

The trainer and ``python -m prefopt.evaluate`` both call it, so a saved checkpoint is evaluated
exactly as it was during training.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch

from prefopt.config_values import TASK_SENTINEL, plain_dict
from prefopt.data.control_tokens import control_token_ids
from prefopt.data.settings import DataSettings
from prefopt.eval.evaluator import Evaluator
from prefopt.eval.judges import build_judge
from prefopt.eval.settings import EvalSettings


def build_evaluator(
    cfg: Mapping,
    tokenizer,
    reference_model: torch.nn.Module,
    baseline_fingerprint: str,
    prompts: Mapping[str, Sequence[str]],
    train_pairs: Sequence[Mapping[str, str]] | None = None,
    *,
    task=None,
    device: str = "cpu",
    encode_prompt: Callable[[str], list[int]] | None = None,
) -> Evaluator:
    """Judge ``cfg.judge`` (plus a proxy reward model when ``cfg.eval.proxy``) and the evaluator.

    ``task``: the built task when the caller has it; otherwise built from ``cfg.task`` when set.
    ``train_pairs`` ({"prompt", "chosen", "rejected"} strings) train the proxy reward model.
    ``encode_prompt`` defaults to :func:`prompt_encoder` (the data settings' BOS and truncation).
    A loss with control tokens (``cfg.loss``) has the policy generate after its chosen token.
    """
    judge_cfg = plain_dict(cfg["judge"], "judge")
    eval_cfg = plain_dict(cfg["eval"], "eval")
    cache_dir = Path(str(cfg["cache_dir"])).expanduser()
    if task is None and cfg.get("task"):
        from prefopt.tasks import build_task

        task = build_task(cfg["task"])
    judge = build_judge(judge_cfg, task, cache_dir, train_pairs, device=device)
    proxy_judge = None
    if EvalSettings.from_config(eval_cfg).proxy:
        model_path = str(cfg["model"]["name_or_path"])
        proxy_cfg = {
            "kind": "proxy",
            "name_or_path": None if model_path == TASK_SENTINEL else model_path,
        }
        proxy_judge = build_judge(proxy_cfg, task, cache_dir, train_pairs, device=device)
    if encode_prompt is None:
        encode_prompt = prompt_encoder(tokenizer, cfg["data"])
    return Evaluator(
        eval_cfg,
        judge,
        tokenizer,
        reference_model,
        prompts,
        cache_dir,
        baseline_fingerprint,
        proxy_judge=proxy_judge,
        device=device,
        encode_prompt=encode_prompt,
        control_ids=control_ids(cfg.get("loss"), tokenizer),
    )


def control_ids(loss_cfg: Mapping | None, tokenizer) -> list[int]:
    """The (good, bad) control token ids of a conditioned loss (csft); none for another loss."""
    if not loss_cfg:
        return []
    from prefopt.losses import build_loss_from_config

    control = build_loss_from_config(loss_cfg).control_tokens
    return control_token_ids(tokenizer, control) if control else []


def prompt_encoder(tokenizer, data_cfg: Mapping) -> Callable[[str], list[int]]:
    """Prompt text -> ids as the data pipeline encodes training prompts: no special tokens, BOS
    first when ``data.add_bos`` (once), and only the last ``data.max_prompt_length`` tokens."""
    data = DataSettings.from_cfg(data_cfg)
    add_bos = data.add_bos and tokenizer.bos_token_id is not None
    limit = data.max_prompt_length

    def encode(text: str) -> list[int]:
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        if add_bos and ids[:1] != [tokenizer.bos_token_id]:
            ids = [tokenizer.bos_token_id] + ids
        if limit is not None and len(ids) > int(limit):
            head = ids[:1] if add_bos else []
            ids = head + ids[len(ids) - int(limit) + len(head) :]
        return ids

    return encode
