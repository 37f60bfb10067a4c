"""Build-once caching of task artifacts: hashed key, exclusive lock, atomic publish.

``build_cached(root, build)`` returns at once if ``root`` exists. Otherwise it takes an exclusive
lock on ``root.lock`` (a second process blocks there until the first is done, then finds ``root``),
lets ``build`` write into a fresh temporary directory next to ``root`` and renames that directory
to ``root``: a build killed half-way leaves only a temporary directory, never a partial cache.
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


def config_hash(config: Mapping[str, Any]) -> str:
    """First 12 hex digits of the SHA-256 of the config as canonical JSON (sorted keys)."""
    canonical = json.dumps(dict(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def build_cached(root: Path, build: Callable[[Path], None]) -> bool:
    """Make sure ``root`` exists, building it with ``build(tmp_dir)`` if needed.

    Returns True if this call built it, False if it was already there.
    """
    if root.is_dir():
        return False
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if root.is_dir():
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
