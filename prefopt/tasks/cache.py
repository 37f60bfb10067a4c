"""Build-once caching of task artifacts: hashed key, exclusive lock, atomic publish.

``build_cached(root, build)`` returns at once if ``root`` exists. Otherwise it takes an exclusive
lock on ``root.lock`` (a second process blocks there until the first is done, then finds ``root``),
lets ``build`` write into a fresh temporary directory next to ``root`` and renames that directory
to ``root``: a build killed half-way leaves only a temporary directory, never a partial cache.

An entry found in place is checked (``check``; the ``*_problem`` helpers below find truncated or
corrupt files): one that something else damaged raises a :class:`CorruptCacheError` naming it and the
command that deletes it. It is not rebuilt in place, since other runs of a sweep may be reading it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from prefopt.errors import UserError
from prefopt.models.loading import unreadable_model_file

Check = Callable[[Path], "str | None"]  # what is wrong with a cache entry, or None


class CorruptCacheError(UserError):
    """A cache entry cannot be used; the message names it and the command that deletes it."""


def config_hash(config: Mapping[str, Any]) -> str:
    """First 12 hex digits of the SHA-256 of the config as canonical JSON (sorted keys)."""
    canonical = json.dumps(dict(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def build_cached(root: Path, build: Callable[[Path], None], check: Check | None = None) -> bool:
    """Make sure ``root`` exists, building it with ``build(tmp_dir)`` if needed.

    Returns True if this call built it, False if it was already there (and passed ``check``).
    """
    if root.is_dir():
        _check_entry(root, check)
        return False
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if root.is_dir():
                _check_entry(root, check)
                return False
            tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".tmp", dir=root.parent))
            try:
                build(tmp)
                os.rename(tmp, root)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            return True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _check_entry(root: Path, check: Check | None) -> None:
    problem = check(root) if check is not None else None
    if problem is not None:
        raise CorruptCacheError(
            f"{root}: cache entry is corrupt ({problem}); delete it (rm -r {root}) and run again "
            "to rebuild it"
        )


def json_problem(path: Path) -> str | None:
    """What is wrong with a JSON file (missing, or not valid JSON), or None."""
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{path} is missing"
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"{path} is not valid JSON ({exc})"
    return None


def jsonl_problem(path: Path) -> str | None:
    """What is wrong with a JSON-lines file written whole (missing, a last line without its newline,
    a line that is not JSON), or None."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return f"{path} is missing"
    if data and not data.endswith(b"\n"):
        return f"{path} is truncated (its last line has no newline)"
    for number, line in enumerate(data.splitlines(), 1):
        try:
            json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return f"{path}: line {number} is not valid JSON ({exc})"
    return None


def model_dir_problem(path: Path) -> str | None:
    """What is wrong with a saved model directory (missing, no config or weights, a truncated or
    corrupt file), or None."""
    if not (path / "config.json").is_file():
        return f"{path / 'config.json'} is missing"
    if not any(path.glob("*.safetensors")):
        return f"{path} holds no *.safetensors weights"
    return unreadable_model_file(path)
