"""A sweep's outcome: each failed run is recorded, and a sweep with a failed run exits non-zero.

Jobs may run in other processes (joblib, SLURM), so a failed run appends one JSON line to
``<sweep dir>/failed_runs.jsonl`` (appends of one short line are atomic); the Hydra callback
:class:`SweepOutcome` empties that file when a sweep starts and, when it ends, prints the failed runs
and exits with status 1 if there are any.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

FAILED_RUNS_FILE = "failed_runs.jsonl"
EXIT_SWEEP_FAILED = 1


def record_failed_run(sweep_dir: str | Path, run_dir: str | Path, error: BaseException) -> None:
    """Append one failed run (its directory and error) to the sweep's failed_runs.jsonl."""
    path = Path(sweep_dir) / FAILED_RUNS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"run_dir": str(run_dir), "error": f"{type(error).__name__}: {error}"})
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def failed_runs(sweep_dir: str | Path) -> list[dict]:
    """The failed runs recorded in the sweep directory (empty when none failed)."""
    path = Path(sweep_dir) / FAILED_RUNS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


class SweepOutcome(Callback):
    """Hydra callback: a sweep with failed runs lists them and exits non-zero."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        (Path(config.hydra.sweep.dir) / FAILED_RUNS_FILE).unlink(missing_ok=True)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        failures = failed_runs(config.hydra.sweep.dir)
        if not failures:
            return
        lines = "\n".join(f"  {f['run_dir']}: {f['error'].splitlines()[0]}" for f in failures)
        print(f"sweep finished with {len(failures)} failed run(s):\n{lines}", file=sys.stderr)
        sys.exit(EXIT_SWEEP_FAILED)
