"""Loading policy, reference and tokenizer exactly as a hub model would be loaded.

``model.name_or_path`` is a hub id or a local directory made by ``save_pretrained``; the built-in task's
pi_ref arrives as such a directory. Weights load from safetensors and ``trust_remote_code`` stays off
unless the config turns it on. Dropout is switched off in every model (so the first DPO loss is log 2 and
a cached reference agrees with a live one).

Before anything is read, :func:`check_model_source` tells a local directory that does not exist from a
hub id (and refuses, with ``HF_HUB_OFFLINE=1``, a hub id that is not in the local hub cache), and
:func:`model_context_length` reads the model's context from its config alone. A load that fails on a
missing directory or on a truncated or corrupt file (weights, config, tokenizer; a local directory or the
hub cache's copy) raises a :class:`~prefopt.errors.ModelError` naming the file and what to do.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from huggingface_hub import constants as hub_constants
from huggingface_hub import try_to_load_from_cache
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from safetensors import SafetensorError, safe_open
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from prefopt.errors import ConfigError, ModelError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# JSON files of a model directory that a load reads (unreadable_model_file parses each one present)
MODEL_JSON_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "model.safetensors.index.json",
)
# config attributes that give a model's number of positions, in the order they are read
CONTEXT_ATTRIBUTES = ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length")
TRUTHY = ("1", "ON", "YES", "TRUE")  # values of HF_HUB_OFFLINE that turn the hub off
# The loading keys a `model` config holds (conf/model/hf.yaml gives each one's default and meaning)
# and what an empty config ({}: a model that no run's config describes, such as the proxy judge's
# base model or a test's) loads with: as saved, in float32, from safetensors, no code of its own.
AS_SAVED = {
    "revision": None,
    "trust_remote_code": False,
    "use_safetensors": True,
    "dtype": "float32",
    "attn_implementation": None,
    "gradient_checkpointing": False,
}


def resolve_dtype(name: str) -> torch.dtype:
    """Map a config string to a torch dtype, with an error naming the valid ones."""
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; valid: {sorted(DTYPES)}")
    return DTYPES[name]


def check_model_source(name_or_path: str | Path, key: str, revision: str | None = None) -> None:
    """Refuse, before anything is read, a model source that cannot load; ``key`` names its config key.

    A local path (one that exists, starts with ``/``, ``.`` or ``~``, or is no valid hub id) must be a
    directory with a ``config.json``; a hub id is accepted, unless ``HF_HUB_OFFLINE=1`` and the hub
    cache holds no copy of it (at ``revision``). Raises a ConfigError naming ``key`` and the path.
    """
    text = str(name_or_path)
    local = Path(os.path.expanduser(text))
    if local.is_dir() and not (local / "config.json").is_file():
        raise ConfigError(
            f"{key}={text!r}: {local} has no config.json (a model directory is one written by "
            "save_pretrained)"
        )
    problem = _unreachable_source(text, revision)
    if problem is not None:
        raise ConfigError(f"{key}={text!r}: {problem}")


def model_context_length(
    name_or_path: str | Path, revision: str | None = None, trust_remote_code: bool = False
) -> int | None:
    """The most positions the model takes (prompt + response), read from its config alone (no
    weights); None when the config states no limit."""
    with _named_load_failure(name_or_path, "config", revision):
        config = AutoConfig.from_pretrained(
            str(name_or_path), revision=revision, trust_remote_code=trust_remote_code
        )
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    for attribute in CONTEXT_ATTRIBUTES:
        value = getattr(text_config, attribute, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def unreadable_model_file(directory: str | Path) -> str | None:
    """What is wrong with the first file of a model directory that cannot be read (a JSON file
    that does not parse, a safetensors file whose header or tensors are cut off), or None."""
    directory = Path(directory)
    for name in MODEL_JSON_FILES:
        path = directory / name
        if path.is_file():
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                return f"{path} is truncated or corrupt (not valid JSON: {exc})"
    for path in sorted(directory.glob("*.safetensors")):
        try:
            with safe_open(str(path), framework="pt"):
                pass
        except (SafetensorError, OSError) as exc:
            return f"{path} is truncated or corrupt ({type(exc).__name__}: {exc})"
    return None


def _is_local_path(text: str) -> bool:
    """True for what can only be a local path: ``/``, ``.`` or ``~`` first, or no valid hub id."""
    if text.startswith(("/", ".", "~")):
        return True
    try:
        validate_repo_id(text)
    except HFValidationError:
        return True
    return False


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in TRUTHY


def _hub_snapshot(repo_id: str, revision: str | None) -> Path | None:
    """The hub cache's snapshot directory of a model (at ``revision``), or None if not cached."""
    config = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    return Path(config).parent if isinstance(config, str) else None


