"""prefopt's side of the benchmark: one run through ``run_training``, its steps timed by a hook.

The trainer's ``on_step_end`` hook notes the clock when each step ends, the tokens it trained on and
its first training row (the step-0 loss, computed before the first update). ``run_training`` builds
its own Trainer, so the hook is added where the run module makes it: the clock starts when the
trainer is built, right before its first step.
"""

from __future__ import annotations

import time
from pathlib import Path

from measure import StepClock

import prefopt.trainer.run as run_module
from prefopt.trainer.loop import Hooks, Trainer


def train_prefopt(cfg, run_dir: Path) -> dict:
    """One prefopt run: step end times (wall, CPU), tokens per step, setup time, step-0 metrics,
    peak GPU memory before and from the first step (None on a CPU)."""
    clock, tokens, rows = StepClock(), [], []

    def on_step_end(trainer: Trainer, row: dict) -> None:
        clock.step_end()
        tokens.append(trainer.state.tokens_seen - sum(tokens))
        rows.append(row)

    def timed_trainer(run, settings, hooks: Hooks | None = None) -> Trainer:
        hooks = hooks or Hooks()
        hooks.on_step_end.append(on_step_end)
        clock.step_start()
        return Trainer(run, settings, hooks)

    start = time.perf_counter()
    run_module.Trainer = timed_trainer
    try:
        run_module.run_training(cfg, run_dir)
    finally:
        run_module.Trainer = Trainer
    return {
        **clock.result(start, time.perf_counter()),
        "tokens": tokens,
        "step0_loss": rows[0]["loss"],
        "step0_chosen_logps": rows[0]["chosen_logps"],  # mean over the batch's pairs
    }
