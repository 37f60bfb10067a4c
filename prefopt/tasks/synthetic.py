"""What the built-in tasks share (``SyntheticTask``): a pi_ref trained here on the task's generated
language in two cached stages, and preference data sampled from it, labelled and written.

The two stages, each cached apart (``<cache_dir>/tasks/stages/<task>-<stage>-<hash>``):

1. ``pretrained``, the base model: a GPT-2 pre-trained from scratch on the task's corpus (keyed by
   the task's ``base_fields``);
2. ``sft``, the SFT model: the base model fine-tuned with the same loss on demonstrations (keyed by
   ``base_fields + sft_fields``, so that a change of the SFT settings reuses the base model).

pi_ref (the policy's start and the sampler of the pairs) is the stage that ``reference`` names.

A task's config names the fields read here: ``seed``, ``torch_threads``, ``reference``,
``n_layer``, ``n_embd``, ``n_head``, ``max_new_tokens``, ``pretrain_steps``,
``pretrain_batch_size``, ``pretrain_lr``, ``sft_steps``, ``sft_batch_size``, ``sft_lr`` (pi_ref),
``n_train_pairs``, ``n_eval_pairs``, ``min_reward_gap``, ``sampling_temperature``,
``sampling_batch_size``, ``label_temperature``, ``flip_rate`` (data) and the gold reward's fields.
Seeds: pi_ref's initialisation ``seed``; the corpus of a stage the random stream
``[seed, CORPUS_STREAMS[stage]]``; split ``i`` of ``SPLITS`` samples with ``10 * seed + i + 1`` and
labels with ``[seed, 2, i]``; the best-of-16 headroom samples with ``10 * seed + 4``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from abc import abstractmethod
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

from prefopt.tasks.base import EVAL_SPLITS, SPLITS, Task, TaskArtifacts
from prefopt.tasks.cache import build_cached, config_hash, json_problem, model_dir_problem
from prefopt.tasks.cliffs import cliff_variance_share
from prefopt.tasks.headroom import BEST_OF, best_of_n_win_rate
from prefopt.tasks.preferences import (
    RewardFn,
    SampledPairs,
    pair_records,
    sample_pairs,
    unpaired_records,
    write_jsonl,
)
from prefopt.tasks.pretrain import BatchSampler, build_gpt2, pretrain
from prefopt.tasks.wordlevel import build_word_tokenizer

STAGE_FACTS = "pretrain.json"  # facts of a cached model's training, kept with its weights
REFERENCES = ("sft", "pretrained")  # what pi_ref is: the SFT model or the base model
CORPUS_STREAMS = {"pretrained": 1, "sft": 3}  # stage -> random stream [seed, k] of its corpus


@contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` torch CPU threads, then restore the setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def settings_hash(task: Task, fields: Sequence[str]) -> str:
    """Hash of the task's name, code version and the config ``fields`` a stage depends on."""
    cfg = dataclasses.asdict(task.config)
    return config_hash({"name": task.name, "version": task.version, **{k: cfg[k] for k in fields}})


def cached_model_stage(
    cache_dir: Path, task: Task, stage: str, fields: Sequence[str], build: Callable[[Path], None]
) -> Path:
    """The directory of a model stage (``<cache_dir>/tasks/stages/<task>-<stage>-<hash of fields>``),
    built once by ``build(tmp)``, which saves a model, its tokenizer and ``STAGE_FACTS``."""
    root = cache_dir / "tasks" / "stages" / f"{task.name}-{stage}-{settings_hash(task, fields)}"
    build_cached(
        root,
        build,
        check=lambda found: model_dir_problem(found) or json_problem(found / STAGE_FACTS),
    )
    return root


def new_pi_ref(
    words: Sequence[str], cfg, prompt_tokens: int
) -> tuple[torch.nn.Module, PreTrainedTokenizerFast]:
    """A freshly initialised GPT-2 (seeded by ``cfg.seed``) and the word-level tokenizer of ``words``,
    with room for a prompt of ``prompt_tokens`` and long policies."""
    tokenizer = build_word_tokenizer(words)
    torch.manual_seed(cfg.seed)
    model = build_gpt2(
        tokenizer,
        n_layer=cfg.n_layer,
        n_embd=cfg.n_embd,
        n_head=cfg.n_head,
        n_positions=max(128, 2 * (prompt_tokens + cfg.max_new_tokens)),
    )
    return model, tokenizer


def save_model_stage(
    out: Path, model: torch.nn.Module, tokenizer: PreTrainedTokenizerFast, facts: dict
) -> None:
    """Save a trained model, its tokenizer and the facts of its training (``STAGE_FACTS``)."""
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / STAGE_FACTS).write_text(json.dumps(facts, sort_keys=True) + "\n")


def pretrain_facts(
    model: torch.nn.Module, tokenizer: PreTrainedTokenizerFast, losses: Sequence[float]
) -> dict:
    """Size of pi_ref and its final pre-training loss (mean of the last 20 steps)."""
    return {
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "pretrain_final_loss": round(float(np.mean(losses[-20:])), 4),
    }


