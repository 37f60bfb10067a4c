"""Paths and file writers shared by the data-pipeline tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HH_FILE = PROJECT_ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"
BAD_DIR = Path(__file__).resolve().parent / "bad"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def data_cfg(source: Path | str, **overrides) -> dict:
    """A data config for one local file or directory, with the given keys changed."""
    return {"source": str(source), "splits": {"train": "train"}, **overrides}
