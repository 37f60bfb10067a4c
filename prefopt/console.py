"""Console output: progress that suits where it is going, quiet libraries and one log format.

A progress bar is a tqdm bar only when stderr is a terminal. Anywhere else (a log file, a pipe, a
SLURM output file) it is one plain log line every :data:`LOG_INTERVAL_SECONDS` with done/total, rate
and ETA, and a last line when it ends (none for a bar shorter than that), so a log never fills with
carriage-return-joined bar redraws.

:func:`setup_console`, called first by every entry point, turns off the progress bars of transformers,
huggingface_hub and datasets and sends their log records through the root logger, so that every line
has the package's format (:data:`LOG_FORMAT`, which Hydra's job logging uses too, via
:func:`log_formatter` in ``conf/config.yaml``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from time import monotonic

from tqdm import tqdm

LOG_INTERVAL_SECONDS = 10.0  # seconds between two progress lines when stderr is not a terminal
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # every log line of a run

LIBRARY_LOGGERS = (
    "transformers",
    "huggingface_hub",
    "datasets",
)  # their lines get the package's format

log = logging.getLogger("prefopt.progress")


def log_formatter() -> logging.Formatter:
    """The formatter of the package's log lines (a ``()`` factory for logging's dictConfig)."""
    return logging.Formatter(LOG_FORMAT)


def _duration(seconds: float) -> str:
    """A short human duration: 42s, 3m05s, 2h07m."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class LogProgress:
    """A progress bar for logs: the same calls as tqdm's, one plain line every few seconds."""

    def __init__(
        self,
        iterable: Iterable | None = None,
        *,
        total: int | None = None,
        initial: int = 0,
        desc: str = "",
    ):
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total = total
        self.initial = self.n = initial
        self.desc = desc
        self.postfix = ""
        self.started = self.last_logged = monotonic()
        self.logged_n = initial
        self.closed = False

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        """Count ``n`` more done; log a line when the interval has passed since the last one."""
        self.n += n
        now = monotonic()
        if now - self.last_logged >= LOG_INTERVAL_SECONDS:
            self._log(now)

    def set_postfix(self, refresh: bool = True, **values) -> None:
        """Values shown at the end of the next line (``loss=0.6931``), as tqdm's postfix."""
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def close(self) -> None:
        """Log the last line, if anything was done since the previous one and the bar ran for at
        least one interval (a shorter one logs nothing: its caller reports what it did)."""
        now = monotonic()
        long_enough = now - self.started >= LOG_INTERVAL_SECONDS
        if not self.closed and self.n > self.logged_n and long_enough:
            self._log(now, final=True)
        self.closed = True

    def line(self, now: float, final: bool = False) -> str:
        """``desc: done/total (pct), rate, ETA or elapsed time, postfix``."""
        elapsed = now - self.started
        rate = (self.n - self.initial) / elapsed if elapsed > 0 else 0.0
        if self.total:
            parts = [f"{self.n}/{self.total} ({100 * self.n / self.total:.0f}%)"]
        else:
            parts = [f"{self.n} done"]
        parts.append(f"{rate:.2f} it/s" if rate >= 1 or rate == 0 else f"{1 / rate:.1f} s/it")
        if final:
            parts.append(f"in {_duration(elapsed)}")
        elif self.total and rate > 0:
            parts.append(f"ETA {_duration((self.total - self.n) / rate)}")
        if self.postfix:
            parts.append(self.postfix)
        return f"{self.desc}: {', '.join(parts)}" if self.desc else ", ".join(parts)

    def _log(self, now: float, final: bool = False) -> None:
        log.info(self.line(now, final))
        self.last_logged = now
        self.logged_n = self.n


def progress(
    iterable: Iterable | None = None,
    *,
    total: int | None = None,
    initial: int = 0,
    desc: str = "",
    enabled: bool = True,
    leave: bool = True,
) -> tqdm | LogProgress:
    """A progress bar: tqdm on a terminal, :class:`LogProgress` lines elsewhere, nothing if disabled.

    Used as tqdm is: iterate over it, or call ``update``, ``set_postfix`` and ``close``. ``leave``
    (keep the finished bar on screen) applies to the terminal bar only.
    """
    if not enabled:
        return tqdm(iterable, total=total, initial=initial, disable=True)
    if sys.stderr.isatty():
        return tqdm(iterable, total=total, initial=initial, desc=desc, leave=leave, file=sys.stderr)
    return LogProgress(iterable, total=total, initial=initial, desc=desc)


def _route_to_root(library_logger: str) -> None:
    """Drop a library's own console handlers so that its records reach the root logger's."""
    logger = logging.getLogger(library_logger)
    for handler in list(logger.handlers):
        if type(handler) is logging.StreamHandler:
            logger.removeHandler(handler)
    logger.propagate = True


def setup_console() -> None:
    """Silence the libraries' progress bars and give their log lines the package's format.

    Turns off the bars of transformers ("Loading weights", "Writing model shards"), huggingface_hub
    and datasets; routes those libraries' loggers and Python warnings through the root logger; and,
    in a process whose logging nobody has configured (an entry point outside Hydra), logs INFO and
    above to stderr in :data:`LOG_FORMAT`.
    """
    import datasets
    import transformers.utils.logging

    transformers.utils.logging.disable_progress_bar()  # huggingface_hub's bars too
    datasets.disable_progress_bars()
    for library in LIBRARY_LOGGERS:
        _route_to_root(library)
    logging.captureWarnings(True)
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(log_formatter())
        root.addHandler(handler)
        root.setLevel(logging.INFO)
