"""A run's batch source and objective: the data set and the loss, or an online algorithm's.

``online.kind`` (conf/online/) picks a builder from :data:`BUILDERS`; the trainer only ever sees the
:class:`TrainingParts` it returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig

from prefopt.config_values import plain_dict
from prefopt.eval.build import prompt_encoder
from prefopt.eval.judges import build_judge
from prefopt.losses import PreferenceLoss
from prefopt.online.draws import PromptDraws, distinct_prompts
from prefopt.online.pairs import OnlinePairs
from prefopt.online.ppo import PPOObjective, PPORollouts
from prefopt.online.rollouts import RLOOObjective, RLOORollouts
from prefopt.online.settings import heldout_loss, online_settings
from prefopt.online.value_model import ValueModel
from prefopt.results.store import atomic_write_json
from prefopt.trainer.batching import BatchSource, FixedBatches
from prefopt.trainer.data_setup import pair_dicts
from prefopt.trainer.objective import Objective, PreferenceObjective
from prefopt.trainer.setup import is_main_process


@dataclass
class TrainingParts:
    """What the trainer trains on and minimises."""

    batches: BatchSource
    objective: Objective
    heldout_loss: PreferenceLoss | None  # the loss of held-out rows; None: the rows hold none
    trained_parts: dict = field(default_factory=dict)  # name -> a model trained beside the policy


@dataclass
class PartsInputs:
    """What the builders read: the run's config, task, data, models and loss."""

    cfg: DictConfig
    task: object  # the built-in task, or None
    data: object  # prefopt.trainer.data_setup.PreparedData
    models: object  # prefopt.trainer.model_setup.PreparedModels
    loss_fn: PreferenceLoss
    batch_size: (
        int  # trainer.batch_size: pairs (offline, online pairs), prompts (rloo), responses (ppo)
    )
    cache_dir: Path
    run_dir: Path

    def draws(self, per_step: int | None = None) -> PromptDraws:
        """The training prompts, ``per_step`` (default the batch size) drawn at a time from the
        run's seed."""
        encode = prompt_encoder(self.data.tokenizer, plain_dict(self.cfg.data, "data"))
        prompts = distinct_prompts(self.data.train_records)
        return PromptDraws(prompts, encode, per_step or self.batch_size, int(self.cfg.seed))

    def judge(self, reward_cfg: dict):
        """The reward judge of the samples. A reward model trained on the run's pairs (a proxy,
        once per sweep) is scored on the validation pairs: ``reward_model.json`` in the run holds
        its held-out accuracy against the Bayes ceiling."""
        device = str(next(self.models.policy.parameters()).device)
        judge = build_judge(
            reward_cfg,
            self.task,
            self.cache_dir,
            pair_dicts(self.data.train_records),
            device,
            heldout_pairs=pair_dicts(self.data.validation_records),
        )
        info = getattr(judge, "info", None)
        if info is not None and is_main_process():
            atomic_write_json(self.run_dir / "reward_model.json", info)
        return judge


def offline(inputs: PartsInputs, settings) -> TrainingParts:
    """The data set's items in a seeded order per epoch, and the run's loss."""
    batches = FixedBatches(inputs.data.train_items, inputs.batch_size, int(inputs.cfg.seed))
    objective = PreferenceObjective(inputs.loss_fn, inputs.models.train_reference)
    return TrainingParts(batches, objective, heldout_loss(inputs.cfg, inputs.loss_fn))


def online_pairs(inputs: PartsInputs, settings) -> TrainingParts:
    """Online DPO: labelled pairs of the policy's samples, the run's paired loss."""
    source = OnlinePairs(
        inputs.draws(), inputs.data.tokenizer, inputs.judge(settings.reward), settings
    )
    objective = PreferenceObjective(inputs.loss_fn, inputs.models.train_reference)
    return TrainingParts(source, objective, heldout_loss(inputs.cfg, inputs.loss_fn))


def rloo(inputs: PartsInputs, settings) -> TrainingParts:
    """RLOO against the reward judge, KL to pi_ref."""
    source = RLOORollouts(
        inputs.draws(),
        inputs.data.tokenizer,
        inputs.judge(settings.reward),
        inputs.models.pi_ref.live(),
        settings,
    )
    objective = RLOOObjective(settings.clip_eps)
    return TrainingParts(source, objective, heldout_loss(inputs.cfg, inputs.loss_fn))


def ppo(inputs: PartsInputs, settings) -> TrainingParts:
    """PPO against the reward judge, its value model started from the judge's trained weights
    where it has them (a proxy reward model, from pi_ref), else from pi_ref with a new head."""
    judge = inputs.judge(settings.reward)
    policy = inputs.models.policy
    value_model = ValueModel.load(
        str(getattr(judge, "path", None) or inputs.models.reference_path),
        next(policy.parameters()).dtype,
        next(policy.parameters()).device,
        settings.value_lr,
        float(inputs.cfg.trainer.max_grad_norm),
    )
    source = PPORollouts(
        inputs.draws(settings.rollout_prompts),
        inputs.data.tokenizer,
        judge,
        inputs.models.pi_ref.live(),
        value_model,
        settings,
        inputs.batch_size,
    )
    objective = PPOObjective(value_model, settings)
    loss_fn = heldout_loss(inputs.cfg, inputs.loss_fn)
    return TrainingParts(source, objective, loss_fn, {"value_model": value_model})


BUILDERS: dict[str, Callable[[PartsInputs, object], TrainingParts]] = {
    "none": offline,
    "pairs": online_pairs,
    "rloo": rloo,
    "ppo": ppo,
}


def training_parts(inputs: PartsInputs) -> TrainingParts:
    """The batch source and objective that ``online.kind`` names."""
    settings = online_settings(inputs.cfg.get("online"))
    return BUILDERS[settings.kind](inputs, settings)


def epoch_size(cfg: DictConfig, data) -> int:
    """The items one epoch covers (before any model loads): the data set's training items, or, for
    an online algorithm, its distinct training prompts."""
    settings = online_settings(cfg.get("online"))
    if settings.kind == "none":
        return len(data.train_items)
    return settings.epoch_items(len(distinct_prompts(data.train_records)))
