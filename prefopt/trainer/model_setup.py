"""Policy, reference log-probs (by mode) and the evaluation hook of a run."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig

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
from prefopt.trainer.data_setup import PreparedData
from prefopt.trainer.reference import (
    CachedReference,
    LiveReference,
    cache_key,
    cached_table,
    compute_table,
)
from prefopt.trainer.settings import TrainerSettings
from prefopt.trainer.setup import Resolved, is_main_process
from prefopt.trainer.state import HeldOut

log = logging.getLogger(__name__)


class AdapterOff(torch.nn.Module):
    """pi_ref as a module: the peft policy with its adapter disabled, for evaluation."""

    def __init__(self, peft_model: torch.nn.Module):
        super().__init__()
        self.peft_model = peft_model

    def forward(self, *args, **kwargs):
        with self.peft_model.disable_adapter():
            return self.peft_model(*args, **kwargs)


@dataclass
class PreparedModels:
    """The policy and everything that answers for pi_ref."""

    policy: torch.nn.Module
    train_reference: object | None  # None for reference-free losses
    heldout: dict[str, HeldOut]
    eval_reference_model: Callable[[], torch.nn.Module]  # loads the baseline of win rate and KL
    reference_key: str  # fingerprint of that baseline (keys its cached samples)
    cache_keys: dict[str, str] = field(default_factory=dict)


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
    if cfg.model.lora.enabled:
        policy = apply_lora(policy, cfg.model.lora)
    policy.to(device)
    if trainer.compile:
        if accelerator.num_processes > 1:
            log.warning("trainer.compile: several processes train through DDP's forward, eager")
        if not compile_backbone(policy):
            log.warning("trainer.compile: this model takes the full-logits path; nothing compiled")
    fingerprint = model_fingerprint(resolved.reference_path, cfg.model)
    mode = trainer.reference

    @functools.cache
    def reference_model() -> torch.nn.Module:
        """pi_ref, loaded on first use: a cached-mode run whose caches all hit and that samples
        nothing loads no reference model."""
        return load_frozen_reference(resolved.reference_path, cfg.model).to(device)

    # pi_ref as the LoRA policy with its adapter off: in lora_disabled mode, and in cached mode
    # when the adapter sits on pi_ref itself (the cache is filled before the adapter changes)
    adapter_off = mode == "lora_disabled" or (
        mode == "cached"
        and cfg.model.lora.enabled
        and resolved.reference_path == resolved.model_path
    )

    def live_reference() -> LiveReference:
        if adapter_off:
            return LiveReference(policy, adapter_off=True)
        return LiveReference(reference_model())

    @functools.cache
    def eval_reference_model() -> torch.nn.Module:
        """The baseline of win rate and KL: pi_ref, or another model when eval names one."""
        if resolved.baseline_path != resolved.reference_path:
            return load_frozen_reference(resolved.baseline_path, cfg.model).to(device)
        return AdapterOff(policy) if adapter_off else reference_model()

    live = None if mode == "cached" else live_reference()
    baseline_key = model_fingerprint(resolved.baseline_path, cfg.model)
    pad_id = data.tokenizer.pad_token_id
    keys: dict[str, str] = {}

    def reference_for(items, name: str):
        if live is not None:
            return live
        key = cache_key(fingerprint, items, cfg.model.dtype)
        table, computed = cached_table(
            cache_dir,
            key,
            lambda: compute_table(
                live_reference(),
                items,
                pad_id,
                trainer.reference_batch_size,
                device,
                f"pi_ref {name}",
            ),
        )
        keys[name] = key
        verb = "computed" if computed else "loaded from cache (shared by the sweep)"
        print(f"reference log-probs for {name} ({len(items)} items): {verb} [{key}]")
        return CachedReference(table)

    train_reference = (
        reference_for(data.train_items, "train") if loss_fn.requires_reference else None
    )
    heldout = {}
    for split, loss_items in data.heldout_loss_items.items():
        pairs = data.heldout_pairs.get(split, [])
        pair_ref = reference_for(pairs, f"{split}_pairs") if pairs else None
        same = loss_items is pairs
        loss_ref = pair_ref if same else reference_for(loss_items, f"{split}_{loss_fn.data_format}")
        heldout[split] = HeldOut(pairs, loss_items, pair_ref, loss_ref)
    evaluates_against_pi_ref = EvalSettings.from_config(cfg.eval).generate and (
        resolved.baseline_path == resolved.reference_path
    )
    if live is None and not evaluates_against_pi_ref:
        reference_model.cache_clear()  # caches filled and nothing else needs pi_ref: free it
    return PreparedModels(
        policy, train_reference, heldout, eval_reference_model, baseline_key, keys
    )


def generation_hook(cfg, task, resolved, data, models, cache_dir, run_dir):
    """The evaluator's call for the trainer, and the metric that selects the best checkpoint."""
    if not EvalSettings.from_config(cfg.eval).generate:
        return None, "reward_accuracy"
    from prefopt.eval import build_evaluator

    train_pairs = [
        {"prompt": r.prompt, "chosen": r.chosen, "rejected": r.rejected}
        for r in data.train_records
        if hasattr(r, "chosen")
    ]
    evaluator = build_evaluator(
        cfg,
        data.tokenizer,
        models.eval_reference_model(),
        models.reference_key,
        data.eval_prompts,
        train_pairs,
        task=task,
        device=str(next(models.policy.parameters()).device),
    )
    seed = int(cfg.seed)
    write_best_of_n(cfg, evaluator, Path(run_dir))

    def evaluate(model, split: str, step: int) -> dict:
        path = Path(run_dir) / "samples" / f"step_{step:07d}_{split}.jsonl"
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
