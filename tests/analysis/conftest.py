"""Fixtures: one fabricated sweep shared by the analysis tests (they only read it)."""

import matplotlib
import pytest
from fabricate import fabricate_sweep

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def planted(tmp_path_factory):
    """A sweep with planted peaks, a planted best method, and failed/running/incomplete runs."""
    return fabricate_sweep(tmp_path_factory.mktemp("sweep"))
