"""Train one preference-optimisation run, or a sweep with ``-m``.

    python -m prefopt.train                                   # DPO on the built-in task
    python -m prefopt.train loss=ipo loss.beta=0.3 trainer.lr=1e-3 trainer.epochs=3 seed=1
    python -m prefopt.train -m loss=dpo,ipo trainer.lr=1e-4,5e-4 seed=0,1,2

The run directory derives from the command's overrides, so running the same command again resumes
the run (or says it has finished).
"""

from __future__ import annotations

import logging
import os

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from prefopt.console import setup_console
from prefopt.trainer.run import run_training

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conf")


def run_name(override_dirname: str) -> str:
    """Directory name of a run: its override string, or "default" when there is none."""
    return override_dirname.replace("/", "_") or "default"


if not OmegaConf.has_resolver("prefopt_run_name"):
    OmegaConf.register_new_resolver("prefopt_run_name", run_name)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the best validation selection metric (for sweepers)."""
    setup_console()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    hydra_cfg = HydraConfig.get()
    try:
        summary = run_training(cfg, hydra_cfg.runtime.output_dir, list(hydra_cfg.overrides.task))
    except Exception as error:
        if hydra_cfg.mode != RunMode.MULTIRUN:
            raise
        # In a sweep one failed run (marked failed in its summary.json) must not stop the others.
        logging.getLogger(__name__).error("run %s failed: %s", hydra_cfg.runtime.output_dir, error)
        return None
    best = summary.get("best", {}).get("validation", {})
    return best.get("win_rate", best.get("reward_accuracy"))


if __name__ == "__main__":
    main()
