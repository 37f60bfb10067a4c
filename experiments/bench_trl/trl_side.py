"""TRL's side of the benchmark: one DPOTrainer run on the same model, data, batches and optimiser.

Settings that differ from TRL's defaults, each to make the job identical to prefopt's:
``bf16=False`` on a CPU (fp32, like prefopt; on a GPU both use bf16 autocast over fp32 weights),
``optim="adamw_torch"`` (torch.optim.AdamW, prefopt's optimiser), constant learning rate without
warm-up, ``max_grad_norm=1.0``, no saving, ``logging_steps=1`` (prefopt logs every step too), and a
sampler that visits the pairs in prefopt's batch order. No evaluation in a throughput run; in the
sweep, each run evaluates the held-out pairs once after its last step, as every prefopt run does
(``eval_strategy="steps"``, ``eval_steps`` = the number of steps; the training file doubles as the
evaluation set on both sides). Everything else (reference model every step, or
``precompute_ref_log_probs``; its fused LM head; dropout disabled) is TRL's own.
"""

from __future__ import annotations

import time
from pathlib import Path

from measure import StepClock
from transformers import TrainerCallback
from trl import DPOConfig, DPOTrainer
from workload import Workload, batch_order


class OrderedDPOTrainer(DPOTrainer):
    """DPOTrainer whose training batches follow a fixed order (prefopt's epoch order)."""

    order: list[int] = []

    def _get_train_sampler(self, train_dataset=None):
        return list(self.order)  # a sampler is any sized iterable of indices


class ClockCallback(TrainerCallback):
    """Feeds the step clock, and keeps the first logged metrics."""

    def __init__(self, clock: StepClock):
        self.clock, self.step_start, self.first_logs = clock, None, None

    def on_step_begin(self, args, state, control, **kwargs):
        self.step_start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.clock.step_end(self.step_start)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.first_logs is None and logs and "loss" in logs:
            self.first_logs = dict(logs)


def dpo_config(
    work: Workload,
    out_dir: Path,
    precompute: bool,
    loss_type: str,
    beta: float,
    evaluate_at_end: bool = False,
) -> DPOConfig:
    """TRL's config for the workload (see the module docstring for what is not TRL's default)."""
    return DPOConfig(
        output_dir=str(out_dir),
        per_device_train_batch_size=work.batch_size,
        gradient_accumulation_steps=1,
        max_steps=work.steps,
        learning_rate=work.lr,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        adam_beta1=0.9,
        adam_beta2=0.999,
        optim="adamw_torch",
        max_grad_norm=1.0,
        bf16=work.precision == "bf16",
        use_cpu=work.device == "cpu",
        seed=work.seed,
        logging_steps=1,
        save_strategy="no",
        eval_strategy="steps" if evaluate_at_end else "no",
        eval_steps=work.steps if evaluate_at_end else None,
        per_device_eval_batch_size=work.reference_batch_size,
        report_to=[],
        dataloader_num_workers=0,
        disable_tqdm=False,
        beta=beta,
        loss_type=[loss_type],
        max_length=None,
        precompute_ref_log_probs=precompute,
        precompute_ref_batch_size=work.reference_batch_size,
        model_init_kwargs={"dtype": "float32"},
    )


def train_trl(
    work: Workload,
    model_dir: Path,
    data_file: Path,
    out_dir: Path,
    precompute: bool,
    loss_type: str = "sigmoid",
    beta: float | None = None,
    evaluate_at_end: bool = False,
) -> dict:
    """One TRL run: step end times (wall, CPU), setup and run time, step-0 metrics; with
    ``evaluate_at_end``, the held-out metrics of the data file after the last step."""
    from datasets import load_dataset
    from transformers import AutoTokenizer

    start = time.perf_counter()
    dataset = load_dataset("json", data_files=str(data_file), split="train")
    callback = ClockCallback(StepClock())
    OrderedDPOTrainer.order = batch_order(len(dataset), work.seed)
    config = dpo_config(
        work, out_dir, precompute, loss_type, work.beta if beta is None else beta, evaluate_at_end
    )
    OrderedDPOTrainer(
        model=str(model_dir),
        args=config,
        train_dataset=dataset,
        eval_dataset=dataset if evaluate_at_end else None,
        processing_class=AutoTokenizer.from_pretrained(str(model_dir)),
        callbacks=[callback],
    ).train()
    logs = callback.first_logs or {}
    return {
        **callback.clock.result(start, time.perf_counter()),
        "step0_loss": logs.get("loss"),
        "step0_chosen_logps": logs.get("logps/chosen"),
    }
