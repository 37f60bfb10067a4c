"""Validated view of the `data` config group (see conf/data/*.yaml for what each key means)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from prefopt.config_values import plain_dict

FORMATS = ("auto", "trl", "conversational", "hh_rlhf", "ultrafeedback", "unpaired")
BAD_ROW_POLICIES = ("drop", "error")
SPLIT_NAMES = ("train", "validation", "test")


@dataclass(frozen=True)
class DataSettings:
    """Every key of a data config, with its default. `None` for a length limit means no limit."""

    source: str
    format: str = "auto"
    splits: dict = field(default_factory=lambda: {"train": "train"})
    weight_column: str | None = None
    max_rows: int | None = None
    max_prompt_length: int | None = None
    max_response_length: int | None = None
    max_length: int | None = None
    add_eos: bool = True
    add_bos: bool = False
    on_bad_row: str = "drop"
    drop_overlength: bool = False
    max_overlap: float = 0.01

    @classmethod
    def from_cfg(cls, data_cfg: Mapping) -> DataSettings:
        """Build from a dict or an OmegaConf DictConfig; unknown keys and bad values raise."""
        if isinstance(data_cfg, DataSettings):
            return data_cfg
        cfg = plain_dict(data_cfg, "data config")
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(cfg) - set(valid))
        if unknown:
            raise ValueError(f"unknown data config key(s) {unknown}; valid keys: {valid}")
        if not cfg.get("source"):
            raise ValueError(
                "data config needs `source` (a hub dataset id, a file, a glob or a dir)"
            )
        if cfg.get("splits") is None:
            cfg.pop("splits", None)
        settings = cls(**cfg)
        settings._validate()
        return settings

    def _validate(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"data.format={self.format!r}; valid formats: {list(FORMATS)}")
        if self.on_bad_row not in BAD_ROW_POLICIES:
            raise ValueError(
                f"data.on_bad_row={self.on_bad_row!r}; valid: {list(BAD_ROW_POLICIES)}"
            )
        bad_splits = sorted(set(self.splits) - set(SPLIT_NAMES))
        if bad_splits:
            raise ValueError(
                f"data.splits has {bad_splits}; valid split names: {list(SPLIT_NAMES)}"
            )
        overlap = self.max_overlap
        if (
            isinstance(overlap, bool)
            or not isinstance(overlap, int | float)
            or not 0 <= overlap <= 1
        ):
            raise ValueError(f"data.max_overlap={overlap!r}; must be a fraction in [0, 1]")
        for key in ("max_rows", "max_prompt_length", "max_response_length", "max_length"):
            value = getattr(self, key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(f"data.{key}={value!r}; must be a positive integer or null")

    def split_spec(self, split: str) -> str:
        """The source split name or file pattern that serves prefopt split `split`."""
        spec = self.splits.get(split)
        if spec is None:
            configured = [name for name, value in self.splits.items() if value is not None]
            raise ValueError(f"data split {split!r} is not configured; configured: {configured}")
        return str(spec)


def available_splits(data_cfg: Mapping) -> list[str]:
    """The prefopt split names (train/validation/test) that a data config maps to a source split."""
    splits = DataSettings.from_cfg(data_cfg).splits
    return [name for name in SPLIT_NAMES if splits.get(name) is not None]
