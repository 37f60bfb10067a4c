"""The run store: atomic writers for a run directory and loaders for a sweep."""

from prefopt.results.store import MetricsLog, atomic_write_json, atomic_write_text, read_json
from prefopt.results.sweep import load_run, load_sweep

__all__ = [
    "MetricsLog",
    "atomic_write_json",
    "atomic_write_text",
    "load_run",
    "load_sweep",
    "read_json",
]
