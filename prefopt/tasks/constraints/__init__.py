"""The constraints task: reviews written to a request of 2-4 constraints, with an exact gold reward."""

from prefopt.tasks.constraints.task import ConstraintsConfig, ConstraintsTask

__all__ = ["ConstraintsConfig", "ConstraintsTask"]
