"""Built-in synthetic benchmarks whose gold reward is known exactly.

Build (or load) a task and print its build facts:

    python -c "from prefopt.tasks import build_task; \
    print(build_task({'name': 'reviews'}).prepare('.cache/prefopt').info)"
"""

from prefopt.tasks.base import Task, TaskArtifacts
from prefopt.tasks.registry import available_tasks, build_task

__all__ = ["Task", "TaskArtifacts", "available_tasks", "build_task"]
