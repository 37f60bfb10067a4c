"""The training loop shared by every loss.

An optimiser step consumes ``batch_size`` items (pairs, or unpaired examples), split into micro-batches
of ``micro_batch_size`` across processes; the per-example losses are summed and divided by the global
batch size, so B x 1 step equals B/k x k accumulation steps. Evaluation (held-out pair metrics, and the
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
from pathlib import Path

import torch

from prefopt.console import progress
from prefopt.losses import PreferenceLoss
from prefopt.results.store import MetricsLog, atomic_write_json
from prefopt.trainer.batching import collate, epoch_order
from prefopt.trainer.checkpoint import (
    best_weights_dir,
    list_checkpoints,
    load_checkpoint,
    load_checkpoint_weights,
    save_best_weights,
    save_checkpoint,
)
from prefopt.trainer.heldout import heldout_metrics
from prefopt.trainer.interrupt import NO_STOP, RunInterrupted, StopRequest
from prefopt.trainer.items import TrainItem
from prefopt.trainer.optim import build_optimizer, build_scheduler
from prefopt.trainer.state import HeldOut, Schedule, TrainState
from prefopt.trainer.step import forward_loss, metric_sums

log = logging.getLogger(__name__)

TEST_AT = ("best_and_final", "final", "every")  # when the test split is scored (eval.test_at)


class NonFiniteError(RuntimeError):
    """Loss or gradient became NaN/inf; the message names the step and where the batch was saved."""


class Trainer:
    """Runs one training to the end, resuming from the newest checkpoint in ``run_dir``."""

    def __init__(
        self,
        cfg,
        run_dir: Path,
        policy: torch.nn.Module,
        loss_fn: PreferenceLoss,
        items: Sequence[TrainItem],
        reference,
        heldout: dict[str, HeldOut],
        pad_id: int,
        accelerator,
        seed: int,
        evaluate_generations: Callable[[torch.nn.Module, str, int], dict] | None = None,
        select_metric: str = "win_rate",
        sink: Callable[[dict], None] | None = None,
    ):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.loss_fn = loss_fn
        self.items = items
        self.reference = reference
        self.heldout = heldout
        self.pad_id = pad_id
        self.acc = accelerator
        self.seed = seed
        self.evaluate_generations = evaluate_generations
        self.select_metric = select_metric
        self.schedule = Schedule.from_config(
            len(items), cfg.trainer, cfg.eval.eval_every, accelerator.num_processes
        )
        if self.schedule.micro_batch_size < loss_fn.min_batch_size:
            raise ValueError(
                f"loss {loss_fn.name!r} needs micro-batches of at least {loss_fn.min_batch_size} "
                f"examples; got {self.schedule.micro_batch_size}"
            )
        optimizer = build_optimizer(policy.parameters(), cfg.trainer)
        self.scheduler = build_scheduler(optimizer, self.schedule.total_steps, cfg.trainer)
        self.policy, self.optimizer = accelerator.prepare(policy, optimizer)
        self.metrics = MetricsLog(self.run_dir / "metrics.jsonl")
        self.sink = sink
        self.state = TrainState()

    # ---------------------------------------------------------------- state
    def _state_dict(self) -> dict:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "loss": self.loss_fn.state_dict(),
            "rng": torch.get_rng_state(),
            "step": self.state.step,
            "tokens_seen": self.state.tokens_seen,
            "best": self.state.best,
            "train_seconds": self.state.train_seconds,
            "eval_seconds": self.state.eval_seconds,
        }

    def _checkpoint(self) -> None:
        if not self.acc.is_main_process:
            return
        save_checkpoint(
            self.run_dir,
            self.state.step,
            self.acc.unwrap_model(self.policy),
            self._state_dict(),
            int(self.cfg.trainer.keep_checkpoints),
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
        self.loss_fn.load_state_dict(state["loss"])
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
        if self.sink is not None:
            self.sink(row)

    # ---------------------------------------------------------------- evaluation
    def _epoch(self, step: int) -> float:
        return step / self.schedule.steps_per_epoch

    def evaluate(self, splits: Sequence[str]) -> dict[str, dict]:
        """Held-out pair metrics and generation metrics for each split; rows go to metrics.jsonl."""
        start = time.perf_counter()
        rows = {}
        model = self.acc.unwrap_model(self.policy)
        for split in splits:
            held = self.heldout.get(split)
            row: dict = {}
            if held is not None and held.pairs:
                row.update(
                    heldout_metrics(
                        model,
                        self.loss_fn,
                        held.pairs,
                        held.loss_items,
                        held.pair_reference,
                        held.loss_reference,
                        self.pad_id,
                        int(self.cfg.eval.pair_batch_size),
                        self.acc.device,
                    )
                )
            if self.evaluate_generations is not None:
                row.update(self.evaluate_generations(model, split, self.state.step))
            row = {
                "split": split,
                "step": self.state.step,
                "epoch": self._epoch(self.state.step),
                **row,
            }
            self._log(row)
            rows[split] = row
        self.state.eval_seconds += time.perf_counter() - start
        return rows

    def _evaluate_and_select(self) -> None:
        """Validate; keep the weights of a new best (by the selection metric) for the test split.

        ``eval.test_at``: ``best_and_final`` (default) scores the test split once at the end, on
        the final weights and on the best validation checkpoint's; ``final`` only on the final
        weights; ``every`` at every evaluation.
        """
        validation = self.evaluate(["validation"])["validation"]
        if self._test_at() == "every" and "test" in self.heldout:
            self.evaluate(["test"])
        value = validation.get(self.select_metric)
        best_value = self.state.best.get("validation", {}).get(self.select_metric)
        is_best = value is not None and (best_value is None or value > best_value)
        if not self.state.best or is_best:
            if self.acc.is_main_process:
                save_best_weights(self.run_dir, self.acc.unwrap_model(self.policy))
            self.state.best = {
                "step": self.state.step,
                "epoch": self._epoch(self.state.step),
                "validation": validation,
                "test": {},
            }

    def _test_at(self) -> str:
        policy = self.cfg.eval.get("test_at", "best_and_final")
        if policy not in TEST_AT:
            raise ValueError(f"eval.test_at={policy!r}; valid: {list(TEST_AT)}")
        return policy

    def _test_row(self, step: int) -> dict | None:
        """The test split's row logged at ``step``, if any (so a resumed run does not redo it)."""
        rows = [r for r in self.metrics.rows() if r["split"] == "test" and r["step"] == step]
        return rows[-1] if rows else None

    def _score_test(self) -> None:
        """Test the final weights and, under best_and_final, the best checkpoint's weights."""
        if "test" not in self.heldout:
            return
        final_step, best_step = self.state.step, self.state.best.get("step")
        if self._test_row(final_step) is None:
            self.evaluate(["test"])
        best_untested = best_step not in (None, final_step) and self._test_row(best_step) is None
        if self._test_at() == "best_and_final" and best_untested:
            model = self.acc.unwrap_model(self.policy)
            load_checkpoint_weights(best_weights_dir(self.run_dir), model)
            self.state.step = best_step  # the row is logged at the best step
            self.evaluate(["test"])
            self.state.step = final_step
            load_checkpoint_weights(list_checkpoints(self.run_dir)[-1], model)
        if best_step is not None:
            self.state.best["test"] = self._test_row(best_step) or {}

    # ---------------------------------------------------------------- training
    def _global_batch(self, step: int) -> list[int]:
        """Item indices of optimiser step ``step`` (the same on every process)."""
        epoch, offset = divmod(step, self.schedule.steps_per_epoch)
        order = epoch_order(len(self.items), self.seed, epoch)
        size = int(self.cfg.trainer.batch_size)
        return order[offset * size : (offset + 1) * size]

    def _micro_batches(self, global_batch: list[int]) -> list[list[int]]:
        """This process's micro-batches of the global batch."""
        micro = self.schedule.micro_batch_size
        chunks = [global_batch[i : i + micro] for i in range(0, len(global_batch), micro)]
        return chunks[self.acc.process_index :: self.acc.num_processes]

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
                "item_indices": batch["index"].tolist(),
                "input_ids": batch["input_ids"].tolist(),
            },
        )
        raise NonFiniteError(f"step {step}: {message}; batch saved to {path.name}")

    def train_step(self) -> dict[str, float]:
        """One optimiser step over the global batch; returns averaged training metrics.

        Metrics and each micro-batch's loss stay on the device until one transfer at the end of
        the step (no host sync per micro-batch); a non-finite loss or gradient norm is caught
        there, before the optimiser step (under DeepSpeed, whose backward steps the optimiser,
        after it, and before any checkpoint), and the offending micro-batch saved.
        """
        step = self.state.step
        size = int(self.cfg.trainer.batch_size)
        sums: dict[str, torch.Tensor] = {}  # metric -> 0-dim sum over the step's items
        chunk_losses: list[torch.Tensor] = []  # each micro-batch's scaled loss, 0-dim
        global_batch = self._global_batch(step)
        chunks = self._micro_batches(global_batch)
        autocast = self.acc.autocast if self.acc.mixed_precision != "no" else contextlib.nullcontext
        for k, indices in enumerate(chunks):
            batch = collate(self.items, indices, self.pad_id)
            batch = {
                key: v.to(self.acc.device) if torch.is_tensor(v) else v for key, v in batch.items()
            }
            sync = k == len(chunks) - 1
            context = contextlib.nullcontext() if sync else self.acc.no_sync(self.policy)
            with context:
                out, logps, _, _ = forward_loss(
                    self.policy, self.loss_fn, self.reference, batch, autocast
                )
                loss = out.losses.sum() / size * self.acc.num_processes
                self.acc.backward(loss)
            chunk_losses.append(loss.detach().float())
            for name, value in metric_sums(out, logps).items():
                sums[name] = sums[name] + value if name in sums else value
        max_norm = float(self.cfg.trainer.max_grad_norm)
        grad_norm = self.acc.clip_grad_norm_(self.policy.parameters(), max_norm or math.inf)
        if hasattr(grad_norm, "full_tensor"):  # FSDP2: a DTensor
            grad_norm = grad_norm.full_tensor()
        names = list(sums)
        device_values = [sums[n] for n in names] + chunk_losses  # one transfer for all of them
        if torch.is_tensor(grad_norm):
            device_values.append(grad_norm.detach().float().to(self.acc.device))
        values = torch.stack(device_values).tolist()
        known = grad_norm is not None  # DeepSpeed may not report one
        if torch.is_tensor(grad_norm):
            grad_norm = values[-1]
        grad_norm = float(grad_norm) if known else math.nan
        losses = values[len(names) : len(names) + len(chunks)]
        for k, value in enumerate(losses):
            if not math.isfinite(value):
                self._fail(
                    step, f"non-finite loss {value}", collate(self.items, chunks[k], self.pad_id)
                )
        # fp16's loss scaler skips the steps whose gradients overflow by itself
        if known and self.acc.mixed_precision != "fp16" and not math.isfinite(grad_norm):
            self._fail(step, f"non-finite gradient norm {grad_norm}", batch)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.state.tokens_seen += sum(self.items[i].num_tokens for i in global_batch)
        local = sum(len(c) for c in chunks)
        row = {name: values[i] / local for i, name in enumerate(names)}
        row["grad_norm"] = grad_norm
        row["lr"] = self.scheduler.get_last_lr()[0]
        return row

    def fit(self, stop: StopRequest = NO_STOP) -> dict:
        """Train to the end (or resume), evaluating and checkpointing on schedule.

        A stop signal during a step (``stop``) ends the run at that step's boundary with a
        checkpoint, raising RunInterrupted; resuming continues from it.
        """
        self.resume()
        self.policy.train()
        self.loss_fn.train()
        sched = self.schedule
        if self.state.step == 0 and not self.state.best and self.cfg.eval.at_start:
            self._evaluate_and_select()
            self._checkpoint()
        bar = progress(
            total=sched.total_steps,
            initial=self.state.step,
            desc=f"train {self.loss_fn.name}",
            enabled=self.acc.is_main_process,
        )
        log_every = int(self.cfg.trainer.log_every)
        while self.state.step < sched.total_steps:
            with stop.deferred():
                start = time.perf_counter()
                row = self.train_step()
                self.state.step += 1
                self.state.train_seconds += time.perf_counter() - start
                bar.set_postfix(loss=f"{row['loss']:.4f}")
                bar.update(1)
                if self.state.step % log_every == 0:
                    self._log(
                        {
                            "split": "train",
                            "step": self.state.step,
                            "epoch": self._epoch(self.state.step),
                            **row,
                        }
                    )
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
