"""The ``constraints`` task: reviews written to a request of 2-4 constraints, with an exact gold reward.

Build (``Task.prepare``): split the requests (``prompts.py``) by combination, so that no held-out
prompt asks for a combination of constraints a train prompt asks for; pre-train a small GPT-2 on
the generator's (``generator.py``) responses to the train prompts, following each constraint with
probability ``pretrain_follow_prob`` (the base model, a stage keyed by ``BASE_FIELDS``); fine-tune
it on demonstrations that follow each constraint with probability ``sft_follow_prob`` (the SFT
model, a stage keyed by ``BASE_FIELDS + SFT_FIELDS``). pi_ref is the SFT model, or the base model
with ``reference: pretrained``. Then sample pairs of pi_ref responses per split, label them by
Bradley-Terry on the gold reward (``reward.py``), and write pairs, unpaired completions and
held-out prompts. The build facts add, on pi_ref's train samples, how often each kind of
constraint is met and the share of the reward's variance its cliff values explain
(``cliff_variance_share``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from transformers import AutoModelForCausalLM, AutoTokenizer

from prefopt.tasks.base import Task, TaskArtifacts
from prefopt.tasks.cliffs import cliff_variance_share
from prefopt.tasks.constraints.generator import sample_response
from prefopt.tasks.constraints.prompts import Request, all_requests, parse_prompt, prompt_words
from prefopt.tasks.constraints.reward import ConstraintReward
from prefopt.tasks.pretrain import BatchSampler, pretrain
from prefopt.tasks.reviews.lexicon import response_words
from prefopt.tasks.synthetic import (
    STAGE_FACTS,
    cached_model_stage,
    install_model_stage,
    new_pi_ref,
    pretrain_facts,
    sample_split_pairs,
    save_model_stage,
    torch_threads,
    write_pair_data,
)

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
REFERENCES = ("sft", "pretrained")  # what pi_ref is: the SFT model or the base model
SAMPLE_METRICS = ("constraints_met", "tone_met", "mentions_met", "avoid_met", "length_error")


@dataclass(frozen=True)
class ConstraintsConfig:
    seed: int = 0
    torch_threads: int = 1
    # language of the generated responses
    max_clauses: int = 6
    clause_decay: float = 0.8
    # gold reward (reward.py): the reward's own defaults
    length_penalty: float = ConstraintReward.length_penalty
    unfinished_reward: float = ConstraintReward.unfinished_reward
    ungrammatical_reward: float = ConstraintReward.ungrammatical_reward
    # the base model: a GPT-2 pre-trained from scratch
    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 4
    pretrain_follow_prob: float = 0.0
    pretrain_steps: int = 500
    pretrain_batch_size: int = 128
    pretrain_lr: float = 1e-2
    # the SFT model, fine-tuned from the base model, and which of the two is pi_ref
    sft_follow_prob: float = 0.5
    sft_steps: int = 300
    sft_batch_size: int = 128
    sft_lr: float = 1e-2
    reference: str = "sft"
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


class ConstraintsTask(Task):
    name = "constraints"
    Config = ConstraintsConfig
    version = 1

    def __init__(self, config: ConstraintsConfig):
        super().__init__(config)
        if config.reference not in REFERENCES:
            raise ValueError(f"reference {config.reference!r}; valid: {list(REFERENCES)}")
        reward_keys = {f.name for f in dataclasses.fields(ConstraintReward)}
        self.reward = ConstraintReward(
            **{k: v for k, v in dataclasses.asdict(config).items() if k in reward_keys}
        )
        n_held_out = config.n_validation_prompts + config.n_test_prompts
        if not self.split_prompts()["train"]:
            raise ValueError(
                f"n_validation_prompts + n_test_prompts = {n_held_out} leaves no train prompts "
                f"(there are {len(all_requests())})"
            )

    def gold_reward(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        return self.reward(prompts, responses)

    def response_metrics(
        self, prompts: Sequence[str], responses: Sequence[str]
    ) -> dict[str, np.ndarray]:
        return self.reward.metrics(prompts, responses)

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

    def build(self, layout: TaskArtifacts, progress: bool, cache_dir: Path) -> dict:
        cfg = self.config
        with torch_threads(cfg.torch_threads):
            splits = self.split_prompts()
            stage = cached_model_stage(
                cache_dir,
                self,
                "pretrained",
                BASE_FIELDS,
                lambda tmp: self._pretrain(tmp, splits["train"], progress),
            )
            if cfg.reference == "sft":
                base = stage
                stage = cached_model_stage(
                    cache_dir,
                    self,
                    "sft",
                    BASE_FIELDS + SFT_FIELDS,
                    lambda tmp: self._fine_tune(tmp, base, splits["train"], progress),
                )
            facts, model, tokenizer = install_model_stage(stage, layout.model_dir)
            sampled = sample_split_pairs(model, tokenizer, splits, self.reward, cfg)
        return {
            **facts,
            "reference": cfg.reference,
            "n_prompts": {s: len(p) for s, p in splits.items()},
            "n_combinations": {
                s: len({parse_prompt(p).combination for p in prompts})
                for s, prompts in splits.items()
            },
            "pi_ref": self._sample_facts(sampled["train"].all_prompts, sampled["train"].all_texts),
            **write_pair_data(layout, splits, sampled, cfg),
        }

    def _sample_facts(self, prompts: list[str], texts: list[str]) -> dict:
        """pi_ref's train samples: validity, mean reward and metrics, and the cliff share."""
        rewards = self.reward(prompts, texts)  # (N,)
        metrics = self.reward.metrics(prompts, texts)
        outcomes = np.where(
            metrics["grammatical"],
            "complete",
            np.where(metrics["unfinished"], "unfinished", "ungrammatical"),
        )
        return {
            "grammatical": float(metrics["grammatical"].mean()),
            "unfinished": float(metrics["unfinished"].mean()),
            "mean_reward": float(rewards.mean()),
            "mean_words": float(metrics["n_words"].mean()),
            **{k: float(np.nanmean(metrics[k])) for k in SAMPLE_METRICS},
            "cliff_variance_share": cliff_variance_share(rewards, outcomes),
            "n_samples": len(texts),
        }

    def _corpus(self, train_prompts: list[str], follow_prob: float, stream: int) -> BatchSampler:
        """Batches of train prompts (drawn uniformly) and the generator's responses to them, from
        the random stream ``[seed, stream]``."""
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, stream])

        def batch(n: int) -> tuple[list[str], list[str]]:
            prompts = [train_prompts[i] for i in rng.integers(len(train_prompts), size=n)]
            responses = [
                sample_response(
                    rng,
                    parse_prompt(p),
                    follow_prob=follow_prob,
                    max_clauses=cfg.max_clauses,
                    clause_decay=cfg.clause_decay,
                )
                for p in prompts
            ]
            return prompts, responses

        return batch

    def _pretrain(self, out: Path, train_prompts: list[str], progress: bool) -> None:
        """The base model: a GPT-2 pre-trained on the generator's responses to the train prompts,
        saved in ``out`` with its tokenizer and the facts of its training."""
        cfg = self.config
        words = list(dict.fromkeys([*prompt_words(), *response_words()]))
        longest_prompt = max(len(p.split()) for p in train_prompts)
        model, tokenizer = new_pi_ref(words, cfg, prompt_tokens=longest_prompt)
        losses = pretrain(
            model,
            tokenizer,
            self._corpus(train_prompts, cfg.pretrain_follow_prob, stream=1),
            steps=cfg.pretrain_steps,
            batch_size=cfg.pretrain_batch_size,
            lr=cfg.pretrain_lr,
            progress=progress,
        )
        save_model_stage(out, model, tokenizer, pretrain_facts(model, tokenizer, losses))

    def _fine_tune(self, out: Path, base: Path, train_prompts: list[str], progress: bool) -> None:
        """The SFT model: the base model fine-tuned on demonstrations (the same loss as
        pre-training), saved in ``out`` with the base model's facts and its final SFT loss."""
        cfg = self.config
        model = AutoModelForCausalLM.from_pretrained(base)
        tokenizer = AutoTokenizer.from_pretrained(base)
        losses = pretrain(
            model,
            tokenizer,
            self._corpus(train_prompts, cfg.sft_follow_prob, stream=3),
            steps=cfg.sft_steps,
            batch_size=cfg.sft_batch_size,
            lr=cfg.sft_lr,
            progress=progress,
            desc="fine-tuning pi_ref (SFT)",
        )
        facts = json.loads((base / STAGE_FACTS).read_text())
        facts["sft_final_loss"] = round(float(np.mean(losses[-20:])), 4)
        save_model_stage(out, model, tokenizer, facts)
