"""Fixtures of the loss tests."""

import pytest

from prefopt.losses import registry


@pytest.fixture
def isolated_registry(monkeypatch):
    """Let a test register losses without leaking them into other tests."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    return registry