def _unreachable_source(text: str, revision: str | None) -> str | None:
    """What keeps a load from finding ``text`` at all (a missing local directory, a file, a hub id
    that HF_HUB_OFFLINE=1 keeps from a hub cache that lacks it), or None."""
    local = Path(os.path.expanduser(text))
    if local.is_dir():
        return None
    if local.exists():
        return f"{local} is a file, not a model directory"
    if _is_local_path(text):
        return f"{local.absolute()}: no such directory"
    if _hub_offline() and _hub_snapshot(text, revision) is None:
        return (
            f"no local directory {text!r}, and the hub model is not in the local hub cache "
            f"({hub_constants.HF_HUB_CACHE}) while HF_HUB_OFFLINE=1; download it first "
            f"(hf download {text}), or unset HF_HUB_OFFLINE"
        )
    return None


def _load_problem(name_or_path: str | Path, revision: str | None) -> str | None:
    """Why loading from ``name_or_path`` failed, when the cause is a source that cannot be found
    or a file that cannot be read, with what to do; None for any other cause."""
    text = str(name_or_path)
    local = Path(os.path.expanduser(text))
    if local.is_dir():
        bad = unreadable_model_file(local)
        return bad and f"{bad}; save the model again (save_pretrained) or copy it again"
    missing = _unreachable_source(text, revision)
    if missing is not None:
        return missing
    snapshot = _hub_snapshot(text, revision)
    bad = unreadable_model_file(snapshot) if snapshot is not None else None
    return bad and (
        f"{bad}, in the hub cache's copy of {text!r}; delete {snapshot.parents[1]} and "
        "download the model again"
    )


@contextlib.contextmanager
def _named_load_failure(name_or_path: str | Path, what: str, revision: str | None) -> Iterator:
    """Turn a load's failure into a ModelError when :func:`_load_problem` finds its cause."""
    try:
        yield
    except Exception as exc:  # the library's error, whatever its type; kept when no cause is found
        problem = _load_problem(name_or_path, revision)
        if problem is None:
            raise
        raise ModelError(f"cannot load the {what}: {problem}") from exc


def loading_settings(model_cfg: Mapping) -> Mapping:
    """The :data:`AS_SAVED` keys of a `model` config, which must hold them all (a composed one
    does); an empty config gets :data:`AS_SAVED` itself."""
    if not model_cfg:
        return AS_SAVED
    missing = [key for key in AS_SAVED if key not in model_cfg]
    if missing:
        raise ConfigError(f"model.{missing[0]} is missing (conf/model/hf.yaml has every key)")
    return {key: model_cfg[key] for key in AS_SAVED}


def load_tokenizer(path: str | Path, model_cfg: Mapping):
    """The tokenizer, with a pad token (EOS when the tokenizer has none) and right padding."""
    settings = loading_settings(model_cfg)
    with _named_load_failure(path, "tokenizer", settings["revision"]):
        tokenizer = AutoTokenizer.from_pretrained(
            str(path),
            revision=settings["revision"],
            trust_remote_code=bool(settings["trust_remote_code"]),
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
    settings = loading_settings(model_cfg)
    with _named_load_failure(path, "model", settings["revision"]):
        model = AutoModelForCausalLM.from_pretrained(
            str(path),
            revision=settings["revision"],
            trust_remote_code=bool(settings["trust_remote_code"]),
            use_safetensors=settings["use_safetensors"],
            dtype=resolve_dtype(settings["dtype"]),
            attn_implementation=settings["attn_implementation"],
        )
    disable_dropout(model)
    if settings["gradient_checkpointing"]:
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
    settings = loading_settings(model_cfg)
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
        digest.update(json.dumps([str(path), settings["revision"]]).encode())
    digest.update(str(settings["dtype"]).encode())
    return digest.hexdigest()[:16]
