"""TRL's side: one DPOTrainer run on prefopt's model, data, batch order and optimiser: fp32 on a
CPU (bf16 autocast on a GPU, as prefopt), ``adamw_torch``, a constant learning rate, no saving, a
log row every step, no length cut; a sweep's runs evaluate once after the last step, as prefopt's.
"""

from __future__ import annotations

import time
from pathlib import Path

from datasets import load_dataset
from measure import StepClock
from transformers import AutoTokenizer, TrainerCallback
from trl import DPOConfig, DPOTrainer
from workload import Workload, batch_order, tokens_per_step


class ClockCallback(TrainerCallback):
    """Feeds the step clock each step's start and end."""

    def __init__(self, clock: StepClock):
        self.clock, self.step_start = clock, None

    def on_step_begin(self, args, state, control, **kwargs):
        """A step starts."""
        self.step_start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        """A step ends."""
        self.clock.step_end(self.step_start)


def dpo_config(
    work: Workload, out_dir: Path, precompute: bool, loss_type: str, beta: float, evaluate=False
) -> DPOConfig:
    """TRL's config for the workload; ``evaluate``: once after the last step."""
    return DPOConfig(
        output_dir=str(out_dir), save_strategy="no", report_to=[], logging_steps=1,
        per_device_train_batch_size=work.batch_size, max_steps=work.steps, seed=work.seed,
        train_sampling_strategy="sequential", learning_rate=work.lr, lr_scheduler_type="constant",
        optim="adamw_torch", bf16=work.precision == "bf16", use_cpu=work.device == "cpu",
        model_init_kwargs={"dtype": "float32"}, max_length=None,
        beta=beta, loss_type=[loss_type], precompute_ref_log_probs=precompute,
        precompute_ref_batch_size=work.reference_batch_size,
        eval_strategy="steps" if evaluate else "no", eval_steps=work.steps if evaluate else None,
        per_device_eval_batch_size=work.reference_batch_size,
    )  # fmt: skip


def train_trl(work: Workload, workdir: Path, config: DPOConfig) -> dict:
    """One TRL run on what ``prepare`` left in ``workdir``: StepClock's result, step-0 metrics."""
    clock = StepClock()
    dataset = load_dataset("json", data_files=str(workdir / "data" / "train.jsonl"), split="train")
    trainer = DPOTrainer(
        model=str(workdir / "model"),
        args=config,
        train_dataset=dataset.select(batch_order(work)),  # read in sequence: prefopt's batches
        eval_dataset=dataset if config.eval_strategy != "no" else None,
        processing_class=AutoTokenizer.from_pretrained(str(workdir / "model")),
        callbacks=[ClockCallback(clock)],
    )
    trainer.train()
    logs = next(row for row in trainer.state.log_history if "loss" in row)  # step 0's training row
    step0 = {"step0_loss": logs["loss"], "step0_chosen_logps": logs["logps/chosen"]}
    return {**clock.result(tokens_per_step(work)), **step0}
