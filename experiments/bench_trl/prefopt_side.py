"""prefopt's side of the benchmark: one run through ``run_training``, its steps timed by a hook.

The trainer's ``on_step_end`` hook notes the clock when each step ends, the tokens it trained on and
its first training row (the step-0 loss, computed before the first update). Step 1 started
``trainer.state.train_seconds`` (the time inside its train step) before its hook ran.
"""

from __future__ import annotations

import time
from pathlib import Path

from measure import StepClock

from prefopt.trainer.loop import Trainer
from prefopt.trainer.run import run_training


def train_prefopt(cfg, run_dir: Path) -> dict:
    """One prefopt run: step end times (wall, CPU), tokens per step, setup time, step-0 metrics,
    peak GPU memory through step 1 and over the later steps (None on a CPU)."""
    clock, tokens, rows = StepClock(), [], []

    def on_step_end(trainer: Trainer, row: dict) -> None:
        clock.step_end(time.perf_counter() - trainer.state.train_seconds)
        tokens.append(trainer.state.tokens_seen - sum(tokens))
        rows.append(row)

    start = time.perf_counter()
    run_training(cfg, run_dir, on_step_end=[on_step_end])
    return {
        **clock.result(start, time.perf_counter()),
        "tokens": tokens,
        "step0_loss": rows[0]["loss"],
        "step0_chosen_logps": rows[0]["chosen_logps"],  # mean over the batch's pairs
    }
