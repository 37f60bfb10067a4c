"""The `online` config group, checked (conf/online/<kind>.yaml holds each kind's keys and meaning).

``online_settings(cfg.online)`` refuses a bad key before any model or data is touched, naming it:
``online.samples_per_prompt=1: expected an integer >= 2``.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefopt.config_keys import NAME, CheckedGroup, Rule, choice, integer, key, number
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

    kind: str = key(choice(("none",)))


@dataclass(frozen=True)
class OnlinePairsSettings(CheckedGroup):
    """``online=pairs``: online DPO (conf/online/pairs.yaml)."""

    GROUP = "online"

    kind: str = key(choice(("pairs",)))
    run_label: str = key(NAME)
    reward: dict = key(JUDGE_CONFIG)
    label_temperature: float = key(number(0.0))
    max_redraws: int = key(integer(0))
    max_new_tokens: int = key(integer(1))


@dataclass(frozen=True)
class RLOOSettings(CheckedGroup):
    """``online=rloo``: RLOO (conf/online/rloo.yaml)."""

    GROUP = "online"

    kind: str = key(choice(("rloo",)))
    run_label: str = key(NAME)
    reward: dict = key(JUDGE_CONFIG)
    samples_per_prompt: int = key(integer(2))
    kl_coef: float = key(number(0.0))
    kl_estimator: str = key(choice(KL_ESTIMATORS))
    missing_eos_penalty: float = key(number(0.0))
    clip_eps: float = key(number(0.0, 1.0, above=True, below=True))
    max_new_tokens: int = key(integer(1))


SETTINGS = {"none": OfflineSettings, "pairs": OnlinePairsSettings, "rloo": RLOOSettings}


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
    if cfg.trainer.reference_sync_every and settings.kind != "pairs":
        raise ConfigError(
            f"online={settings.kind} regularises towards the fixed pi_ref; "
            "trainer.reference_sync_every must be 0"
        )
