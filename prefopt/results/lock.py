"""An exclusive lock on a run directory, so two sweeps pointed at one directory cannot both train it.

``fcntl.flock`` on ``<run_dir>/.lock``: the operating system releases it when the process dies, so a
killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from prefopt.errors import UserError


class RunLockedError(UserError, RuntimeError):
    """Another live process holds the run directory."""


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold the run directory's lock for the duration of the block, or raise RunLockedError."""
    path = Path(run_dir) / ".lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunLockedError(
                f"run directory {run_dir} is being trained by another process (pid {holder}); "
                "two sweeps must not share a run"
            ) from error
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
