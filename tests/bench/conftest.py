"""Make the benchmark's modules (experiments/bench_trl) importable by the tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments" / "bench_trl"))