def install_model_stage(stage: Path, model_dir: Path):
    """Copy a cached stage to ``model_dir``; return (its facts, the model, its tokenizer)."""
    shutil.copytree(stage, model_dir)
    facts = json.loads((model_dir / STAGE_FACTS).read_text())
    (model_dir / STAGE_FACTS).unlink()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    return facts, model, tokenizer


def sample_split_pairs(
    model, tokenizer, splits: dict[str, list[str]], reward_fn: RewardFn, cfg
) -> dict[str, SampledPairs]:
    """Pairs of pi_ref samples for the prompts of every split (``n_train_pairs`` or ``n_eval_pairs``)."""
    return {
        split: sample_pairs(
            model,
            tokenizer,
            splits[split],
            reward_fn,
            n_pairs=cfg.n_train_pairs if split == "train" else cfg.n_eval_pairs,
            min_gap=cfg.min_reward_gap,
            seed=cfg.seed * 10 + index + 1,
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.sampling_temperature,
            batch_size=cfg.sampling_batch_size,
        )
        for index, split in enumerate(SPLITS)
    }


def write_pair_data(
    layout: TaskArtifacts, splits: dict[str, list[str]], sampled: dict[str, SampledPairs], cfg
) -> dict:
    """Label the sampled pairs; write pairs, unpaired completions and held-out prompts; return the
    facts of the data: ``unpaired_threshold`` and per split ``splits`` (sizes, Bayes accuracy, label
    agreement, ``chosen_longer``, desirable share)."""
    train = sampled["train"]
    threshold = float(np.median(np.concatenate([train.reward_a, train.reward_b])))
    facts: dict = {"unpaired_threshold": threshold, "splits": {}}
    for index, split in enumerate(SPLITS):
        label_rng = np.random.default_rng([cfg.seed, 2, index])
        flip_rate = cfg.flip_rate if split == "train" else 0.0  # noise in the training labels only
        records, bayes = pair_records(
            sampled[split], label_rng, temperature=cfg.label_temperature, flip_rate=flip_rate
        )
        unpaired = unpaired_records(
            sampled[split],
            label_rng,
            threshold=threshold,
            temperature=cfg.label_temperature,
            flip_rate=flip_rate,
        )
        write_jsonl(layout.data_files[split], records)
        write_jsonl(layout.unpaired_files[split], unpaired)
        facts["splits"][split] = {
            "n_pairs": len(records),
            "n_unpaired": len(unpaired),
            "bayes_accuracy": round(bayes, 4),
            "label_agreement": float(np.mean([not r["flipped"] for r in records])),
            "chosen_longer": chosen_longer(records),
            "desirable": float(np.mean([u["label"] for u in unpaired])),
        }
    for split in EVAL_SPLITS:
        write_jsonl(layout.prompt_files[split], [{"prompt": p} for p in splits[split]])
    return facts


def chosen_longer(records: list[dict]) -> float:
    """Fraction of pairs whose chosen response has more words, among pairs of unequal length."""
    diff = np.array([len(r["chosen"].split()) - len(r["rejected"].split()) for r in records])
    return float(np.mean(diff[diff != 0] > 0)) if np.any(diff != 0) else float("nan")


