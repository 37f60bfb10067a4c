"""SIGTERM (as SLURM preemption sends) and SIGINT (Ctrl-C) stop a run cleanly and resumably.

While :func:`graceful_stop` is active, a signal that arrives during an optimiser step is deferred: the
loop finishes the step, writes a checkpoint at that step boundary and raises :class:`RunInterrupted`.
A signal at any other time (loading, evaluation) raises at once, so stopping takes at most one step;
the run resumes from its newest checkpoint. A second signal stops at once.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class RunInterrupted(KeyboardInterrupt):
    """The run was stopped by a signal; it is marked ``interrupted`` and resumes when run again."""

    def __init__(self, signum: int, detail: str = ""):
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}{detail}")


class StopRequest:
    """Whether a stop was asked for while a step was running, and by which signal."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.deferring = False

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Defer a first signal to the end of this block (an optimiser step)."""
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False

    def handle(self, signum: int, frame) -> None:
        if self.deferring and self.signum is None:
            self.signum = signum
            log.warning(
                "%s: stopping after this step with a checkpoint (signal again to stop now)",
                signal.Signals(signum).name,
            )
            return
        raise RunInterrupted(signum)


NO_STOP = StopRequest()  # used where no handler is installed (not the main thread)


@contextlib.contextmanager
def graceful_stop() -> Iterator[StopRequest]:
    """Install the stop handlers for the block (main thread only) and restore the old ones."""
    if threading.current_thread() is not threading.main_thread():
        yield NO_STOP
        return
    request = StopRequest()
    previous = {sig: signal.signal(sig, request.handle) for sig in STOP_SIGNALS}
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
