"""Task names to task classes, and building a task from its config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prefopt.config_values import plain_dict
from prefopt.tasks.base import Task
from prefopt.tasks.constraints import ConstraintsTask
from prefopt.tasks.reviews import ReviewsTask

_TASKS: dict[str, type[Task]] = {cls.name: cls for cls in (ReviewsTask, ConstraintsTask)}


def available_tasks() -> list[str]:
    """Names accepted by ``build_task``."""
    return sorted(_TASKS)


def build_task(task_cfg: Mapping[str, Any]) -> Task:
    """Task from a mapping (dict or OmegaConf DictConfig) with ``name`` and its parameters."""
    params = plain_dict(task_cfg, "a task config")
    name = params.pop("name", None)
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}; valid: {available_tasks()}")
    return _TASKS[name].from_params(params)
