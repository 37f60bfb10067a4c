"""From a resolved config to the pieces of a run: task, model, data, reference, evaluator.

Everything that can be checked from the config alone is checked first (:func:`check_config`), so a bad
loss name, a hyperparameter that does not belong to the loss, a too-small KTO batch or a reference mode
that cannot work with the model stops the run before any model or data is loaded.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from prefopt.config_values import TASK_SENTINEL
from prefopt.data import check_lengths_fit_context
from prefopt.errors import ConfigError
from prefopt.eval.settings import EvalSettings
from prefopt.losses import PreferenceLoss, build_loss_from_config
from prefopt.models.loading import check_model_source, model_context_length
from prefopt.online.settings import check_online
from prefopt.trainer.settings import TrainerSettings

log = logging.getLogger(__name__)


def check_config(cfg: DictConfig) -> PreferenceLoss:
    """Validate what needs no model or data; returns the built loss.

    Every key of the trainer and eval groups is checked for its type, range and choices, and the
    batch for an even split over the processes of a distributed launch (``WORLD_SIZE``).
    """
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    trainer = TrainerSettings.from_config(cfg.trainer, processes=processes)
    EvalSettings.from_config(cfg.eval)
    loss_fn = build_loss_from_config(cfg.loss)
    if trainer.reference == "lora_disabled" and cfg.model.get("reference_name_or_path"):
        raise ConfigError(
            "trainer.reference=lora_disabled makes the policy's own base model the reference; "
            "it cannot use a different model.reference_name_or_path"
        )
    if trainer.reference == "lora_disabled" and not cfg.model.lora.enabled:
        raise ConfigError(
            "trainer.reference=lora_disabled needs model.lora.enabled=true "
            "(the reference is the base model with the LoRA adapter switched off)"
        )
    if trainer.reference_sync_every and trainer.reference != "frozen_copy":
        raise ConfigError(
            f"trainer.reference_sync_every={trainer.reference_sync_every} moves pi_ref during "
            f"training (TR-DPO), which trainer.reference={trainer.reference} cannot: "
            + (
                "its log-probs come from a table computed once"
                if trainer.reference == "cached"
                else "its pi_ref is the policy's own base, which evaluation also scores against"
            )
            + "; use trainer.reference=frozen_copy"
        )
    if trainer.reference_sync_every and not loss_fn.requires_reference:
        raise ConfigError(
            f"trainer.reference_sync_every={trainer.reference_sync_every}: loss "
            f"{loss_fn.name!r} reads no reference, so there is nothing to move; set it to 0"
        )
    micro = trainer.micro_batch_size_for(processes)
    if micro < loss_fn.min_batch_size:
        raise ConfigError(
            f"loss {loss_fn.name!r} needs at least {loss_fn.min_batch_size} examples per "
            f"micro-batch; trainer.batch_size={trainer.batch_size} and trainer.micro_batch_size="
            f"{trainer.micro_batch_size} give {micro} on each of {processes} process(es)"
        )
    if loss_fn.whole_batch and (processes > 1 or micro != trainer.batch_size):
        raise ConfigError(
            f"loss {loss_fn.name!r} compares the examples of a batch with each other, so a batch "
            f"must go through one forward on one process; trainer.batch_size="
            f"{trainer.batch_size} and trainer.micro_batch_size={trainer.micro_batch_size} give "
            f"{micro} on each of {processes} process(es): set trainer.micro_batch_size=null "
            "and run on one process"
        )
    check_online(cfg, loss_fn)
    if trainer.precision == "fp16" and not torch.cuda.is_available():
        raise ConfigError("trainer.precision=fp16 needs a GPU; use bf16 or no on a CPU")
    uses_task_model = TASK_SENTINEL in (
        cfg.model.name_or_path,
        cfg.model.get("reference_name_or_path"),
    )
    if uses_task_model and not cfg.get("task"):
        raise ConfigError('model.name_or_path="@task" needs a task (task=reviews) or model=hf ...')
    if cfg.data.source == TASK_SENTINEL and not cfg.get("task"):
        raise ConfigError('data.source="@task" needs a task (task=reviews) or a real data config')
    if cfg.eval.generate and cfg.judge.kind == "gold" and not cfg.get("task"):
        raise ConfigError(
            "judge.kind=gold scores with the built-in task's gold reward, and there is no task: "
            "choose judge=reward_model, judge=llm_pairwise or judge=proxy (see conf/judge/), or "
            "eval.generate=false for the held-out pair metrics alone"
        )
    return loss_fn


def check_model_sources(cfg: DictConfig) -> None:
    """Refuse, before any data is read, a model the config names that cannot load (a missing
    directory; offline, a hub id not in the local cache), naming its key."""
    for key, source in model_sources(cfg).items():
        check_model_source(source, key, cfg.model.get("revision"))


MODEL_KEYS = (  # config keys that name a model to load
    "model.name_or_path",
    "model.reference_name_or_path",
    "eval.baseline_name_or_path",
    "judge.name_or_path",
)


def model_sources(cfg: DictConfig) -> dict[str, str]:
    """The models the config names (key -> hub id or directory), less unset keys and "@task"."""
    sources = {key: OmegaConf.select(cfg, key) for key in MODEL_KEYS}
    return {k: str(v) for k, v in sources.items() if v is not None and v != TASK_SENTINEL}


def check_context(cfg: DictConfig, resolved: Resolved) -> None:
    """Refuse data (and sampling) lengths beyond the policy's or pi_ref's context, before any data
    is read; reads each model's config only."""
    max_new_tokens = int(cfg.eval.max_new_tokens) if cfg.eval.generate else None
    for path in dict.fromkeys((resolved.model_path, resolved.reference_path)):
        context = model_context_length(
            path, cfg.model.get("revision"), bool(cfg.model.get("trust_remote_code"))
        )
        check_lengths_fit_context(resolved.data_cfg, context, path, max_new_tokens=max_new_tokens)


