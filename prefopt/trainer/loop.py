"""The training loop shared by every loss.

An optimiser step consumes a global batch of items (``batch_size`` pairs or unpaired examples of the
training data, or an online algorithm's samples of the current policy) from the run's batch source
(:mod:`prefopt.trainer.batching`), split into micro-batches of ``micro_batch_size`` across processes;
the run's objective (:mod:`prefopt.trainer.objective`) gives each item's loss, and the losses are
summed and divided by the global batch's size. For a loss whose per-example loss depends on its own
example alone (DPO, IPO, ORPO, SimPO and the other losses without a batch statistic) a step of B x 1
equals B/k x k accumulation steps, up to rounding. It does not hold for the losses with a batch
statistic: KTO's KL baseline z0 is estimated over each micro-batch, and BCO's running reward mean is
updated once per micro-batch, each on its own process. Evaluation (held-out pair metrics, and the
generation-based evaluator when one is given) runs every ``eval_interval`` steps and at the end, and a
checkpoint follows every evaluation, so a resumed run never repeats work it had logged. Non-finite loss
or gradient stops the run with a message naming the step, after saving the batch.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from prefopt.console import progress
from prefopt.eval.heldout import heldout_metrics
from prefopt.results.store import MetricsLog, atomic_write_json
from prefopt.trainer.batching import GlobalBatch, micro_batches, to_device
from prefopt.trainer.build import Run, RunSettings
from prefopt.trainer.checkpoint import (
    best_weights_dir,
    list_checkpoints,
    load_checkpoint,
    load_checkpoint_weights,
    load_loss_state,
    save_best_weights,
    save_checkpoint,
)
from prefopt.trainer.interrupt import NO_STOP, RunInterrupted, StopRequest
from prefopt.trainer.optim import build_optimizer, build_scheduler
from prefopt.trainer.state import Schedule, TrainState
from prefopt.trainer.step import StepValues, add_sums, to_host

log = logging.getLogger(__name__)


class NonFiniteError(RuntimeError):
    """Loss or gradient became NaN/inf; the message names the step and where the batch was saved."""


StepHook = Callable[["Trainer", dict], None]  # hook(trainer, row) after each optimiser step


@dataclass
class Hooks:
    """Calls the trainer makes besides its own work (see :class:`Trainer`)."""

    on_step_end: list[StepHook] = field(default_factory=list)
    sink: Callable[[dict], None] | None = None  # every metrics.jsonl row too (wandb)


class Trainer:
    """Runs one training to the end, resuming from the newest checkpoint in ``run.run_dir``.

    ``Trainer(run, settings, hooks)``: the :class:`~prefopt.trainer.build.Run` to train, its checked
    ``trainer`` and ``eval`` settings, and optional :class:`Hooks`.

    ``hooks.on_step_end``: callables ``hook(trainer, row) -> None``, called in order on every
    process after each optimiser step, once the step's bookkeeping is done (``trainer.state.step``
    counts the step, ``trainer.state.tokens_seen`` includes its tokens, its row is in
    metrics.jsonl when ``trainer.log_every`` logs it) and before the evaluation and checkpoint that
    may follow it. ``row`` is the step's training row as metrics.jsonl holds it: ``split`` ("train"),
    ``step``, ``epoch``, ``loss``, ``grad_norm``, ``lr`` and the other step metrics (host floats).
    A hook must not change the training state; one that raises stops the run there (a
    KeyboardInterrupt marks it interrupted: it resumes from the newest checkpoint).
    """

    def __init__(self, run: Run, settings: RunSettings, hooks: Hooks | None = None):
        self.run, self.settings, self.hooks = run, settings, hooks or Hooks()
        self.run_dir, self.objective, self.batches = run.run_dir, run.objective, run.batches
        self.acc = run.accelerator
        self.schedule = Schedule.from_config(
            run.batches.size, settings.trainer, settings.eval.eval_every, self.acc.num_processes
        )
        if self.schedule.micro_batch_size < self.objective.min_batch_size:
            raise ValueError(
                f"{self.objective.name!r} needs micro-batches of at least "
                f"{self.objective.min_batch_size} examples; got {self.schedule.micro_batch_size}"
            )
        optimizer = build_optimizer(run.policy.parameters(), settings.trainer)
        self.scheduler = build_scheduler(optimizer, self.schedule.total_steps, settings.trainer)
        self.policy, self.optimizer = self.acc.prepare(run.policy, optimizer)
        self.metrics = MetricsLog(self.run_dir / "metrics.jsonl")
        self.state = TrainState()

    # ---------------------------------------------------------------- state
    def _state_dict(self) -> dict:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "loss": self.objective.state_dict(),
            "batches": self.batches.state_dict(),
            "rng": torch.get_rng_state(),
            "step": self.state.step,
            "tokens_seen": self.state.tokens_seen,
            "best": self.state.best,
            "train_seconds": self.state.train_seconds,
            "eval_seconds": self.state.eval_seconds,
            "parts": {name: part.state_dict() for name, part in self.run.checkpointed.items()},
        }

    def _checkpoint(self) -> None:
        if not self.acc.is_main_process:
            return
        save_checkpoint(
            self.run_dir,
            self.state.step,
            self.acc.unwrap_model(self.policy),
            self._state_dict(),
            self.settings.trainer.keep_checkpoints,
        )

    def resume(self) -> bool:
        """Restore the newest complete checkpoint; True when one was found."""
        checkpoints = list_checkpoints(self.run_dir)
        if not checkpoints:
            self.metrics.truncate_after(-1)
            return False
        state = load_checkpoint(checkpoints[-1], self.acc.unwrap_model(self.policy))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.objective.load_state_dict(state["loss"])
        self.batches.load_state_dict(state.get("batches", {}))  # older checkpoints hold none
        for name, part in self.run.checkpointed.items():
            part.load_state_dict(state["parts"][name])
        torch.set_rng_state(state["rng"])
        self.state = TrainState(
            step=int(state["step"]),
            tokens_seen=int(state["tokens_seen"]),
            best=dict(state["best"]),
            train_seconds=float(state["train_seconds"]),
            eval_seconds=float(state["eval_seconds"]),
        )
        self.metrics.truncate_after(self.state.step)
        log.info("resumed from %s (step %d)", checkpoints[-1].name, self.state.step)
        return True

    def _log(self, row: dict) -> None:
        """One row into metrics.jsonl (and the optional sink), from the main process only."""
        if not self.acc.is_main_process:
            return
        self.metrics.append(row)
        if self.hooks.sink is not None:
            self.hooks.sink(row)

    # ---------------------------------------------------------------- evaluation
    def _epoch(self, step: int) -> float:
        return step / self.schedule.steps_per_epoch

    def evaluate(self, splits: Sequence[str], step: int) -> dict[str, dict]:
        """Held-out pair metrics and generation metrics of the current weights for each split,
        logged to metrics.jsonl at ``step`` (the step those weights were trained to)."""
        start = time.perf_counter()
        rows = {}
        model = self.acc.unwrap_model(self.policy)
        for split in splits:
            held = self.run.heldout.get(split)
            row: dict = {}
            if held is not None and held.pairs:
                row.update(
                    heldout_metrics(
                        model,
                        self.run.loss_fn,
                        held.pairs,
                        held.loss_items,
                        held.pair_reference,
                        held.loss_reference,
                        self.run.pad_id,
                        self.settings.eval.pair_batch_size,
                        self.acc.device,
                    )
                )
            if self.run.evaluate_generations is not None:
                row.update(self.run.evaluate_generations(model, split, step))
            row = {"split": split, "step": step, "epoch": self._epoch(step), **row}
            self._log(row)
            rows[split] = row
        self.state.eval_seconds += time.perf_counter() - start
        return rows

    def _evaluate_and_select(self) -> None:
        """Validate; keep the weights of a new best (by the selection metric) for the test split.

        ``eval.test_at``: ``best_and_final`` (default) scores the test split at the end on the final
        and the best validation checkpoint's weights; ``final`` on the final weights; ``every`` at
        every evaluation; ``never`` not at all (tuning runs leave test to confirmation runs).
        """
        step = self.state.step
        validation = self.evaluate(["validation"], step)["validation"]
        if self.settings.eval.test_at == "every" and "test" in self.run.heldout:
            self.evaluate(["test"], step)
        metric = self.run.select_metric
        value = validation.get(metric)
        best_value = self.state.best.get("validation", {}).get(metric)
        is_best = value is not None and (best_value is None or value > best_value)
        if not self.state.best or is_best:
            if self.acc.is_main_process:
                save_best_weights(
                    self.run_dir, self.acc.unwrap_model(self.policy), self.objective.state_dict()
                )
            self.state.best = {
                "step": step,
                "epoch": self._epoch(step),
                "validation": validation,
                "test": {},
            }

    def _test_row(self, step: int) -> dict | None:
        """The test split's row logged at ``step``, if any (so a resumed run does not redo it)."""
        rows = [r for r in self.metrics.rows() if r["split"] == "test" and r["step"] == step]
        return rows[-1] if rows else None

    def _score_test(self) -> None:
        """Test the final weights and, under best_and_final, the best checkpoint's weights."""
        if "test" not in self.run.heldout or self.settings.eval.test_at == "never":
            return
        final_step, best_step = self.state.step, self.state.best.get("step")
        if self._test_row(final_step) is None:
            self.evaluate(["test"], final_step)
        best_untested = best_step not in (None, final_step) and self._test_row(best_step) is None
        if self.settings.eval.test_at == "best_and_final" and best_untested:
            self._restore_weights_and_loss(best_weights_dir(self.run_dir))
            self.evaluate(["test"], best_step)
            self._restore_weights_and_loss(list_checkpoints(self.run_dir)[-1])
        if best_step is not None:
            self.state.best["test"] = self._test_row(best_step) or {}

    def _restore_weights_and_loss(self, weights_dir: Path) -> None:
        """The policy's weights and the loss's state (BCO's running mean) saved in weights_dir."""
        load_checkpoint_weights(weights_dir, self.acc.unwrap_model(self.policy))
        loss_state = load_loss_state(weights_dir)
        if loss_state:
            self.objective.load_state_dict(loss_state)

    # ---------------------------------------------------------------- training
    def _fail(self, step: int, message: str, batch: dict) -> None:
        """Save the batch (one file per process where there are several) and stop the run."""
        name = "failed_batch.json"
        if self.acc.num_processes > 1:
            name = f"failed_batch.rank{self.acc.process_index}.json"
        path = self.run_dir / name
        atomic_write_json(
            path,
            {
                "step": step,
                "message": message,
                "item_indices": None if batch["index"] is None else batch["index"].tolist(),
                "input_ids": batch["input_ids"].tolist(),
            },
        )
        raise NonFiniteError(f"step {step}: {message}; batch saved to {path.name}")

    def _micro_step(
        self, batch: GlobalBatch, indices: list[int], sync: bool
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Forward and backward of one micro-batch; its scaled loss and metric sums stay on the
        device. Gradients are synchronised across processes on the step's last micro-batch only."""
        inputs = to_device(batch.collate(indices, self.run.pad_id), self.acc.device)
        precision = self.acc.mixed_precision != "no"
        autocast = self.acc.autocast if precision else contextlib.nullcontext
        context = contextlib.nullcontext() if sync else self.acc.no_sync(self.policy)
        with context:
            losses, sums = self.objective.micro_batch(self.policy, inputs, autocast)
            loss = losses.sum() / len(batch.indices) * self.acc.num_processes
            self.acc.backward(loss)
        return loss.detach().float(), sums

    def _check_finite(
        self, step: int, values: StepValues, batch: GlobalBatch, chunks: list[list[int]]
    ) -> None:
        """Stop the run at a non-finite micro-batch loss or gradient norm, saving the batch."""
        for k, value in enumerate(values.chunk_losses):
            if not math.isfinite(value):
                inputs = batch.collate(chunks[k], self.run.pad_id)
                self._fail(step, f"non-finite loss {value}", inputs)
        norm = values.grad_norm
        # fp16's loss scaler skips the steps whose gradients overflow by itself
        if norm is not None and self.acc.mixed_precision != "fp16" and not math.isfinite(norm):
            inputs = batch.collate(chunks[-1], self.run.pad_id)
            self._fail(step, f"non-finite gradient norm {norm}", inputs)

    def _optimizer_step(self) -> None:
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def train_step(self) -> dict[str, float]:
        """One optimiser step over the global batch; returns averaged training metrics.

        Metrics and each micro-batch's loss stay on the device until one transfer at the end of
        the step (no host sync per micro-batch); a non-finite loss or gradient norm is caught
        there, before the optimiser step (under DeepSpeed, whose backward steps the optimiser,
        after it, and before any checkpoint), and the offending micro-batch saved.
        """
        step = self.state.step
        batch = self.batches.batch(step, self.acc.unwrap_model(self.policy))
        chunks = micro_batches(
            batch.indices,
            self.schedule.micro_batch_size,
            self.acc.process_index,
            self.acc.num_processes,
        )
        sums: dict[str, torch.Tensor] = {}  # metric -> 0-dim sum over the step's items
        chunk_losses: list[torch.Tensor] = []  # each micro-batch's scaled loss, 0-dim
        for k, indices in enumerate(chunks):
            loss, metrics = self._micro_step(batch, indices, sync=k == len(chunks) - 1)
            chunk_losses.append(loss)
            add_sums(sums, metrics)
        max_norm = self.settings.trainer.max_grad_norm
        grad_norm = self.acc.clip_grad_norm_(self.policy.parameters(), max_norm or math.inf)
        values = to_host(sums, chunk_losses, grad_norm, self.acc.device)
        self._check_finite(step, values, batch, chunks)
        self._optimizer_step()
        self.state.tokens_seen += batch.num_tokens
        local = sum(len(c) for c in chunks)
        row = {name: value / local for name, value in values.sums.items()}
        row["grad_norm"] = math.nan if values.grad_norm is None else values.grad_norm
        row["lr"] = self.scheduler.get_last_lr()[0]
        row["tokens_trained"] = self.state.tokens_seen  # so far, this step's included
        return row | self.batches.metrics()

    def fit(self, stop: StopRequest = NO_STOP) -> dict:
        """Train to the end (or resume), evaluating and checkpointing on schedule.

        A stop signal during a step (``stop``) ends the run at that step's boundary with a
        checkpoint, raising RunInterrupted; resuming continues from it.
        """
        self.resume()
        self.policy.train()
        self.objective.train()
        sched = self.schedule
        if self.state.step == 0 and not self.state.best and self.settings.eval.at_start:
            self._evaluate_and_select()
            self._checkpoint()
        bar = progress(
            total=sched.total_steps,
            initial=self.state.step,
            desc=f"train {self.objective.name}",
            enabled=self.acc.is_main_process,
        )
        while self.state.step < sched.total_steps:
            with stop.deferred():
                start = time.perf_counter()
                metrics = self.train_step()
                self.state.step += 1
                self.state.train_seconds += time.perf_counter() - start
                bar.set_postfix(loss=f"{metrics['loss']:.4f}")
                bar.update(1)
                step = self.state.step
                row = {"split": "train", "step": step, "epoch": self._epoch(step), **metrics}
                if step % self.settings.trainer.log_every == 0:
                    self._log(row)
                for hook in [*self.run.step_hooks, *self.hooks.on_step_end]:
                    hook(self, row)
            done = self.state.step == sched.total_steps
            evaluated = self.state.step % sched.eval_interval == 0 or done
            if evaluated:
                self._evaluate_and_select()
                self._checkpoint()
            if stop.signum is not None:
                if not evaluated:
                    self._checkpoint()
                bar.close()
                raise RunInterrupted(stop.signum, f" at step {self.state.step} (checkpoint saved)")
        bar.close()
        return self.summary()

    def summary(self) -> dict:
        """Final and best metrics (deterministic numbers) and timings under *_seconds keys."""
        self._score_test()
        rows = self.metrics.rows()
        final = {}
        for split in ("validation", "test"):
            at_end = [r for r in rows if r["split"] == split and r["step"] == self.state.step]
            if at_end:
                final[split] = at_end[-1]
        return {
            "steps": self.state.step,
            "epochs": self._epoch(self.state.step),
            "tokens_seen": self.state.tokens_seen,
            "final": final,
            "best": self.state.best,
            "train_seconds": self.state.train_seconds,
            "eval_seconds": self.state.eval_seconds,
        }
