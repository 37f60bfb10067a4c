"""The online group is checked from the config alone, each bad value named."""

import pytest

from prefopt.errors import ConfigError
from prefopt.online.settings import OnlinePairsSettings, RLOOSettings, online_settings
from prefopt.trainer.setup import check_config


def test_each_kind_composes_into_its_settings(compose_config):
    assert online_settings(compose_config([]).online).kind == "none"
    rloo = online_settings(compose_config(["online=rloo"]).online)
    assert isinstance(rloo, RLOOSettings) and rloo.reward == {"kind": "gold"}
    pairs = online_settings(compose_config(["online=pairs", "judge@online.reward=proxy"]).online)
    assert isinstance(pairs, OnlinePairsSettings) and pairs.reward["kind"] == "proxy"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["online=rloo", "online.samples_per_prompt=1"], "online.samples_per_prompt=1"),
        (["online=rloo", "online.kl_estimator=k2"], "online.kl_estimator='k2'"),
        (["online=rloo", "online.clip_eps=1.5"], "online.clip_eps=1.5"),
        (["online=pairs", "online.label_temperature=-1"], "online.label_temperature=-1"),
        (["online=pairs", "+online.beta=1"], "online.beta: unknown key"),
        (["online=pairs", "online.kind=dqn"], "online.kind='dqn'"),
        (["online=pairs", "loss=kto"], "takes unpaired data"),
        (
            ["online=rloo", "trainer.reference_sync_every=4", "trainer.reference=frozen_copy"],
            "reference_sync_every must be 0",
        ),
        (["online=rloo", "task=none"], "no task"),
    ],
)
def test_bad_online_configs_are_refused_before_any_work(compose_config, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        check_config(compose_config(overrides))


def test_an_online_run_gets_its_own_sweep_folder(compose_config):
    assert compose_config(["online=rloo"]).run_label == "rloo"
    assert compose_config(["online=pairs", "loss=ipo"]).run_label == "online_ipo"
    assert compose_config(["loss=ipo"]).run_label == "ipo"
