"""The task interface: a benchmark with a pi_ref, preference data and an exact gold reward.

A task is built once per config into ``<cache_dir>/tasks/<name>-<config hash>/``::

    model/                      pi_ref and its tokenizer (save_pretrained)
    pairs/<split>.jsonl         prompt, chosen, rejected, chosen_reward, rejected_reward,
                                preference_prob, flipped
    unpaired/<split>.jsonl      prompt, completion, label, reward
    prompts/<split>.jsonl       prompt (held-out prompts of "validation" and "test")
    config.json, info.json      the task config and the facts of its build

A task may cache stages that several configs share under ``<cache_dir>/tasks/stages/`` (the built-in
tasks keep pi_ref's base model and SFT model there, each keyed by the settings it depends on, so a
change of the data settings alone reuses both: ``synthetic.py``).
"""

from __future__ import annotations

import dataclasses
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from prefopt.tasks.cache import (
    build_cached,
    config_hash,
    json_problem,
    jsonl_problem,
    model_dir_problem,
)

SPLITS = ("train", "validation", "test")
EVAL_SPLITS = ("validation", "test")


@dataclass(frozen=True)
class TaskArtifacts:
    root: Path  # cache_dir/tasks/<name>-<config hash>/
    model_dir: Path  # pi_ref and its tokenizer, loadable with from_pretrained
    data_files: dict[str, Path]  # split -> JSONL of preference pairs
    unpaired_files: dict[str, Path]  # split -> JSONL of labelled single completions
    prompt_files: dict[str, Path]  # "validation"/"test" -> JSONL of held-out prompts
    config_hash: str
    info: dict  # build facts: seconds, pi_ref grammatical fraction, Bayes accuracy, sizes

    @classmethod
    def at(cls, root: Path, config_hash: str, info: dict) -> TaskArtifacts:
        """The artifacts of the standard layout under ``root``."""
        return cls(
            root=root,
            model_dir=root / "model",
            data_files={s: root / "pairs" / f"{s}.jsonl" for s in SPLITS},
            unpaired_files={s: root / "unpaired" / f"{s}.jsonl" for s in SPLITS},
            prompt_files={s: root / "prompts" / f"{s}.jsonl" for s in EVAL_SPLITS},
            config_hash=config_hash,
            info=info,
        )

    def content_files(self) -> list[Path]:
        """The files a run reads: pi_ref's directory and every data file (not config.json and
        info.json, whose build time differs between builds of the same content)."""
        model = [p for p in self.model_dir.rglob("*") if p.is_file()]
        files = [*self.data_files.values(), *self.unpaired_files.values()]
        return sorted([*model, *files, *self.prompt_files.values()])

    def problem(self) -> str | None:
        """What is wrong with the files of a built task (one missing, truncated or corrupt), or None."""
        for name in ("config.json", "info.json"):
            if (found := json_problem(self.root / name)) is not None:
                return found
        for files in (self.data_files, self.unpaired_files, self.prompt_files):
            for path in files.values():
                if (found := jsonl_problem(path)) is not None:
                    return found
        return model_dir_problem(self.model_dir)


class Task(ABC):
    """A benchmark task; subclasses set ``name``, ``Config`` (a frozen dataclass) and ``version``."""

    name: ClassVar[str]
    Config: ClassVar[type]
    version: ClassVar[int]  # bump when code changes would change the artifacts of a config

    def __init__(self, config):
        self.config = config

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Task:
        """Build from a mapping of parameters; unknown keys raise a ValueError naming valid ones."""
        valid = [f.name for f in dataclasses.fields(cls.Config)]
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise ValueError(f"unknown parameters {unknown} for task {cls.name!r}; valid: {valid}")
        return cls(cls.Config(**params))

    @property
    def config_hash(self) -> str:
        """Hash of everything that determines the artifacts: name, code version, parameters."""
        return config_hash(
            {"name": self.name, "version": self.version, **dataclasses.asdict(self.config)}
        )

    def prepare(self, cache_dir: str | Path, progress: bool = True) -> TaskArtifacts:
        """Build the task's artifacts once (locked, atomic), else load them from the cache (a
        damaged cache raises a CorruptCacheError that names it)."""
        digest = self.config_hash
        root = Path(cache_dir) / "tasks" / f"{self.name}-{digest}"

        def build(tmp: Path) -> None:
            start = time.perf_counter()
            layout = TaskArtifacts.at(tmp, digest, {})
            for path in [*layout.data_files.values(), *layout.unpaired_files.values()]:
                path.parent.mkdir(parents=True, exist_ok=True)
            layout.prompt_files["test"].parent.mkdir(parents=True, exist_ok=True)
            info = self.build(layout, progress, Path(cache_dir))
            info["seconds"] = round(time.perf_counter() - start, 2)
            config = {"name": self.name, **dataclasses.asdict(self.config)}
            (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
            (tmp / "info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")

        build_cached(root, build, check=lambda found: TaskArtifacts.at(found, digest, {}).problem())
        info = json.loads((root / "info.json").read_text())
        return TaskArtifacts.at(root, digest, info)

    @abstractmethod
    def build(self, layout: TaskArtifacts, progress: bool, cache_dir: Path) -> dict:
        """Write every artifact of ``layout``; return the build facts for info.json.

        ``cache_dir`` may hold stages that several configs share (under ``tasks/stages/``)."""

    @abstractmethod
    def gold_reward(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """Exact reward of each response to its prompt, shape (N,) float64, deterministic."""

    @abstractmethod
    def response_metrics(
        self, prompts: Sequence[str], responses: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """Per-response facts, each shape (N,), e.g. ``{"grammatical": bool array}``."""
