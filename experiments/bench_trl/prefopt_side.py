"""prefopt's side of the benchmark: one run through ``run_training``, with each step's end recorded.

The only instrumentation is a Trainer subclass, put in place for the duration of the call, whose
``train_step`` notes the clock when the step returns, the tokens it trained on, and the first row of
metrics (the step-0 loss, computed before the first update).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from measure import gpu_peak_mib, reset_gpu_peak, synchronize

import prefopt.trainer.run as run_module
from prefopt.trainer.loop import Trainer


class TimedTrainer(Trainer):
    """The prefopt trainer, recording step end times, tokens per step and the first metrics row."""

    records: dict = {}

    def train_step(self) -> dict[str, float]:
        log = TimedTrainer.records
        if "first_step_start" not in log:
            log["setup_gpu_peak_mib"] = gpu_peak_mib()
            reset_gpu_peak()  # the steps' peak from here on
            log["first_step_start"] = time.perf_counter()
        tokens_before = self.state.tokens_seen
        row = super().train_step()
        synchronize()
        log.setdefault("step_ends", []).append(time.perf_counter())
        log["steps_gpu_peak_mib"] = gpu_peak_mib()  # the steps' peak so far (nothing after them)
        log.setdefault("step_ends_cpu", []).append(time.process_time())
        log.setdefault("tokens", []).append(self.state.tokens_seen - tokens_before)
        log.setdefault("first_row", dict(row))
        return row


@contextlib.contextmanager
def timed_trainer():
    """Run prefopt's run_training with TimedTrainer in place of Trainer; yields the records."""
    original = run_module.Trainer
    TimedTrainer.records = {}
    run_module.Trainer = TimedTrainer
    try:
        yield TimedTrainer.records
    finally:
        run_module.Trainer = original


def train_prefopt(cfg, run_dir: Path) -> dict:
    """One prefopt run: step end times (wall, CPU), tokens per step, setup time, step-0 metrics,
    peak GPU memory before and from the first step (None on a CPU)."""
    with timed_trainer() as records:
        start = time.perf_counter()
        run_module.run_training(cfg, run_dir)
        end = time.perf_counter()
    row = records["first_row"]
    return {
        "steps_gpu_peak_mib": records["steps_gpu_peak_mib"],  # first to last step
        "setup_gpu_peak_mib": records["setup_gpu_peak_mib"],
        "step_ends": records["step_ends"],
        "step_ends_cpu": records["step_ends_cpu"],
        "tokens": records["tokens"],
        "setup_seconds": records["first_step_start"] - start,
        "run_seconds": end - start,
        "step0_loss": row["loss"],
        "step0_chosen_logps": row["chosen_logps"],  # mean over the batch's pairs
    }
