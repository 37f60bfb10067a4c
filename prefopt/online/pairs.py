"""Online DPO's batches: pairs of the current policy's samples, labelled by a reward.

Each step draws ``trainer.batch_size`` training prompts and samples two responses to each from the
policy being trained (temperature 1), scores both with the reward judge (the gold reward, or a
reward model trained on the run's pairs) and labels the pair by Bradley-Terry at the label
temperature T, as the built-in tasks label their offline pairs:

    P(a preferred to b) = sigmoid((s_a - s_b) / T),  T = 0: the higher score is preferred.

Pairs whose two responses score the same are skipped (no preference to learn), and their prompts
are replaced by fresh draws for up to ``max_redraws`` rounds, so that a step trains on as many pairs
as it can up to the batch size. Any registered paired loss trains on them (``loss=...``), with
pi_ref the run's fixed reference (TR-DPO's ``trainer.reference_sync_every`` moves it).
"""

from __future__ import annotations

import torch

from prefopt.models.sampling import sample_responses
from prefopt.online.draws import DrawnSource, PromptDraws
from prefopt.online.settings import OnlinePairsSettings
from prefopt.trainer.batching import GlobalBatch, collate_fresh
from prefopt.trainer.items import TrainItem


def bradley_terry_labels(
    scores: torch.Tensor, uniforms: torch.Tensor, temperature: float
) -> torch.Tensor:
    """+1 where the first response of a pair is preferred, -1 where the second is, 0 for a tie.

    scores (n, 2) float64: each pair's two scores; uniforms (n,) in [0, 1).
    """
    gap = scores[:, 0] - scores[:, 1]  # (n,)
    # (n,): the first response preferred
    first = gap > 0 if temperature == 0 else uniforms < torch.sigmoid(gap / temperature)
    labels = torch.where(first, 1, -1)  # (n,)
    return torch.where(gap == 0, 0, labels)  # (n,)


class OnlinePairs(DrawnSource):
    """The batch source of online DPO (module docstring); ``judge`` scores (prompts, texts)."""

    def __init__(self, draws: PromptDraws, tokenizer, judge, settings: OnlinePairsSettings):
        self.draws, self.tokenizer, self.judge, self.settings = draws, tokenizer, judge, settings
        self.size = len(draws.prompts)  # an epoch: as many pairs as there are training prompts

    def batch(self, step: int, policy: torch.nn.Module) -> GlobalBatch:
        items: list[TrainItem] = []
        for _ in range(1 + self.settings.max_redraws):
            items += self._labelled_pairs(self.draws.draw(self.draws.per_step - len(items)), policy)
            if len(items) == self.draws.per_step:
                break
        if not items:
            raise RuntimeError(
                f"step {step}: every pair of the policy's samples scored a tie in "
                f"{1 + self.settings.max_redraws} rounds; there is nothing to label"
            )
        return GlobalBatch(items, list(range(len(items))), collate_fresh)

    def _labelled_pairs(self, rows: list[int], policy: torch.nn.Module) -> list[TrainItem]:
        """Two samples for each prompt in ``rows``, scored and labelled; ties left out."""
        twice = [i for i in rows for _ in range(2)]
        drawn = sample_responses(
            policy,
            self.tokenizer,
            [self.draws.prompt_ids[i] for i in twice],
            max_new_tokens=self.settings.max_new_tokens,
            seed=self.draws.seed(),
        )
        self.draws.spent(drawn.response_ids)
        prompts = [self.draws.prompts[i] for i in twice]
        scores = torch.as_tensor(self.judge.score(prompts, drawn.texts), dtype=torch.float64)
        labels = bradley_terry_labels(
            scores.view(-1, 2), self.draws.uniform(len(rows)), self.settings.label_temperature
        )
        items = []
        for k, i in enumerate(rows):
            if labels[k] == 0:
                continue
            first, second = drawn.response_ids[2 * k], drawn.response_ids[2 * k + 1]
            chosen, rejected = (first, second) if labels[k] > 0 else (second, first)
            gap = float(scores[2 * k] - scores[2 * k + 1]) * int(labels[k])
            items.append(
                TrainItem(self.draws.prompt_ids[i], chosen, rejected, meta={"score_gap": gap})
            )
        return items
