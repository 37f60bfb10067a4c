"""Policy, reference log-probs (by mode) and the evaluation hook of a run."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig

from prefopt.data.control_tokens import fit_embeddings
from prefopt.eval.settings import EvalSettings
from prefopt.losses import PreferenceLoss
from prefopt.models.loading import (
    apply_lora,
    load_causal_lm,
    load_frozen_reference,
    model_fingerprint,
)
from prefopt.models.logprobs import compile_backbone
from prefopt.results.store import atomic_write_json
from prefopt.trainer.checkpoint import checkpoint_name
from prefopt.trainer.data_setup import PreparedData, pair_dicts
from prefopt.trainer.reference import (
    LIVE_MODES,
    LiveReference,
    PiRef,
    Reference,
    adapter_off_for,
    build_reference,
)
from prefopt.trainer.reference_sync import ReferenceSync
from prefopt.trainer.reference_tables import ReferenceTables
from prefopt.trainer.settings import TrainerSettings
from prefopt.trainer.setup import Resolved, is_main_process
from prefopt.trainer.state import HeldOut

log = logging.getLogger(__name__)


@dataclass
class PreparedModels:
    """The policy and everything that answers for pi_ref."""

    policy: torch.nn.Module
    train_reference: Reference | None  # None for reference-free losses
    heldout: dict[str, HeldOut]
    eval_reference_model: Callable[[], torch.nn.Module]  # loads the baseline of win rate and KL
    baseline_fingerprint: str  # fingerprint of that baseline (keys its cached samples)
    cache_keys: dict[str, str] = field(default_factory=dict)
    reference_sync: ReferenceSync | None = None  # TR-DPO's update of train_reference, if on
    pi_ref: PiRef | None = None  # the run's live pi_ref, loaded on first use (online algorithms)
    reference_path: str | None = None  # pi_ref's directory or hub id


def prepare_models(
    cfg: DictConfig,
    resolved: Resolved,
    loss_fn: PreferenceLoss,
    data: PreparedData,
    cache_dir: Path,
    accelerator,
) -> PreparedModels:
    """Load the policy (LoRA when configured) and build the reference for training and eval."""
    device = accelerator.device
    trainer = TrainerSettings.from_config(cfg.trainer)
    policy = load_causal_lm(resolved.model_path, cfg.model)
    fit_embeddings(policy, data.tokenizer)  # a loss's control tokens (csft) grew the tokenizer
    if cfg.model.lora.enabled:
        policy = apply_lora(policy, cfg.model.lora)
    policy.to(device)
    if trainer.compile:
        if accelerator.num_processes > 1:
            log.warning("trainer.compile: several processes train through DDP's forward, eager")
        if not compile_backbone(policy):
            log.warning("trainer.compile: this model takes the full-logits path; nothing compiled")
    mode = trainer.reference
    lora_on_pi_ref = cfg.model.lora.enabled and resolved.reference_path == resolved.model_path
    pi_ref = PiRef(
        policy,
        lambda: load_frozen_reference(resolved.reference_path, cfg.model).to(device),
        adapter_off_for(mode, lora_on_pi_ref),
    )
    tables = None
    if mode not in LIVE_MODES:
        tables = ReferenceTables(
            cache_dir,
            model_fingerprint(resolved.reference_path, cfg.model),
            cfg.model.dtype,
            data.tokenizer.pad_token_id,
            trainer.reference_batch_size,
            device,
        )
    per_token = "ref_logps" in loss_fn.token_inputs  # the tables also hold per-token log-probs
    train_reference, reference_sync = None, None
    if trainer.reference_sync_every:  # TR-DPO: a copy of its own moves; evaluation keeps pi_ref
        train_reference = LiveReference(
            load_frozen_reference(resolved.reference_path, cfg.model).to(device)
        )
        reference_sync = ReferenceSync(
            train_reference, trainer.reference_sync_every, trainer.reference_sync_alpha
        )
    elif loss_fn.requires_reference:
        train_reference = build_reference(
            mode, pi_ref, data.train_items, "train", tables, per_token
        )
    heldout = {}
    for split, loss_items in data.heldout_loss_items.items():
        pairs = data.heldout_pairs.get(split, [])
        pair_ref = None
        if pairs:
            pair_ref = build_reference(mode, pi_ref, pairs, f"{split}_pairs", tables, per_token)
        loss_ref = pair_ref
        if loss_items is not pairs and loss_fn.requires_reference:
            name = f"{split}_{loss_fn.data_format}"
            loss_ref = build_reference(mode, pi_ref, loss_items, name, tables, per_token)
        heldout[split] = HeldOut(pairs, loss_items, pair_ref, loss_ref)
    baseline = pi_ref
    if resolved.baseline_path != resolved.reference_path:
        baseline = PiRef(
            policy,
            lambda: load_frozen_reference(resolved.baseline_path, cfg.model).to(device),
            adapter_off=False,
        )
    samples_pi_ref = EvalSettings.from_config(cfg.eval).generate and baseline is pi_ref
    if tables is not None and not samples_pi_ref:
        pi_ref.release()  # tables filled and nothing samples from pi_ref: free it
    return PreparedModels(
        policy,
        train_reference,
        heldout,
        baseline.module,
        model_fingerprint(resolved.baseline_path, cfg.model),
        {} if tables is None else tables.keys,
        reference_sync,
        pi_ref,
        resolved.reference_path,
    )


def run_evaluator(cfg, task, data, models):
    """The generation evaluator of a run: its judge (a proxy reward model trains on the run's
    training pairs), baseline and held-out prompts; used by the trainer and prefopt.evaluate."""
    from prefopt.eval import build_evaluator

    return build_evaluator(
        cfg,
        data.tokenizer,
        models.eval_reference_model(),
        models.baseline_fingerprint,
        data.eval_prompts,
        pair_dicts(data.train_records),
        task=task,
        device=str(next(models.policy.parameters()).device),
    )


def generation_hook(cfg, task, resolved, data, models, cache_dir, run_dir):
    """The evaluator's call for the trainer, and the metric that selects the best checkpoint."""
    if not EvalSettings.from_config(cfg.eval).generate:
        return None, "reward_accuracy"
    evaluator = run_evaluator(cfg, task, data, models)
    seed = int(cfg.seed)
    write_best_of_n(cfg, evaluator, Path(run_dir))

    def evaluate(model, split: str, step: int) -> dict:
        path = Path(run_dir) / "samples" / f"{checkpoint_name(step)}_{split}.jsonl"
        return evaluator.evaluate(model, split, step, seed, samples_path=path)

    return evaluate, "win_rate"


def write_best_of_n(cfg, evaluator, run_dir: Path) -> None:
    """best_of_n.json: pi_ref's best-of-n under the judge on validation (the frontier's baseline).

    Its samples are cached per sweep; pairwise judges have no best-of-n and write nothing.
    """
    ns = list(EvalSettings.from_config(cfg.eval).best_of_n_ns)
    path = run_dir / "best_of_n.json"
    if not ns or not evaluator.judge.pointwise or path.exists() or not is_main_process():
        return
    atomic_write_json(path, evaluator.best_of_n("validation", ns))


def save_policy(model: torch.nn.Module, tokenizer, path: Path, cfg: DictConfig) -> None:
    """save_pretrained the final policy (LoRA merged when asked) so it loads as a plain model."""
    if cfg.model.lora.enabled and cfg.model.lora.merge_on_save:
        model = model.merge_and_unload()
    model.save_pretrained(str(path), safe_serialization=True)
    tokenizer.save_pretrained(str(path))
