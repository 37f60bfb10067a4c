"""Built-in synthetic benchmarks whose gold reward is known exactly."""

from prefopt.tasks.base import Task, TaskArtifacts
from prefopt.tasks.registry import available_tasks, build_task

__all__ = ["Task", "TaskArtifacts", "available_tasks", "build_task"]
