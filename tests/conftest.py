"""Shared test settings (no hub access, deterministic CPU threads) and the config composer."""

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.fixture
def compose_config():
    """``compose_config(overrides, hydra=False)``: conf/config.yaml composed with command-line
    overrides, as ``python -m prefopt.train`` composes it (``hydra=True`` keeps the hydra node)."""
    import prefopt.train  # noqa: F401  (registers the run-name resolver)

    def compose_with(overrides, hydra: bool = False):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose(
                config_name="config", overrides=list(overrides), return_hydra_config=hydra
            )

    return compose_with


@pytest.fixture
def tiny_task_config(compose_config):
    """``tiny_task_config(cache_dir)``: a two-step DPO run of the reviews_tiny task without
    generation, one thread, its task built under ``cache_dir``."""

    def config(cache_dir):
        return compose_config(
            [
                "task=reviews_tiny",
                f"cache_dir={cache_dir}",
                "trainer.max_steps=2",
                "eval.generate=false",
                "trainer.batch_size=8",
                "num_threads=1",
            ]
        )

    return config
