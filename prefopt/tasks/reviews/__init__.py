"""The reviews task: a toy English of short reviews with an exact gold reward."""

from prefopt.tasks.reviews.task import ReviewsConfig, ReviewsTask

__all__ = ["ReviewsConfig", "ReviewsTask"]
