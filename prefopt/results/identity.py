"""What makes a run the run it is: its config, the files it reads and the code that trains it.

A run directory holds ``run_identity.json``, written when the run starts. A rerun in the same directory
compares itself with it (:func:`bind_run`): an identical run resumes (or reports its finished result);
a finished run made by older code is reused and tagged with that code's version; anything else is
refused with a message naming each differing key and file, unless ``resume`` says otherwise:

- ``auto`` (default): as above;
- ``never``: start over; the directory's previous files move to ``.replaced/<time>/``;
- ``force``: continue (or reuse) the run in the directory even though it differs; the differences
  are recorded under ``forced`` in ``run_identity.json``.

Files are fingerprinted by content (SHA-256), cached by path, size and modification time in
``<cache_dir>/fingerprints.json``, so a large model directory is hashed once. A run of a built-in
task also records the task build it reads (pi_ref and the data files) under the build's name,
``task <name>-<config hash>``, not its path: a run made on another build of the same task config
(rebuilt on another machine, where builds differ) is refused, while the same build carried to
another cache (``prefopt.tasks.carry``) matches.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

from prefopt.config_values import TASK_SENTINEL
from prefopt.errors import ConfigError, RunMismatchError
from prefopt.results.store import atomic_write_json, read_json

log = logging.getLogger(__name__)

# Top-level config keys that pick where or how a run executes, not what it computes: they are left
# out of the identity and of run directory names. Everything else changes the result.
RESULT_NEUTRAL_KEYS = (
    "name",  # the experiment folder
    "run_label",  # the run's folder inside its sweep
    "cache_dir",  # where shared artifacts are cached
    "device",  # cpu or cuda
    "num_threads",  # CPU threads
    "logger",  # wandb on or off
    "launcher",  # how a sweep's jobs run
    "resume",  # what to do with a differing run
    "debug",  # tracebacks for user errors
    "hydra",  # Hydra's own settings
    "search",  # the comparison protocol's search space, read by its driver (experiments/protocol.py)
)
RESUME_MODES = ("auto", "never", "force")
IDENTITY_FILE = "run_identity.json"
TASK_BUILD_PREFIX = "task "  # key of a task build among an identity's files (not a path)
REPLACED_DIR = ".replaced"


def comparable_config(cfg: DictConfig) -> dict[str, object]:
    """The resolved config as dotted keys -> values, without :data:`RESULT_NEUTRAL_KEYS`."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    flat: dict[str, object] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, Mapping) and value:
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        else:
            flat[prefix] = value

    for key, value in plain.items():
        if key not in RESULT_NEUTRAL_KEYS:
            walk(key, value)
    return dict(sorted(flat.items()))


def code_version() -> str:
    """prefopt's version plus a hash of its source files (changes with any code change)."""
    from prefopt import __version__

    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:12]}"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Fingerprints:
    """Content hashes of files and directories, cached by path, size and modification time."""

    def __init__(self, cache_dir: Path):
        self.path = Path(cache_dir) / "fingerprints.json"
        self.cache: dict[str, str] = read_json(self.path) if self.path.exists() else {}
        self.changed = False

    def of(self, path: Path) -> str:
        """SHA-256 of a file, or of a directory's files (relative names and contents)."""
        if path.is_file():
            return self._file(path)
        return self.of_files(path, [p for p in path.rglob("*") if p.is_file()])

    def of_files(self, root: Path, files: list[Path]) -> str:
        """SHA-256 of ``files`` under ``root`` (their names relative to it and their contents)."""
        digest = hashlib.sha256()
        for file in sorted(files):
            digest.update(str(file.relative_to(root)).encode())
            digest.update(self._file(file).encode())
        return digest.hexdigest()

    def _file(self, path: Path) -> str:
        stat = path.stat()
        key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        if key not in self.cache:
            self.cache[key] = _file_digest(path)
            self.changed = True
        return self.cache[key]

    def save(self) -> None:
        if self.changed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.path, self.cache)


def input_paths(cfg: DictConfig) -> list[Path]:
    """Local files and directories the run reads: data split files and local model directories."""
    from prefopt.data.settings import DataSettings, available_splits
    from prefopt.data.sources import local_split_files

    paths: list[Path] = []
    if cfg.data.source != TASK_SENTINEL:
        settings = DataSettings.from_cfg(cfg.data)
        for split in available_splits(cfg.data):
            paths.extend(local_split_files(settings.source, settings.split_spec(split)) or [])
    for key, value in comparable_config(cfg).items():
        if key.startswith("data.") or not isinstance(value, str) or value == TASK_SENTINEL:
            continue
        if not value or "\n" in value or len(value) > 4096:
            continue
        candidate = Path(to_absolute_path(os.path.expanduser(value)))
        if key.endswith(("name_or_path", "_path", "_dir")) and candidate.exists():
            paths.append(candidate)
    return sorted(set(paths))


