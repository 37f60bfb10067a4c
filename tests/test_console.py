"""Console output: progress bars only on a terminal, plain lines elsewhere."""

import contextlib
import io
import logging
import logging.config
import os
import re
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from prefopt import console
from prefopt.trainer.items import TrainItem
from prefopt.trainer.reference_tables import compute_table

PACKAGE = Path(__file__).resolve().parents[1] / "prefopt"


@contextlib.contextmanager
def stderr_pipe(monkeypatch):
    """``sys.stderr`` replaced by the write end of a real pipe; yields a function that closes it and
    returns what was written. Entered in the test body: pytest resets sys.stderr after fixtures."""
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, encoding="utf-8") as reader:
        writer = os.fdopen(write_fd, "w", encoding="utf-8")
        monkeypatch.setattr("sys.stderr", writer)

        def written() -> str:
            writer.close()
            return reader.read()

        yield written
        writer.close()


class SlowReference:
    """A stand-in for pi_ref: every sequence scores 0, each batch taking longer than tqdm's
    minimum redraw interval (so that a bar, if any, redraws)."""

    def logps(self, batch: dict) -> torch.Tensor:
        time.sleep(0.15)
        return torch.zeros(2 * len(batch["index"]))


def test_reference_pass_draws_no_bar_into_a_pipe(monkeypatch):
    items = [TrainItem([1, 2], [3], [4, 5]) for _ in range(6)]
    with stderr_pipe(monkeypatch) as stderr:
        table = compute_table(SlowReference(), items, 0, 2, torch.device("cpu"), "reference")[
            "logps"
        ]
        written = stderr()
    assert table.shape == (6, 2)
    assert "\r" not in written and not re.search(r"\d+%\|", written), written[:200]


def test_only_the_console_module_uses_tqdm():
    users = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "console.py"
        and re.search(r"^\s*(from|import) tqdm", path.read_text(), re.M)
    ]
    assert users == []


class FakeTerminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class FakeClock:
    """``monotonic`` for prefopt.console: time moves only when ``advance`` is called."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(console, "monotonic", fake)
    return fake


@pytest.fixture
def progress_records(caplog):
    """The messages of prefopt's progress lines logged during the test."""
    caplog.set_level(logging.INFO, logger=console.log.name)
    return lambda: [r.getMessage() for r in caplog.records if r.name == console.log.name]


def test_a_terminal_gets_a_tqdm_bar(monkeypatch, progress_records):
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert list(console.progress(range(4), desc="scoring")) == [0, 1, 2, 3]
    drawn = terminal.getvalue()
    assert "\r" in drawn and "scoring" in drawn and "4/4" in drawn
    assert progress_records() == []


def test_a_pipe_gets_a_plain_line_every_interval(monkeypatch, clock, progress_records):
    interval = int(console.LOG_INTERVAL_SECONDS)
    total = 3 * interval + 2
    with stderr_pipe(monkeypatch) as stderr:
        bar = console.progress(total=total, desc="train dpo")
        for step in range(1, total + 1):
            clock.advance(1.0)
            bar.set_postfix(loss=f"{1 / step:.4f}")  # the trainer's order: postfix, then update
            bar.update(1)
        bar.close()
        written = stderr()
    assert written == ""
    lines = progress_records()
    assert len(lines) == 4  # one per interval of 1-second steps, then the last line
    first_eta = console._duration(total - interval)
    assert lines[0] == (
        f"train dpo: {interval}/{total} ({100 * interval / total:.0f}%), 1.00 it/s, "
        f"ETA {first_eta}, loss={1 / interval:.4f}"
    )
    assert lines[-1].startswith(f"train dpo: {total}/{total} (100%), 1.00 it/s, in ")
    assert all("\r" not in line and len(line) < 120 for line in lines)


def test_a_resumed_bar_counts_its_rate_from_where_it_resumed(clock, progress_records):
    interval = console.LOG_INTERVAL_SECONDS
    bar = console.LogProgress(total=100, initial=90, desc="train ipo")
    clock.advance(interval)
    bar.update(2)  # 2 steps in one interval, 8 left
    seconds_per_step = interval / 2
    assert progress_records() == [
        f"train ipo: 92/100 (92%), {seconds_per_step:.1f} s/it, "
        f"ETA {console._duration(8 * seconds_per_step)}"
    ]


