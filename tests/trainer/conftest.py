"""Fixtures: the tiny model and data of tiny.py, built once per test session."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny import build_model_dir, write_pairs  # noqa: E402


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """A directory with model/, train.jsonl and validation.jsonl."""
    root = tmp_path_factory.mktemp("tiny")
    build_model_dir(root / "model")
    write_pairs(root / "train.jsonl", 64, seed=0)
    write_pairs(root / "validation.jsonl", 16, seed=1)
    return root
