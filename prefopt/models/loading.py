"""Loading policy, reference and tokenizer exactly as a hub model would be loaded.

``model.name_or_path`` is a hub id or a local directory made by ``save_pretrained``; the built-in task's
pi_ref arrives as such a directory. Weights load from safetensors and ``trust_remote_code`` stays off
unless the config turns it on. Dropout is switched off in every model (so the first DPO loss is log 2 and
a cached reference agrees with a live one).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_dtype(name: str) -> torch.dtype:
    """Map a config string to a torch dtype, with an error naming the valid ones."""
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; valid: {sorted(DTYPES)}")
    return DTYPES[name]


def load_tokenizer(path: str | Path, model_cfg: Mapping):
    """The tokenizer, with a pad token (EOS when the tokenizer has none) and right padding."""
    tokenizer = AutoTokenizer.from_pretrained(
        str(path),
        revision=model_cfg.get("revision"),
        trust_remote_code=bool(model_cfg.get("trust_remote_code", False)),
    )
    if tokenizer.eos_token_id is None:
        raise ValueError(f"tokenizer of {path} has no eos_token; responses need one to end")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer


def disable_dropout(model: torch.nn.Module) -> None:
    """Set p=0 on every dropout module (the config's rates are ignored after this)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def load_causal_lm(path: str | Path, model_cfg: Mapping) -> torch.nn.Module:
    """A causal LM from a hub id or a local ``save_pretrained`` directory, dropout off."""
    model = AutoModelForCausalLM.from_pretrained(
        str(path),
        revision=model_cfg.get("revision"),
        trust_remote_code=bool(model_cfg.get("trust_remote_code", False)),
        use_safetensors=model_cfg.get("use_safetensors", True),
        dtype=resolve_dtype(model_cfg.get("dtype", "float32")),
        attn_implementation=model_cfg.get("attn_implementation"),
    )
    disable_dropout(model)
    if model_cfg.get("gradient_checkpointing", False):
        model.gradient_checkpointing_enable()
    return model


def apply_lora(model: torch.nn.Module, lora_cfg: Mapping) -> torch.nn.Module:
    """Wrap ``model`` in a peft LoRA adapter; only the adapter's weights train."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=int(lora_cfg["r"]),
        lora_alpha=float(lora_cfg["alpha"]),
        lora_dropout=0.0,
        target_modules=_target_modules(lora_cfg["target_modules"]),
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, config)
    disable_dropout(model)
    return model


def _target_modules(value):
    """peft accepts a module-name list or the string "all-linear"."""
    return value if isinstance(value, str) else list(value)


def load_frozen_reference(path: str | Path, model_cfg: Mapping) -> torch.nn.Module:
    """pi_ref as a separate frozen copy in eval mode."""
    model = load_causal_lm(path, model_cfg)
    model.eval()
    model.requires_grad_(False)
    return model


def model_fingerprint(path: str | Path, model_cfg: Mapping) -> str:
    """A hash that changes when the model's config or weights change.

    For a local directory: config.json and, per weight file, its name, size and the sha256 of its first
    and last MiB (cheap even for large checkpoints). For a hub id: the id and revision.
    """
    digest = hashlib.sha256()
    local = Path(path)
    if local.is_dir():
        digest.update((local / "config.json").read_bytes())
        for weights in sorted(local.glob("*.safetensors")) + sorted(local.glob("*.bin")):
            size = weights.stat().st_size
            digest.update(f"{weights.name}:{size}".encode())
            with open(weights, "rb") as handle:
                digest.update(handle.read(1 << 20))
                handle.seek(max(0, size - (1 << 20)))
                digest.update(handle.read(1 << 20))
    else:
        digest.update(json.dumps([str(path), model_cfg.get("revision")]).encode())
    digest.update(str(model_cfg.get("dtype", "float32")).encode())
    return digest.hexdigest()[:16]
