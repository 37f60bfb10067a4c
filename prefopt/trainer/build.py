"""A run put together: from a checked config to the :class:`Run` the trainer trains.

:func:`build_run` runs every step in the order that fails soonest: the task is resolved (built or
loaded), data and sampling lengths are checked against the models' context lengths before any data is
read, the data is read, the step schedule (which needs only the data size) is checked before any model
is loaded, then the policy, the reference log-probs and the evaluation hook are built. The config's own
checks (:func:`prefopt.trainer.setup.check_config`) come before all of it, in the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from omegaconf import DictConfig

from prefopt.eval.settings import EvalSettings
from prefopt.losses import PreferenceLoss
from prefopt.online.build import PartsInputs, epoch_size, training_parts
from prefopt.trainer import data_setup, model_setup
from prefopt.trainer.batching import BatchSource
from prefopt.trainer.objective import Objective, PreferenceObjective
from prefopt.trainer.settings import TrainerSettings
from prefopt.trainer.setup import check_context, pick_device, resolve_task
from prefopt.trainer.state import HeldOut, Schedule

if TYPE_CHECKING:
    from prefopt.trainer.reference import Reference

# (policy, split, step) -> generation metrics of the policy on the split, logged at step
GenerationHook = Callable[[torch.nn.Module, str, int], dict]


@dataclass
class Run:
    """Everything one training run trains and evaluates with."""

    run_dir: Path  # metrics.jsonl, checkpoints/ and samples/ go here
    policy: torch.nn.Module  # the model trained (LoRA included), on the accelerator's device
    loss_fn: PreferenceLoss | None  # the preference loss (held-out rows too); None: none trained
    batches: BatchSource  # each optimiser step's items (FixedBatches: the training data)
    reference: Reference | None  # pi_ref's log-probs of the training batches; None if unused
    heldout: dict[str, HeldOut]  # held-out pairs and loss items per split (validation, test)
    tokenizer: object  # the policy's tokenizer (saved with the final policy)
    accelerator: object  # accelerate.Accelerator: device, precision, processes
    evaluate_generations: GenerationHook | None = None  # None: pair metrics only
    select_metric: str = "win_rate"  # the validation metric that picks the best checkpoint
    provenance: dict = field(default_factory=dict)  # input hashes for provenance.json
    settings: RunSettings | None = None  # the checked trainer and eval groups, batch in pairs
    step_hooks: list = field(default_factory=list)  # hook(trainer, row) after every step, first
    checkpointed: dict = field(
        default_factory=dict
    )  # name -> part whose state_dict checkpoints keep
    objective: Objective | None = None  # what a step minimises; None: loss_fn on the batches

    def __post_init__(self):
        if self.objective is None:
            self.objective = PreferenceObjective(self.loss_fn, self.reference)

    @property
    def pad_id(self) -> int:
        """The pad token's id (collation pads with it)."""
        return self.tokenizer.pad_token_id


@dataclass(frozen=True)
class RunSettings:
    """The checked `trainer` and `eval` groups the training loop reads."""

    trainer: TrainerSettings
    eval: EvalSettings

    @classmethod
    def from_config(
        cls, cfg: DictConfig, processes: int = 1, items_per_pair: int = 1
    ) -> RunSettings:
        """Both groups of ``cfg``, checked for a launch of ``processes`` processes, the batch in
        pairs of the data where each pair gave ``items_per_pair`` training items."""
        trainer = TrainerSettings.from_config(cfg.trainer, processes=processes)
        return cls(trainer.per_pair(items_per_pair), EvalSettings.from_config(cfg.eval))


def build_run(cfg: DictConfig, run_dir: Path, loss_fn: PreferenceLoss) -> Run:
    """The run described by ``cfg`` (already checked, ``loss_fn`` its loss), writing into
    ``run_dir``: threads, seed and accelerator set up, then task, data, models, evaluation and
    what the steps train on (the data set, or an online algorithm's samples)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    if cfg.get("num_threads"):
        torch.set_num_threads(int(cfg.num_threads))
    torch.manual_seed(int(cfg.seed))
    device = pick_device(cfg.device)
    # Runs of one sweep share this process (Hydra's basic launcher); accelerate keeps the first
    # run's precision in a singleton unless it is reset (the process group is kept).
    AcceleratorState._reset_state(reset_partial_state=False)
    accelerator = Accelerator(mixed_precision=cfg.trainer.precision, cpu=device.type == "cpu")
    RunSettings.from_config(cfg, accelerator.num_processes)  # checked before any work
    cache_dir = Path(cfg.cache_dir).expanduser().resolve()
    task, resolved = resolve_task(cfg, cache_dir)
    check_context(cfg, resolved)
    data = data_setup.prepare_data(cfg, resolved, loss_fn, run_dir)
    settings = RunSettings.from_config(cfg, accelerator.num_processes, data.items_per_pair)
    check_schedule(epoch_size(cfg, data), settings, accelerator.num_processes)
    models = model_setup.prepare_models(cfg, resolved, loss_fn, data, cache_dir, accelerator)
    evaluate_generations, select_metric = model_setup.generation_hook(
        cfg, task, resolved, data, models, cache_dir, run_dir
    )
    parts = training_parts(
        PartsInputs(
            cfg, task, data, models, loss_fn, settings.trainer.batch_size, cache_dir, Path(run_dir)
        )
    )
    return Run(
        run_dir=Path(run_dir),
        policy=models.policy,
        loss_fn=parts.heldout_loss,
        batches=parts.batches,
        objective=parts.objective,
        settings=settings,
        reference=models.train_reference,
        heldout=models.heldout,
        tokenizer=data.tokenizer,
        accelerator=accelerator,
        evaluate_generations=evaluate_generations,
        select_metric=select_metric,
        provenance={
            "data_hashes": data.hashes,
            "reference_cache": models.cache_keys,
            "model_path": resolved.model_path,
        },
        **step_parts(models.reference_sync, parts.trained_parts),
    )


def step_parts(sync, trained: dict) -> dict:
    """The Run fields of what updates itself after each step, whose state checkpoints keep: TR-DPO's
    moving reference (its weights), the models an online algorithm trains beside the policy."""
    parts = dict(trained) if sync is None else {"reference_sync": sync, **trained}
    return {"step_hooks": list(parts.values()), "checkpointed": parts}


def check_schedule(num_items: int, settings: RunSettings, processes: int) -> Schedule:
    """The schedule of ``num_items`` training items; refuses a batch larger than the data and a
    warm-up longer than the run (needs the data size only: checked before any model loads)."""
    schedule = Schedule.from_config(
        num_items, settings.trainer, settings.eval.eval_every, processes
    )
    settings.trainer.warmup_steps(schedule.total_steps)
    return schedule
