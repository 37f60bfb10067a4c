"""The ``reviews`` task: short reviews of films, hotels and restaurants with an exact gold reward.

Build (``Task.prepare``): split the 1,200 prompts into train/validation/test, pre-train a small
GPT-2 on generated reviews of the train prompts (pi_ref; cached as a stage keyed by
``PI_REF_FIELDS``, so configs that differ only in their data settings share one), sample pairs of
pi_ref responses per split, label them by Bradley-Terry on the gold reward (``reward.py``), and
write pairs, unpaired completions and held-out prompts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prefopt.tasks.base import Task, TaskArtifacts
from prefopt.tasks.pretrain import pretrain
from prefopt.tasks.reviews.generator import all_prompts, sample_review
from prefopt.tasks.reviews.lexicon import all_words
from prefopt.tasks.reviews.parser import parse_prompt
from prefopt.tasks.reviews.reward import GoldReward
from prefopt.tasks.synthetic import (
    cached_model_stage,
    install_model_stage,
    new_pi_ref,
    pretrain_facts,
    sample_split_pairs,
    save_model_stage,
    settings_hash,
    torch_threads,
    write_pair_data,
)

# The settings pi_ref depends on (its cache key); the others only shape the preference data.
PI_REF_FIELDS = (
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


@dataclass(frozen=True)
class ReviewsConfig:
    seed: int = 0
    torch_threads: int = 1
    # language of pi_ref's pre-training corpus
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
    # pi_ref
    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 4
    pretrain_steps: int = 500
    pretrain_batch_size: int = 128
    pretrain_lr: float = 1e-2
    # preference data
    n_validation_prompts: int = 300
    n_test_prompts: int = 500
    n_train_pairs: int = 2000
    n_eval_pairs: int = 300
    label_temperature: float = 0.25
    flip_rate: float = 0.0
    min_reward_gap: float = 0.05
    max_new_tokens: int = 48
    sampling_temperature: float = 1.0
    sampling_batch_size: int = 256


class ReviewsTask(Task):
    name = "reviews"
    Config = ReviewsConfig
    version = 2

    def __init__(self, config: ReviewsConfig):
        super().__init__(config)
        reward_keys = {f.name for f in dataclasses.fields(GoldReward)}
        self.reward = GoldReward(
            **{k: v for k, v in dataclasses.asdict(config).items() if k in reward_keys}
        )
        n_prompts = len(all_prompts())
        n_held_out = config.n_validation_prompts + config.n_test_prompts
        if n_held_out >= n_prompts:
            raise ValueError(
                f"n_validation_prompts + n_test_prompts = {n_held_out} leaves no train prompts "
                f"(there are {n_prompts})"
            )

    def gold_reward(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        return self.reward(prompts, responses)

    def response_metrics(
        self, prompts: Sequence[str], responses: Sequence[str]
    ) -> dict[str, np.ndarray]:
        return self.reward.metrics(prompts, responses)

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

    @property
    def pi_ref_hash(self) -> str:
        """Hash of the settings pi_ref depends on: a data-only change reuses the trained pi_ref."""
        return settings_hash(self, PI_REF_FIELDS)

    def build(self, layout: TaskArtifacts, progress: bool, cache_dir: Path) -> dict:
        cfg = self.config
        with torch_threads(cfg.torch_threads):
            splits = self.split_prompts()
            stage = cached_model_stage(
                cache_dir,
                self,
                "pi_ref",
                PI_REF_FIELDS,
                lambda tmp: self._pretrain(tmp, splits["train"], progress),
            )
            facts, model, tokenizer = install_model_stage(stage, layout.model_dir)
            sampled = sample_split_pairs(model, tokenizer, splits, self.reward, cfg)
        train = sampled["train"]
        metrics = self.reward.metrics(train.all_prompts, train.all_texts)
        pi_ref = {
            "grammatical": float(metrics["grammatical"].mean()),
            "unfinished": float(metrics["unfinished"].mean()),
            "mean_reward": float(train.all_rewards.mean()),
            "mean_clauses": float(metrics["n_clauses"].mean()),
            "n_samples": len(train.all_texts),
        }
        return {
            **facts,
            "n_prompts": {s: len(p) for s, p in splits.items()},
            "pi_ref": pi_ref,
            **write_pair_data(layout, splits, sampled, cfg),
        }

    def _pretrain(self, out: Path, train_prompts: list[str], progress: bool) -> None:
        """pi_ref: a GPT-2 pre-trained on generated reviews of the train prompts, saved in ``out``
        with its tokenizer and the facts of its training."""
        cfg = self.config
        model, tokenizer = new_pi_ref(all_words(), cfg, prompt_tokens=16)
        corpus_rng = np.random.default_rng([cfg.seed, 1])

        def corpus_batch(n: int) -> tuple[list[str], list[str]]:
            batch = [train_prompts[i] for i in corpus_rng.integers(len(train_prompts), size=n)]
            reviews = [
                sample_review(
                    corpus_rng,
                    parse_prompt(p),
                    max_clauses=cfg.max_clauses,
                    decay=cfg.clause_decay,
                    repeat_prob=cfg.repeat_prob,
                )
                for p in batch
            ]
            return batch, reviews

        losses = pretrain(
            model,
            tokenizer,
            corpus_batch,
            steps=cfg.pretrain_steps,
            batch_size=cfg.pretrain_batch_size,
            lr=cfg.pretrain_lr,
            progress=progress,
        )
        save_model_stage(out, model, tokenizer, pretrain_facts(model, tokenizer, losses))
