"""The ``reviews`` task: short reviews of films, hotels and restaurants with an exact gold reward.

Build (``Task.prepare``): split the 1,200 prompts into train/validation/test; pre-train a small
GPT-2 on the base generator's reviews of the train prompts (the base model, a stage keyed by
``BASE_FIELDS``); fine-tune it on demonstrations that meet each property the gold reward asks for
(the target sentiment, ``target_clauses`` clauses, distinct aspects) with probability
``sft_follow_prob`` (the SFT model, a stage keyed by ``BASE_FIELDS + SFT_FIELDS``; both corpora in
``generator.py``). pi_ref is the SFT model, or the base model with ``reference: pretrained``. Then
sample pairs of pi_ref responses per split, label them by Bradley-Terry on the gold reward
(``reward.py``), and write pairs, unpaired completions and held-out prompts (the stages, the
sampling and the files are ``SyntheticTask``'s, in ``synthetic.py``). The build facts add, on
pi_ref's train samples, how often a complete review meets each property and the share of the
reward's variance its cliff values explain, and on validation prompts how often the best of 16
pi_ref samples beats one (``best_of_16_win_rate``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prefopt.tasks.reviews.generator import all_prompts, sample_demonstration, sample_review
from prefopt.tasks.reviews.lexicon import all_words
from prefopt.tasks.reviews.parser import parse_prompt
from prefopt.tasks.reviews.reward import TARGET_SIGNS, GoldReward
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
    "repeat_prob",
    "n_layer",
    "n_embd",
    "n_head",
    "max_new_tokens",
    "pretrain_steps",
    "pretrain_batch_size",
    "pretrain_lr",
)
# The settings the SFT model adds (the demonstrations meet the gold reward's targets).
SFT_FIELDS = (
    "target_sentiment",
    "target_clauses",
    "sft_follow_prob",
    "sft_steps",
    "sft_batch_size",
    "sft_lr",
)
PROMPT_TOKENS = 16  # room for a prompt in pi_ref's positions (a prompt has 7 words)


@dataclass(frozen=True)
class ReviewsConfig(SyntheticConfig):
    # language of the generated reviews (generator.py)
    max_clauses: int = 6
    clause_decay: float = 0.5
    repeat_prob: float = 0.1
    # gold reward (reward.py): the reward's own defaults
    target_sentiment: str = GoldReward.target_sentiment
    target_clauses: int = GoldReward.target_clauses
    elaboration_bonus: float = GoldReward.elaboration_bonus
    rambling_penalty: float = GoldReward.rambling_penalty
    repetition_penalty: float = GoldReward.repetition_penalty
    max_words: int = GoldReward.max_words
    runaway_penalty: float = GoldReward.runaway_penalty
    unfinished_reward: float = GoldReward.unfinished_reward
    ungrammatical_reward: float = GoldReward.ungrammatical_reward


class ReviewsTask(SyntheticTask):
    name = "reviews"
    Config = ReviewsConfig
    version = 3
    Reward = GoldReward
    base_fields = BASE_FIELDS
    sft_fields = SFT_FIELDS

    def __init__(self, config: ReviewsConfig):
        super().__init__(config)
        n_prompts = len(all_prompts())
        n_held_out = config.n_validation_prompts + config.n_test_prompts
        if n_held_out >= n_prompts:
            raise ValueError(
                f"n_validation_prompts + n_test_prompts = {n_held_out} leaves no train prompts "
                f"(there are {n_prompts})"
            )

    def split_prompts(self) -> dict[str, list[str]]:
        """Disjoint prompt splits, a seeded permutation of every prompt."""
        cfg = self.config
        prompts = all_prompts()
        order = np.random.default_rng(cfg.seed).permutation(len(prompts))
        shuffled = [prompts[i] for i in order]
        n_val, n_test = cfg.n_validation_prompts, cfg.n_test_prompts
        return {
            "validation": shuffled[:n_val],
            "test": shuffled[n_val : n_val + n_test],
            "train": shuffled[n_val + n_test :],
        }

    def vocabulary(self, train_prompts: list[str]) -> tuple[list[str], int]:
        return all_words(), PROMPT_TOKENS

    def response(self, rng: np.random.Generator, prompt: str, stage: str) -> str:
        """A review of the prompt's domain: the base generator's (the base model's corpus) or a
        demonstration (SFT)."""
        cfg = self.config
        language = {
            "max_clauses": cfg.max_clauses,
            "decay": cfg.clause_decay,
            "repeat_prob": cfg.repeat_prob,
        }
        if stage == "pretrained":
            return sample_review(rng, parse_prompt(prompt), **language)
        return sample_demonstration(
            rng,
            parse_prompt(prompt),
            target_sentiment=cfg.target_sentiment,
            target_clauses=cfg.target_clauses,
            follow_prob=cfg.sft_follow_prob,
            **language,
        )

    def sample_means(self, metrics: dict[str, np.ndarray]) -> dict[str, float]:
        """Mean clauses, and among complete reviews how often each property is met: the mean
        sentiment has the target's sign, ``target_clauses`` clauses, no aspect repeated."""
        complete = metrics["grammatical"]  # (N,)
        sign = TARGET_SIGNS[self.config.target_sentiment]
        met = {
            "sentiment_met": np.sign(metrics["sentiment"][complete]) == sign,
            "clauses_met": metrics["n_clauses"][complete] == self.config.target_clauses,
            "distinct_met": metrics["repeats"][complete] == 0,
        }
        return {
            "mean_clauses": float(metrics["n_clauses"].mean()),
            **{k: float(v.mean()) if v.size else float("nan") for k, v in met.items()},
        }
