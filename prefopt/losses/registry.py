"""Name -> loss class registry, entry-point plugins, and building losses from config.

A loss joins the registry by the ``@register_loss`` decorator, or from outside the package by an
entry point in the group ``prefopt.losses`` (``name = "package.module:LossClass"``, loaded only
when the name is asked for), or is built without registering from a Hydra-style ``_target_``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from prefopt.config_values import plain_dict
from prefopt.losses.base import CAPABILITY_FLAGS, TOKEN_INPUTS, PreferenceLoss
from prefopt.losses.combined import CombinedLoss

ENTRY_POINT_GROUP = "prefopt.losses"
COMBINED = "combined"
# Hydra instantiate keys that carry no hyperparameter.
_HYDRA_KEYS = ("_recursive_", "_convert_")

LossClass = TypeVar("LossClass", bound=type[PreferenceLoss])

_REGISTRY: dict[str, type[PreferenceLoss]] = {}


def register_loss(cls: LossClass) -> LossClass:
    """Class decorator: register ``cls`` under ``cls.name`` after checking its declaration."""
    check_loss_class(cls)
    if cls.name == COMBINED:
        raise ValueError(f"{COMBINED!r} is reserved for weighted combinations of losses")
    registered = _REGISTRY.get(cls.name)
    if registered is not None and _qualified_name(registered) != _qualified_name(cls):
        raise ValueError(
            f"loss name {cls.name!r} is already registered by {_qualified_name(registered)}"
        )
    _REGISTRY[cls.name] = cls
    return cls


def check_loss_class(cls: object) -> None:
    """Raise ValueError unless ``cls`` is a PreferenceLoss that declares itself fully.

    Every capability flag must be set in the class's own body, and every ``__init__``
    argument must be keyword-only with a default (that is how hyperparameters are listed).
    """
    if not (inspect.isclass(cls) and issubclass(cls, PreferenceLoss)):
        raise ValueError(f"{cls!r} is not a subclass of prefopt.losses.PreferenceLoss")
    missing = [flag for flag in CAPABILITY_FLAGS if flag not in cls.__dict__]
    if missing:
        raise ValueError(
            f"{cls.__name__} must set {', '.join(missing)} in its own class body "
            f"(required: {', '.join(CAPABILITY_FLAGS)})"
        )
    if not isinstance(cls.name, str) or not cls.name.isidentifier():
        raise ValueError(f"{cls.__name__}.name must be an identifier string, got {cls.name!r}")
    if cls.data_format not in ("paired", "unpaired"):
        raise ValueError(
            f"{cls.__name__}.data_format must be 'paired' or 'unpaired', got {cls.data_format!r}"
        )
    for flag in ("requires_reference", "stateful", "uses_lengths", "whole_batch"):
        if not isinstance(getattr(cls, flag), bool):
            raise ValueError(f"{cls.__name__}.{flag} must be a bool, got {getattr(cls, flag)!r}")
    unknown = set(cls.token_inputs) - set(TOKEN_INPUTS)
    if not isinstance(cls.token_inputs, frozenset) or unknown:
        raise ValueError(
            f"{cls.__name__}.token_inputs must be a frozenset of {', '.join(TOKEN_INPUTS)}, "
            f"got {cls.token_inputs!r}"
        )
    if cls.token_inputs and cls.data_format != "paired":
        raise ValueError(f"{cls.__name__}: token_inputs are given to paired losses only")
    tokens = cls.control_tokens
    if tokens is not None and not (
        isinstance(tokens, tuple)
        and len(tokens) == 2
        and all(isinstance(token, str) and token for token in tokens)
        and tokens[0] != tokens[1]
        and cls.data_format == "paired"
    ):
        raise ValueError(
            f"{cls.__name__}.control_tokens must be None or, for a paired loss, two distinct "
            f"non-empty strings (chosen, rejected), got {tokens!r}"
        )
    if not isinstance(cls.min_batch_size, int) or cls.min_batch_size < 1:
        raise ValueError(
            f"{cls.__name__}.min_batch_size must be an int >= 1, got {cls.min_batch_size!r}"
        )
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    loose = [
        p.name
        for p in parameters
        if p.kind is not inspect.Parameter.KEYWORD_ONLY or p.default is inspect.Parameter.empty
    ]
    if loose:
        raise ValueError(
            f"{cls.__name__}.__init__ arguments must be keyword-only with defaults: "
            f"{', '.join(loose)}"
        )


def available_losses() -> list[str]:
    """Sorted names of the registered losses and of the installed entry-point plugins."""
    return sorted(set(_REGISTRY) | set(_entry_points()))


def loss_class(name: str) -> type[PreferenceLoss]:
    """The class registered as ``name``, loading its entry point on first use."""
    if name not in _REGISTRY:
        entry_point = _entry_points().get(name)
        if entry_point is None:
            raise ValueError(
                f"unknown loss {name!r}; valid losses: {', '.join(available_losses())}"
            )
        try:
            cls = entry_point.load()
        except Exception as error:
            raise ValueError(
                f"cannot load loss {name!r} from entry point {entry_point.value!r}: {error}"
            ) from error
        check_loss_class(cls)
        if cls.name != name:
            raise ValueError(
                f"entry point {name!r} ({entry_point.value}) loads a loss named {cls.name!r}"
            )
        register_loss(cls)
    return _REGISTRY[name]


def build_loss(name: str, **hyperparameters: Any) -> PreferenceLoss:
    """Build the loss registered as ``name`` with the given hyperparameters.

    Raises ValueError for an unknown name, an unknown hyperparameter (naming the valid ones) or
    an out-of-range value.
    """
    return _instantiate(loss_class(name), hyperparameters)


def build_loss_from_config(cfg: Mapping[str, Any]) -> PreferenceLoss:
    """Build a loss from a config mapping (a plain dict or an OmegaConf DictConfig).

    Three forms:
      ``{"name": "dpo", "beta": 0.1}``: a registered loss and its hyperparameters;
      ``{"_target_": "package.module.LossClass", ...}``: any PreferenceLoss class by import path;
      ``{"name": "combined", "components": [{"name": "dpo", "weight": 1.0}, ...]}``: a weighted
      sum of losses (each component is itself one of these forms plus an optional ``weight``).
    """
    cfg = plain_dict(cfg, "a loss config")
    if "_target_" in cfg:
        if "name" in cfg:
            raise ValueError(f"give either 'name' or '_target_' in a loss config, got {cfg}")
        target = cfg.pop("_target_")
        for key in _HYDRA_KEYS:
            cfg.pop(key, None)
        cls = _import_target(target)
        check_loss_class(cls)
        return _instantiate(cls, cfg)
    if "name" not in cfg:
        raise ValueError(f"a loss config needs 'name' or '_target_', got keys {sorted(cfg)}")
    name = cfg.pop("name")
    if name == COMBINED:
        return _build_combined(cfg)
    return build_loss(name, **cfg)


def describe_losses() -> str:
    """A markdown table of the registered losses: capabilities, hyperparameters, paper."""
    rows = [
        "| loss | reference | data | hyperparameters (defaults) | paper |",
        "|---|---|---|---|---|",
    ]
    for name in available_losses():
        cls = loss_class(name)
        hyperparameters = ", ".join(f"{k}={v!r}" for k, v in cls.hyperparameters().items())
        doc = inspect.getdoc(cls) or ""
        arxiv = re.search(r"arXiv (\d{4}\.\d{4,5})", doc)
        summary = doc.split("\n", 1)[0].rstrip(".") + (
            f" (arXiv {arxiv.group(1)})" if arxiv else ""
        )
        reference = "yes" if cls.requires_reference else "no"
        rows.append(
            f"| `{name}` | {reference} | {cls.data_format} | {hyperparameters or '-'} | {summary} |"
        )
    return "\n".join(rows)


def _build_combined(cfg: dict[str, Any]) -> CombinedLoss:
    unknown = sorted(set(cfg) - {"components"})
    if unknown:
        raise ValueError(f"a combined loss takes only 'components', got also {unknown}")
    components = cfg.get("components")
    if isinstance(components, str) or not isinstance(components, Sequence) or not components:
        raise ValueError(
            f"a combined loss needs a non-empty list of components, got {components!r}"
        )
    losses, weights = [], []
    for component in components:
        component = plain_dict(component, "a combined loss component")
        weights.append(component.pop("weight", 1.0))
        losses.append(build_loss_from_config(component))
    return CombinedLoss(losses, weights)


def _instantiate(cls: type[PreferenceLoss], hyperparameters: Mapping[str, Any]) -> PreferenceLoss:
    valid = cls.hyperparameters()
    unknown = sorted(set(hyperparameters) - set(valid))
    if unknown:
        raise ValueError(
            f"loss {cls.name!r} has no hyperparameter {', '.join(map(repr, unknown))}; "
            f"valid hyperparameters: {', '.join(valid) or 'none'}"
        )
    loss = cls(**hyperparameters)
    check_state_declared(loss)
    return loss


def check_state_declared(loss: PreferenceLoss) -> None:
    """Raise ValueError unless ``loss.stateful`` says whether its ``state_dict()`` holds anything.

    The trainer's checkpoints save every loss's ``state_dict()``; ``stateful`` is the promise that
    a loss keeps state there (BCO's running mean), so a loss that does must say so, and one that
    says so must keep it in registered buffers.
    """
    held = sorted(loss.state_dict())
    if bool(held) != loss.stateful:
        raise ValueError(
            f"{type(loss).__name__}.stateful is {loss.stateful}, but its state_dict holds "
            f"{', '.join(held) or 'nothing'}"
        )


def _import_target(target: object) -> type:
    if not isinstance(target, str) or "." not in target:
        raise ValueError(f"_target_ must be a dotted path 'package.module.Class', got {target!r}")
    module_name, _, attribute = target.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"cannot import module {module_name!r} of _target_ {target!r}") from error
    if not hasattr(module, attribute):
        raise ValueError(f"module {module_name!r} has no {attribute!r} (_target_ {target!r})")
    return getattr(module, attribute)


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """Installed plugins by name; listing them imports nothing."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
