"""Optional Weights & Biases logging: every metrics row also goes to wandb when the user turns it on.

Off by default (``logger=local``); ``logger=wandb`` logs offline unless ``logger.wandb.mode=online``.
The local run store is always written; wandb is a copy, never the source of a result.

Every row reaches wandb: each split's values are plotted against their own step metric
(``<split>/step``) rather than wandb's global step, which only grows, so the test rows that the trainer
logs at the best checkpoint's (earlier) step are kept, not dropped. The wandb run's id derives from the
run directory, which turning logging on does not change.
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
        self.defined: set[str] = set()

    def __call__(self, row: Mapping) -> None:
        split = row.get("split", "train")
        if split not in self.defined:
            self.run.define_metric(f"{split}/step")
            self.run.define_metric(f"{split}/*", step_metric=f"{split}/step")
            self.defined.add(split)
        values = {f"{split}/{k}": v for k, v in row.items() if isinstance(v, int | float)}
        values[f"{split}/step"] = int(row["step"])
        self.run.log(values)


def build_sink(cfg: DictConfig, run_dir: Path):
    """A WandbSink when ``logger.wandb.enabled``, else None."""
    logger = cfg.get("logger") or {}
    wandb_cfg = logger.get("wandb") or {}
    return WandbSink(cfg, run_dir) if wandb_cfg.get("enabled") else None