class SyntheticTask(Task):
    """A task whose pi_ref is trained here (module docstring); subclasses set ``Reward`` and the
    stages' fields and write the prompts, the vocabulary and the corpora."""

    Reward: ClassVar[type]  # the gold reward: a frozen dataclass built from the config's fields
    base_fields: ClassVar[tuple[str, ...]]  # the settings the base model depends on (its key)
    sft_fields: ClassVar[tuple[str, ...]]  # the settings the SFT model adds to them

    def __init__(self, config):
        super().__init__(config)
        if config.reference not in REFERENCES:
            raise ValueError(f"reference {config.reference!r}; valid: {list(REFERENCES)}")
        reward_keys = {f.name for f in dataclasses.fields(self.Reward)}
        self.reward = self.Reward(
            **{k: v for k, v in dataclasses.asdict(config).items() if k in reward_keys}
        )

    def gold_reward(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        return self.reward(prompts, responses)

    def response_metrics(
        self, prompts: Sequence[str], responses: Sequence[str]
    ) -> dict[str, np.ndarray]:
        return self.reward.metrics(prompts, responses)

    @abstractmethod
    def split_prompts(self) -> dict[str, list[str]]:
        """Disjoint prompts of every split of ``SPLITS``."""

    @abstractmethod
    def vocabulary(self, train_prompts: list[str]) -> tuple[list[str], int]:
        """The words of pi_ref's tokenizer and the longest prompt it makes room for, in tokens."""

    @abstractmethod
    def response(self, rng: np.random.Generator, prompt: str, stage: str) -> str:
        """One response to ``prompt`` of the corpus of ``stage`` (``pretrained`` or ``sft``)."""

    @abstractmethod
    def sample_means(self, metrics: dict[str, np.ndarray]) -> dict[str, float]:
        """What info.json reports of pi_ref's samples beside validity, reward and cliff share, from
        their ``response_metrics``."""

    def prompt_facts(self, splits: dict[str, list[str]]) -> dict:
        """Facts of the prompt split for info.json."""
        return {"n_prompts": {s: len(p) for s, p in splits.items()}}

    def build(self, layout: TaskArtifacts, progress: bool, cache_dir: Path) -> dict:
        cfg = self.config
        with torch_threads(cfg.torch_threads):
            splits = self.split_prompts()
            stage = self.reference_stage(cache_dir, splits["train"], progress)
            facts, model, tokenizer = install_model_stage(stage, layout.model_dir)
            sampled = sample_split_pairs(model, tokenizer, splits, self.reward, cfg)
            headroom = best_of_n_win_rate(
                model,
                tokenizer,
                splits["validation"],
                self.reward,
                seed=10 * cfg.seed + len(SPLITS) + 1,
                max_new_tokens=cfg.max_new_tokens,
                temperature=cfg.sampling_temperature,
                batch_size=cfg.sampling_batch_size,
            )
        train = sampled["train"]
        return {
            **facts,
            "reference": cfg.reference,
            **self.prompt_facts(splits),
            "pi_ref": {
                **self.sample_facts(train.all_prompts, train.all_texts),
                f"best_of_{BEST_OF}_win_rate": headroom,
            },
            **write_pair_data(layout, splits, sampled, cfg),
        }

    def sample_facts(self, prompts: list[str], texts: list[str]) -> dict:
        """pi_ref's samples: validity (``grammatical``: complete and grammatical), mean reward, the
        task's ``sample_means`` and the share of the reward's variance its cliff values explain."""
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
            **self.sample_means(metrics),
            "cliff_variance_share": cliff_variance_share(rewards, outcomes),
            "n_samples": len(texts),
        }

    def reference_stage(self, cache_dir: Path, train_prompts: list[str], progress: bool) -> Path:
        """The cached stage pi_ref is: the base model, or the SFT model fine-tuned from it."""
        base = cached_model_stage(
            cache_dir,
            self,
            "pretrained",
            self.base_fields,
            lambda tmp: self._pretrain(tmp, train_prompts, progress),
        )
        if self.config.reference == "pretrained":
            return base
        return cached_model_stage(
            cache_dir,
            self,
            "sft",
            self.base_fields + self.sft_fields,
            lambda tmp: self._fine_tune(tmp, base, train_prompts, progress),
        )

    def corpus(self, train_prompts: list[str], stage: str) -> BatchSampler:
        """Batches of train prompts (drawn uniformly) and the stage's responses to them, from the
        random stream ``[seed, CORPUS_STREAMS[stage]]``."""
        rng = np.random.default_rng([self.config.seed, CORPUS_STREAMS[stage]])

        def batch(n: int) -> tuple[list[str], list[str]]:
            prompts = [train_prompts[i] for i in rng.integers(len(train_prompts), size=n)]
            return prompts, [self.response(rng, p, stage) for p in prompts]

        return batch

    def _pretrain(self, out: Path, train_prompts: list[str], progress: bool) -> None:
        """The base model: a GPT-2 pre-trained on the ``pretrained`` corpus, saved in ``out`` with
        its tokenizer and the facts of its training."""
        cfg = self.config
        words, prompt_tokens = self.vocabulary(train_prompts)
        model, tokenizer = new_pi_ref(words, cfg, prompt_tokens=prompt_tokens)
        losses = pretrain(
            model,
            tokenizer,
            self.corpus(train_prompts, "pretrained"),
            steps=cfg.pretrain_steps,
            batch_size=cfg.pretrain_batch_size,
            lr=cfg.pretrain_lr,
            progress=progress,
        )
        save_model_stage(out, model, tokenizer, pretrain_facts(model, tokenizer, losses))

    def _fine_tune(self, out: Path, base: Path, train_prompts: list[str], progress: bool) -> None:
        """The SFT model: the base model fine-tuned on the ``sft`` corpus (the same loss as
        pre-training), saved in ``out`` with the base model's facts and its final SFT loss."""
        cfg = self.config
        model = AutoModelForCausalLM.from_pretrained(base)
        tokenizer = AutoTokenizer.from_pretrained(base)
        losses = pretrain(
            model,
            tokenizer,
            self.corpus(train_prompts, "sft"),
            steps=cfg.sft_steps,
            batch_size=cfg.sft_batch_size,
            lr=cfg.sft_lr,
            progress=progress,
            desc="fine-tuning pi_ref (SFT)",
        )
        facts = json.loads((base / STAGE_FACTS).read_text())
        facts["sft_final_loss"] = round(float(np.mean(losses[-20:])), 4)
        save_model_stage(out, model, tokenizer, facts)
