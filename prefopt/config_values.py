"""What every reader of the config shares: the ``@task`` sentinel and a section as a plain dict.

Torch-free, so that the run store and the config checks can import it without loading models.
"""

from __future__ import annotations

from collections.abc import Mapping

from omegaconf import DictConfig, OmegaConf

#: ``model.name_or_path`` or ``data.source`` that means "the built-in task's pi_ref or data".
TASK_SENTINEL = "@task"


def plain_dict(cfg: object, what: str = "config", error: type[Exception] = ValueError) -> dict:
    """``cfg`` (an OmegaConf DictConfig, resolved, or any mapping) as a new plain dict whose nested
    mappings are plain dicts too; anything else raises ``error`` naming ``what``."""
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)
    if not isinstance(cfg, Mapping):
        raise error(f"{what} must be a mapping, got {type(cfg).__name__}")
    return {
        key: plain_dict(value, f"{what}.{key}", error) if isinstance(value, Mapping) else value
        for key, value in cfg.items()
    }
