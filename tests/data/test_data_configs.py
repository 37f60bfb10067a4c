"""Every data config composes as the `data` group of a Hydra app and passes the data checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from prefopt.data import DataSettings

DATA_CONF = Path(__file__).resolve().parents[2] / "conf" / "data"
OWN_CONFIGS = ["hh_rlhf", "jsonl", "ultrafeedback"]


@pytest.mark.parametrize("name", OWN_CONFIGS)
def test_data_config_composes_and_validates(name):
    with initialize_config_dir(config_dir=str(DATA_CONF.parent), version_base=None):
        cfg = compose(config_name="data/" + name)
    data = cfg.data
    settings = DataSettings.from_cfg(data)
    assert settings.source == OmegaConf.select(cfg, "data.source")
    assert "train" in settings.splits


@pytest.mark.parametrize("name", OWN_CONFIGS)
def test_every_key_has_a_comment(name):
    lines = (DATA_CONF / f"{name}.yaml").read_text().splitlines()
    keys = [line for line in lines if line and not line.startswith("#") and ":" in line]
    assert len(keys) >= 12
    assert [line for line in keys if "  # " not in line] == []
