"""Task names to task classes, and building a task from its config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from prefopt.tasks.base import Task
from prefopt.tasks.reviews import ReviewsTask

_TASKS: dict[str, type[Task]] = {cls.name: cls for cls in (ReviewsTask,)}


def available_tasks() -> list[str]:
    """Names accepted by ``build_task``."""
    return sorted(_TASKS)


def build_task(task_cfg: Mapping[str, Any]) -> Task:
    """Task from a mapping (dict or OmegaConf DictConfig) with ``name`` and its parameters."""
    params = _to_dict(task_cfg)
    name = params.pop("name", None)
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}; valid: {available_tasks()}")
    return _TASKS[name].from_params(params)


def _to_dict(task_cfg: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(task_cfg, DictConfig):
        return dict(OmegaConf.to_container(task_cfg, resolve=True))
    return dict(task_cfg)