@dataclass
class Resolved:
    """Paths after resolving the task sentinels."""

    model_path: str  # the policy's starting point
    reference_path: str  # pi_ref: the same model unless model.reference_name_or_path is set
    baseline_path: (
        str  # what win rate and KL are measured against: pi_ref unless eval says otherwise
    )
    data_cfg: dict
    eval_prompts: dict[str, list[str]] | None  # task's held-out prompts; None = from the data


def resolve_task(cfg: DictConfig, cache_dir: Path):
    """Build (or load) the task named by ``cfg.task`` and point model/data at its artifacts."""
    data_cfg = OmegaConf.to_container(cfg.data, resolve=True)
    model_path = str(cfg.model.name_or_path)
    prompts = None
    task = None
    if cfg.get("task"):
        from prefopt.tasks import build_task

        task = build_task(cfg.task)
        artifacts = task.prepare(Path(cache_dir).expanduser().resolve())  # absolute artifact paths
        if model_path == TASK_SENTINEL:
            model_path = str(artifacts.model_dir)
        if data_cfg["source"] == TASK_SENTINEL:
            unpaired = data_cfg.get("format") == "unpaired"
            files = artifacts.unpaired_files if unpaired else artifacts.data_files
            data_cfg["source"] = str(Path(files["train"]).parent)
            data_cfg["splits"] = {split: str(path) for split, path in files.items()}
        prompts = {split: _read_prompts(path) for split, path in artifacts.prompt_files.items()}
    reference_path = str(cfg.model.get("reference_name_or_path") or model_path)
    baseline_path = str(cfg.eval.get("baseline_name_or_path") or reference_path)
    if reference_path == TASK_SENTINEL:
        reference_path = str(artifacts.model_dir)
    if baseline_path == TASK_SENTINEL:
        baseline_path = str(artifacts.model_dir)
    return task, Resolved(model_path, reference_path, baseline_path, data_cfg, prompts)


def _read_prompts(path: Path) -> list[str]:
    import json

    with open(path, encoding="utf-8") as handle:
        return [json.loads(line)["prompt"] for line in handle if line.strip()]


def is_main_process() -> bool:
    """True in a single process and in rank 0 of a distributed launch (torchrun, accelerate)."""
    return int(os.environ.get("RANK", "0")) == 0


def pick_device(name: str) -> torch.device:
    """auto: CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device={name!r}; valid: auto, cpu, cuda")
    return torch.device(name)
