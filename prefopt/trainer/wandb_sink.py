"""Optional Weights & Biases logging: every metrics row also goes to wandb when the user turns it on.

Off by default (``logger=local``); ``logger=wandb`` logs offline unless ``logger.wandb.mode=online``.
The local run store is always written; wandb is a copy, never the source of a result.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from omegaconf import DictConfig, OmegaConf


class WandbSink:
    """Forwards metrics rows to a wandb run named after the run directory."""

    def __init__(self, cfg: DictConfig, run_dir: Path):
        try:
            import wandb
        except ImportError as error:
            raise ImportError('logger=wandb needs wandb: pip install "prefopt[wandb]"') from error
        settings = cfg.logger.wandb
        self.run = wandb.init(
            project=settings.project,
            mode=settings.mode,
            name=Path(run_dir).name,
            id=Path(run_dir).name.replace("=", "-").replace(",", "_")[:120],
            resume="allow",
            dir=str(run_dir),
            config=OmegaConf.to_container(cfg, resolve=True),
        )

    def __call__(self, row: Mapping) -> None:
        split = row.get("split", "train")
        values = {f"{split}/{k}": v for k, v in row.items() if isinstance(v, int | float)}
        self.run.log(values, step=int(row["step"]))


def build_sink(cfg: DictConfig, run_dir: Path):
    """A WandbSink when ``logger.wandb.enabled``, else None."""
    logger = cfg.get("logger") or {}
    wandb_cfg = logger.get("wandb") or {}
    return WandbSink(cfg, run_dir) if wandb_cfg.get("enabled") else None