def test_a_bar_shorter_than_the_interval_logs_nothing(clock, progress_records):
    for _ in console.LogProgress(range(5), desc="pi_ref test_pairs"):
        clock.advance(console.LOG_INTERVAL_SECONDS / 10)
    assert progress_records() == []


def test_a_disabled_bar_writes_and_logs_nothing(monkeypatch, progress_records):
    for stderr in (FakeTerminal(), io.StringIO()):
        monkeypatch.setattr("sys.stderr", stderr)
        assert list(console.progress(range(3), desc="other rank", enabled=False)) == [0, 1, 2]
        assert stderr.getvalue() == ""
    assert progress_records() == []


@pytest.fixture
def restore_libraries():
    """Undo setup_console's changes to the libraries' bars, loggers and warnings after the test."""
    import datasets
    import transformers.utils.logging

    loggers = {name: logging.getLogger(name) for name in console.LIBRARY_LOGGERS}
    saved = {name: (list(lg.handlers), lg.propagate) for name, lg in loggers.items()}
    transformers.utils.logging.enable_progress_bar()  # a fresh process's state, whatever ran before
    datasets.enable_progress_bars()
    yield
    transformers.utils.logging.enable_progress_bar()  # huggingface_hub's bars too
    datasets.enable_progress_bars()
    for name, (handlers, propagate) in saved.items():
        loggers[name].handlers[:] = handlers
        loggers[name].propagate = propagate
    logging.captureWarnings(False)


def test_setup_console_silences_the_libraries_bars(tmp_path, capfd, restore_libraries):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=16, n_positions=8, n_embd=8, n_layer=1, n_head=1)
    GPT2LMHeadModel(config).save_pretrained(tmp_path / "before")
    GPT2LMHeadModel.from_pretrained(tmp_path / "before")
    assert "Loading weights" in capfd.readouterr().err  # the bar that setup_console turns off
    console.setup_console()
    GPT2LMHeadModel(config).save_pretrained(tmp_path / "after")
    GPT2LMHeadModel.from_pretrained(tmp_path / "after")
    captured = capfd.readouterr()
    assert "Loading weights" not in captured.err + captured.out
    assert "Writing model shards" not in captured.err + captured.out
    import datasets
    import huggingface_hub.utils

    assert huggingface_hub.utils.are_progress_bars_disabled()
    assert not datasets.is_progress_bar_enabled()


def test_setup_console_outside_hydra_logs_info_in_the_package_format(restore_libraries):
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    root.handlers[:] = []
    try:
        console.setup_console()
        installed = list(root.handlers)
        level = root.level
    finally:
        root.handlers[:], root.level = saved
    assert len(installed) == 1 and installed[0].formatter._fmt == console.LOG_FORMAT
    assert level == logging.INFO


class Collected(logging.Handler):
    """A handler that keeps the messages it receives."""

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_setup_console_routes_library_logs_through_the_root_logger(capfd, restore_libraries):
    from transformers.utils import logging as transformers_logging

    root_handler = Collected()
    logging.getLogger().addHandler(root_handler)
    try:
        library_logger = transformers_logging.get_logger("transformers.modeling_utils")
        console.setup_console()
        library_logger.warning("weights not used")
    finally:
        logging.getLogger().removeHandler(root_handler)
    assert root_handler.messages == ["weights not used"]
    assert "weights not used\n" not in capfd.readouterr().err  # and no unformatted copy after


def test_hydra_job_logging_writes_the_package_format(compose_config, tmp_path):
    job_logging = OmegaConf.to_container(compose_config([], hydra=True).hydra.job_logging)
    job_logging["handlers"]["file"]["filename"] = str(tmp_path / "train.log")
    job_logging["handlers"]["console"]["stream"] = "ext://sys.stderr"
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    try:
        logging.config.dictConfig(job_logging)
        logging.getLogger("prefopt.trainer.loop").info("step 5 done")
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:], root.level = saved
    line = (tmp_path / "train.log").read_text().strip()
    formatter = console.log_formatter()
    assert formatter._fmt == console.LOG_FORMAT
    assert re.fullmatch(
        r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\]\[prefopt\.trainer\.loop\]\[INFO\] - step 5 done",
        line,
    ), line
