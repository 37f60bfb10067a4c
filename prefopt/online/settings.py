"""The `online` config group, checked (conf/online/<kind>.yaml holds each kind's keys and meaning).

``online_settings(cfg.online)`` refuses a bad key before any model or data is touched, naming it:
``online.samples_per_prompt=1: expected an integer >= 2``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar

from prefopt.config_keys import (
    FLAG,
    NAME,
    CheckedGroup,
    Rule,
    choice,
    integer,
    key,
    number,
    optional,
)
from prefopt.config_values import plain_dict
from prefopt.errors import ConfigError
from prefopt.rl.rewards import KL_ESTIMATORS

JUDGE_CONFIG = Rule(
    "a judge config (conf/judge/*.yaml) with its kind",
    lambda v: isinstance(v, dict) and "kind" in v,
)


@dataclass(frozen=True)
class OfflineSettings(CheckedGroup):
    """``online=none``: the data set's batches."""

    GROUP = "online"
    TRAINS_LOSS: ClassVar[bool] = True  # trains the run's loss (its held-out rows report it)

    kind: str = key(choice(("none",)))


@dataclass(frozen=True)
class SampledSettings(CheckedGroup):
    """What every online algorithm has: its label, the reward of its samples, their length."""

    GROUP = "online"
    TRAINS_LOSS: ClassVar[bool] = True  # trains the run's loss (its held-out rows report it)

    kind: str = key(NAME)
    run_label: str = key(NAME)
    reward: dict = key(JUDGE_CONFIG)
    max_new_tokens: int = key(integer(1))

    def epoch_items(self, prompts: int) -> int:
        """Items one epoch covers: one step's batch per ``trainer.batch_size`` prompts."""
        return prompts


@dataclass(frozen=True)
class OnlinePairsSettings(SampledSettings):
    """``online=pairs``: online DPO (conf/online/pairs.yaml)."""

    kind: str = key(choice(("pairs",)))
    label_temperature: float = key(number(0.0))
    max_redraws: int = key(integer(0))


@dataclass(frozen=True)
class PolicyGradientSettings(SampledSettings):
    """What RLOO and PPO share: the KL-penalised reward and the ratio's clip."""

    TRAINS_LOSS: ClassVar[bool] = False  # an objective of its own: the loss group is not used

    kl_coef: float = key(number(0.0))
    kl_estimator: str = key(choice(KL_ESTIMATORS))
    missing_eos_penalty: float = key(number(0.0))
    clip_eps: float = key(number(0.0, 1.0, above=True, below=True))


@dataclass(frozen=True)
class RLOOSettings(PolicyGradientSettings):
    """``online=rloo``: RLOO (conf/online/rloo.yaml)."""

    kind: str = key(choice(("rloo",)))
    samples_per_prompt: int = key(integer(2))


@dataclass(frozen=True)
class PPOSettings(PolicyGradientSettings):
    """``online=ppo``: PPO with a value model and GAE (conf/online/ppo.yaml)."""

    kind: str = key(choice(("ppo",)))
    rollout_prompts: int = key(integer(1))
    ppo_epochs: int = key(integer(1))
    kl_target: float | None = key(optional(number(0.0, above=True), "a fixed kl_coef"))
    kl_horizon: float = key(number(0.0, above=True))
    value_clip: float = key(number(0.0, above=True))
    vf_coef: float = key(number(0.0))
    value_lr: float = key(number(0.0, above=True))
    gamma: float = key(number(0.0, 1.0))
    lam: float = key(number(0.0, 1.0))
    whiten_advantages: bool = key(FLAG)

    def epoch_items(self, prompts: int) -> int:
        """Items one epoch covers: each prompt's response trained on ``ppo_epochs`` times."""
        return prompts * self.ppo_epochs

    def check(self) -> None:
        """beta starts above 0 where the controller moves it (it scales beta)."""
        if self.kl_target is not None and self.kl_coef <= 0:
            raise self.error(f"kl_coef={self.kl_coef}: the adaptive controller needs kl_coef > 0")


SETTINGS = {
    "none": OfflineSettings,
    "pairs": OnlinePairsSettings,
    "rloo": RLOOSettings,
    "ppo": PPOSettings,
}


def online_settings(cfg) -> OfflineSettings | OnlinePairsSettings | RLOOSettings:
    """The checked settings of ``cfg`` (the `online` group; None or absent: offline)."""
    values = plain_dict(cfg, "online", ConfigError) if cfg is not None else {"kind": "none"}
    kind = values.get("kind")
    if kind not in SETTINGS:
        raise ConfigError(f"online.kind={kind!r}: expected one of {', '.join(SETTINGS)}")
    return SETTINGS[kind].from_config(values)


def check_online(cfg, loss_fn) -> None:
    """Refuse, from the config alone, an online algorithm that cannot run with this loss or task."""
    settings = online_settings(cfg.get("online"))
    if settings.kind == "none":
        return
    if settings.reward["kind"] == "gold" and not cfg.get("task"):
        raise ConfigError(
            f"online={settings.kind} scores samples with the built-in task's gold reward and there "
            "is no task: choose another reward (judge@online.reward=reward_model or proxy)"
        )
    if settings.kind == "pairs" and loss_fn.data_format != "paired":
        raise ConfigError(
            f"online=pairs trains a paired loss on labelled pairs of samples; loss "
            f"{loss_fn.name!r} takes unpaired data"
        )
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    if settings.kind == "ppo" and processes > 1:
        raise ConfigError(
            f"online=ppo trains its value model on one process; this launch has {processes}"
        )
    if cfg.trainer.reference_sync_every and settings.kind != "pairs":
        raise ConfigError(
            f"online={settings.kind} regularises towards the fixed pi_ref; "
            "trainer.reference_sync_every must be 0"
        )


def heldout_loss(cfg, loss_fn):
    """The loss that held-out rows report: the run's loss where the run trains it, else None."""
    return loss_fn if online_settings(cfg.get("online")).TRAINS_LOSS else None
