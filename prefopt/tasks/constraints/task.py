"""The ``constraints`` task: reviews written to a request of 2-4 constraints, with an exact gold reward.

Build (``Task.prepare``): split the requests (``prompts.py``) by combination, so that no held-out
prompt asks for a combination of constraints a train prompt asks for; pre-train a small GPT-2 on
the generator's (``generator.py``) responses to the train prompts, following each constraint with
probability ``pretrain_follow_prob`` (the base model, a stage keyed by ``BASE_FIELDS``); fine-tune
it on demonstrations that follow each constraint with probability ``sft_follow_prob`` (the SFT
model, a stage keyed by ``BASE_FIELDS + SFT_FIELDS``). pi_ref is the SFT model, or the base model
with ``reference: pretrained``. Then sample pairs of pi_ref responses per split, label them by
Bradley-Terry on the gold reward (``reward.py``), and write pairs, unpaired completions and
held-out prompts (the stages, the sampling and the files are ``SyntheticTask``'s, in
``synthetic.py``). The build facts add, on pi_ref's train samples, how often each kind of
constraint is met and the share of the reward's variance its cliff values explain
(``cliff_variance_share``), and on validation prompts how often the best of 16 pi_ref samples
beats one (``best_of_16_win_rate``, ``headroom.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prefopt.tasks.constraints.generator import sample_response
from prefopt.tasks.constraints.prompts import Request, all_requests, parse_prompt, prompt_words
from prefopt.tasks.constraints.reward import ConstraintReward
from prefopt.tasks.reviews.lexicon import response_words
from prefopt.tasks.synthetic import SyntheticTask
from prefopt.tasks.synthetic_config import SyntheticConfig

# The settings the base model depends on (its cache key); the others shape SFT or the data only.
BASE_FIELDS = (
    "seed",
    "torch_threads",
    "n_validation_prompts",
    "n_test_prompts",
    "max_clauses",
    "clause_decay",
    "pretrain_follow_prob",
    "n_layer",
    "n_embd",
    "n_head",
    "max_new_tokens",
    "pretrain_steps",
    "pretrain_batch_size",
    "pretrain_lr",
)
SFT_FIELDS = ("sft_follow_prob", "sft_steps", "sft_batch_size", "sft_lr")  # and BASE_FIELDS
SAMPLE_METRICS = ("constraints_met", "tone_met", "mentions_met", "avoid_met", "length_error")


@dataclass(frozen=True)
class ConstraintsConfig(SyntheticConfig):
    # language of the generated responses
    max_clauses: int = 6
    clause_decay: float = 0.8
    # gold reward (reward.py): the reward's own defaults
    length_penalty: float = ConstraintReward.length_penalty
    unfinished_reward: float = ConstraintReward.unfinished_reward
    ungrammatical_reward: float = ConstraintReward.ungrammatical_reward
    # the base model's corpus, and the SFT stage's defaults that differ from SyntheticConfig's
    pretrain_follow_prob: float = 0.0
    sft_steps: int = 300
    sft_lr: float = 1e-2


class ConstraintsTask(SyntheticTask):
    name = "constraints"
    Config = ConstraintsConfig
    version = 2
    Reward = ConstraintReward
    base_fields = BASE_FIELDS
    sft_fields = SFT_FIELDS

    def __init__(self, config: ConstraintsConfig):
        super().__init__(config)
        n_held_out = config.n_validation_prompts + config.n_test_prompts
        if not self.split_prompts()["train"]:
            raise ValueError(
                f"n_validation_prompts + n_test_prompts = {n_held_out} leaves no train prompts "
                f"(there are {len(all_requests())})"
            )

    def split_prompts(self) -> dict[str, list[str]]:
        """Prompts split by combination: the combinations, in a seeded order, fill validation, then
        test, with all their prompts (the last one's prompts beyond the split's size are left out);
        the other combinations are train. Held-out prompts are then shuffled."""
        cfg = self.config
        by_combination: dict[tuple, list[Request]] = {}
        for request in all_requests():
            by_combination.setdefault(request.combination, []).append(request)
        groups = list(by_combination.values())
        rng = np.random.default_rng(cfg.seed)
        order = rng.permutation(len(groups))
        sizes = {"validation": cfg.n_validation_prompts, "test": cfg.n_test_prompts}
        splits: dict[str, list[str]] = {"validation": [], "test": [], "train": []}
        for index in order:
            prompts = [q.prompt() for q in groups[index]]
            split = next((s for s, n in sizes.items() if len(splits[s]) < n), "train")
            if split != "train":
                prompts = prompts[: sizes[split] - len(splits[split])]
            splits[split] += prompts
        for split in sizes:
            splits[split] = [splits[split][i] for i in rng.permutation(len(splits[split]))]
        return splits

    def prompt_facts(self, splits: dict[str, list[str]]) -> dict:
        return {
            **super().prompt_facts(splits),
            "n_combinations": {
                s: len({parse_prompt(p).combination for p in prompts})
                for s, prompts in splits.items()
            },
        }

    def vocabulary(self, train_prompts: list[str]) -> tuple[list[str], int]:
        words = list(dict.fromkeys([*prompt_words(), *response_words()]))
        return words, max(len(p.split()) for p in train_prompts)

    def response(self, rng: np.random.Generator, prompt: str, stage: str) -> str:
        """The generator's response, each constraint followed with ``pretrain_follow_prob`` (the
        base model's corpus) or ``sft_follow_prob`` (the demonstrations)."""
        cfg = self.config
        follow_prob = cfg.pretrain_follow_prob if stage == "pretrained" else cfg.sft_follow_prob
        return sample_response(
            rng,
            parse_prompt(prompt),
            follow_prob=follow_prob,
            max_clauses=cfg.max_clauses,
            clause_decay=cfg.clause_decay,
        )

    def sample_means(self, metrics: dict[str, np.ndarray]) -> dict[str, float]:
        """Mean words and how often each kind of constraint is met."""
        means = {k: float(np.nanmean(metrics[k])) for k in SAMPLE_METRICS}
        return {"mean_words": float(np.nanmean(metrics["n_words"])), **means}
