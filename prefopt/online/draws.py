"""What an online step draws: its prompts and its sampling seed, from a generator checkpoints keep,
and what the drawing has cost so far (the cost side of a comparison with offline methods)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


class PromptDraws:
    """Each step's prompts (``per_step`` of ``prompts``, without replacement) and sampling seed,
    drawn from one seeded generator whose state is the source's checkpointed state (exact resume).
    ``prompt_ids[i]`` is prompt ``i`` encoded as training encodes prompts."""

    def __init__(
        self, prompts: Sequence[str], encode: Callable[[str], list[int]], per_step: int, seed: int
    ):
        if per_step > len(prompts):
            raise ValueError(
                f"{per_step} prompts per draw (trainer.batch_size; online.rollout_prompts for "
                f"PPO) but the training data has only {len(prompts)} distinct prompts"
            )
        self.prompts, self.per_step = list(prompts), per_step
        self.prompt_ids = [encode(text) for text in self.prompts]
        self.generator = torch.Generator().manual_seed(seed)
        self.costs = {"samples_drawn": 0, "tokens_generated": 0, "reward_queries": 0}

    def draw(self, count: int | None = None) -> list[int]:
        """Indices of ``count`` (default ``per_step``) distinct prompts."""
        order = torch.randperm(len(self.prompt_ids), generator=self.generator)
        return order[: count or self.per_step].tolist()

    def uniform(self, count: int) -> torch.Tensor:
        """(count,) uniform draws in [0, 1) (Bradley-Terry labels)."""
        return torch.rand(count, generator=self.generator, dtype=torch.float64)

    def seed(self) -> int:
        """A sampling seed."""
        return int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator))

    def spent(self, response_ids: Sequence[list[int]]) -> None:
        """Count responses sampled and scored once each by the reward judge."""
        self.costs["samples_drawn"] += len(response_ids)
        self.costs["tokens_generated"] += sum(len(r) for r in response_ids)
        self.costs["reward_queries"] += len(response_ids)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "costs": dict(self.costs)}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.costs = dict(state["costs"])


def distinct_prompts(records: Sequence) -> list[str]:
    """The distinct prompts of training records, in first-seen order."""
    return list(dict.fromkeys(record.prompt for record in records))


class DrawnSource:
    """Base of an online batch source whose state is its :class:`PromptDraws` (``self.draws``):
    checkpoints keep the generator and the costs, which the train rows log."""

    draws: PromptDraws

    def metrics(self) -> dict[str, int]:
        """What the run has drawn so far: samples, tokens generated, reward queries."""
        return dict(self.draws.costs)

    def state_dict(self) -> dict:
        return self.draws.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.draws.load_state_dict(state)