def task_build_fingerprint(cfg: DictConfig, cache_dir: Path, fingerprints: Fingerprints) -> dict:
    """``{"task <name>-<config hash>": content hash}`` of the task build the run reads (built now
    if the cache lacks it), or {} for a run without a built-in task."""
    if not cfg.get("task"):
        return {}
    from prefopt.tasks import build_task

    artifacts = build_task(cfg.task).prepare(cache_dir)
    content = fingerprints.of_files(artifacts.root, artifacts.content_files())
    return {f"{TASK_BUILD_PREFIX}{artifacts.root.name}": content}


@dataclass
class RunIdentity:
    """The config, input files and code version of a run."""

    config: dict[str, object]
    files: dict[str, str]  # absolute path (or "task <build>") -> content hash
    code: str

    @classmethod
    def of(cls, cfg: DictConfig, cache_dir: Path) -> RunIdentity:
        fingerprints = Fingerprints(cache_dir)
        files = {str(path): fingerprints.of(path) for path in input_paths(cfg)}
        files.update(task_build_fingerprint(cfg, cache_dir, fingerprints))
        fingerprints.save()
        return cls(comparable_config(cfg), files, code_version())

    def to_json(self) -> dict:
        return {"config": self.config, "files": self.files, "code": self.code}

    def changes_from(self, stored: Mapping) -> list[str]:
        """Each way this run's config and files differ from a stored identity, one line each."""
        changes = []
        old_config = {  # without keys made result-neutral after the run was stored
            key: value
            for key, value in stored.get("config", {}).items()
            if key.split(".", 1)[0] not in RESULT_NEUTRAL_KEYS
        }
        for key in sorted(set(old_config) | set(self.config)):
            old, new = old_config.get(key, "<absent>"), self.config.get(key, "<absent>")
            if old != new:
                changes.append(f"config {key}: {old!r} -> {new!r}")
        old_files = stored.get("files", {})
        for path in sorted(set(old_files) | set(self.files)):
            if path not in self.files:
                changes.append(f"file {path}: no longer read")
            elif path not in old_files:
                changes.append(f"file {path}: newly read")
            elif old_files[path] != self.files[path]:
                if path.startswith(TASK_BUILD_PREFIX):  # rebuilt: pi_ref or its data differ
                    changes.append(f"{path}: another build (pi_ref or data differ)")
                else:
                    changes.append(f"file {path}: content changed")
        return changes


def _holds_files(run_dir: Path) -> bool:
    return any(entry.name not in (REPLACED_DIR, ".lock") for entry in run_dir.iterdir())


def _move_aside(run_dir: Path) -> Path:
    """Move the directory's run files to .replaced/<time>/ (nothing is deleted)."""
    target = run_dir / REPLACED_DIR / time.strftime("%Y%m%d-%H%M%S")
    suffix = 0
    while target.exists():
        suffix += 1
        target = target.with_name(f"{target.name.split('.')[0]}.{suffix}")
    target.mkdir(parents=True)
    for entry in run_dir.iterdir():
        if entry.name not in (REPLACED_DIR, ".lock"):
            shutil.move(str(entry), str(target / entry.name))
    return target


def bind_run(
    run_dir: Path, current: RunIdentity, status: str | None, has_checkpoint: bool, resume: str
) -> str | None:
    """Check a rerun against the run in ``run_dir`` and record ``current`` as its identity.

    Only a finished run or one with a checkpoint can be continued, so only those are compared; a
    directory holding neither (a run that failed before its first checkpoint) starts afresh.
    Returns the stored code version of a finished run that is reused (None otherwise); raises
    RunMismatchError when the runs differ and ``resume`` allows neither.
    """
    if resume not in RESUME_MODES:
        raise ConfigError(f"resume={resume!r}; valid: {list(RESUME_MODES)}")
    path = run_dir / IDENTITY_FILE
    if resume == "never" and _holds_files(run_dir):
        log.warning("resume=never: previous files of %s moved to %s", run_dir, _move_aside(run_dir))
        status, has_checkpoint = None, False
    if status != "finished" and not has_checkpoint:
        atomic_write_json(path, {**current.to_json(), "forced": []})
        return None
    stored = read_json(path) if path.exists() else None
    if stored is None:  # made before runs were bound: its config and data cannot be compared
        changes = ["run_identity.json: missing (made by an older prefopt)"]
        stored_code = "unknown"
    else:
        changes = current.changes_from(stored)
        stored_code = stored.get("code", "unknown")
    finished = status == "finished"
    if finished:  # a finished run of older code is reused; one made before identities, too
        refused = changes if stored is not None else []
    else:
        refused = changes
        if stored is not None and stored_code != current.code:
            refused = [*changes, f"code: {stored_code} -> {current.code}"]
    if refused and resume != "force":
        listing = "\n  ".join(refused)
        raise RunMismatchError(
            f"{run_dir} holds a different run ({'finished' if finished else 'unfinished'}):\n  "
            f"{listing}\nUse another directory, resume=never to start this one over (its files "
            "move to .replaced/), or resume=force to continue it anyway."
        )
    if refused:
        log.warning(
            "resume=force: continuing %s although it differs: %s", run_dir, "; ".join(refused)
        )
        record = dict(stored or current.to_json())
        record["forced"] = [*record.get("forced", []), {"time": time.time(), "changes": refused}]
        if not finished:
            record.update(current.to_json())
        atomic_write_json(path, record)
    return stored_code if finished else None
