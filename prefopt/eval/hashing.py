"""A stable hash of JSON-like values, to key evaluation's on-disk caches."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def stable_hash(value: Any) -> str:
    """sha256 (first 16 hex digits) of ``value`` as canonical JSON (sorted keys, str for others)."""
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
