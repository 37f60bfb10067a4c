"""Checks shared by every loss: hyperparameter ranges and input tensors, with clear ValueErrors."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor


def require_positive(name: str, value: float) -> float:
    """``value`` must be a finite number > 0."""
    if not _is_real(value) or not value > 0 or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def require_non_negative(name: str, value: float) -> float:
    """``value`` must be a finite number >= 0."""
    if not _is_real(value) or not value >= 0 or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def require_finite(name: str, value: float) -> float:
    """``value`` must be a finite real number."""
    if not _is_real(value) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def require_in_interval(name: str, value: float, low: float, high: float, interval: str) -> float:
    """``value`` must lie in ``interval``, written "[low, high)", "(low, high)" and so on."""
    closed_low, closed_high = interval[0] == "[", interval[-1] == "]"
    inside = _is_real(value) and (
        (low <= value if closed_low else low < value)
        and (value <= high if closed_high else value < high)
    )
    if not inside:
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return float(value)


def require_bool(name: str, value: bool) -> bool:
    """``value`` must be True or False (not a truthy string from a config)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def check_batch(loss_name: str, tensors: Mapping[str, Tensor | None], min_batch_size: int) -> int:
    """Every given tensor is 1-D with one shared shape (B,) and B >= ``min_batch_size``.

    Returns B. ``tensors`` maps field names to tensors; None entries are skipped.
    """
    shapes = {}
    for field, value in tensors.items():
        if value is None:
            continue
        if not isinstance(value, Tensor):
            raise ValueError(
                f"{loss_name}: {field} must be a torch.Tensor, got {type(value).__name__}"
            )
        if value.dim() != 1:
            raise ValueError(f"{loss_name}: {field} must have shape (B,), got {tuple(value.shape)}")
        shapes[field] = tuple(value.shape)
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{field}={shape}" for field, shape in shapes.items())
        raise ValueError(f"{loss_name}: all inputs must share one shape (B,), got {listed}")
    batch_size = next(iter(shapes.values()))[0]
    if batch_size < max(1, min_batch_size):
        raise ValueError(
            f"{loss_name}: needs a batch of at least {max(1, min_batch_size)} examples, "
            f"got {batch_size}"
        )
    return batch_size


def check_token_batch(loss_name: str, tensors: Mapping[str, Tensor], batch_size: int) -> None:
    """Every per-token tensor is 2-D with one shared shape (B, L), B the batch's size."""
    shapes = {field: tuple(value.shape) for field, value in tensors.items()}
    rows = {shape[0] if shape else None for shape in shapes.values()}
    if any(len(shape) != 2 for shape in shapes.values()) or len(set(shapes.values())) > 1:
        listed = ", ".join(f"{field}={shape}" for field, shape in shapes.items())
        raise ValueError(f"{loss_name}: per-token inputs must share one shape (B, L), got {listed}")
    if rows != {batch_size}:
        raise ValueError(
            f"{loss_name}: per-token inputs have {rows.pop()} rows for a batch of {batch_size}"
        )


def check_present(loss_name: str, tensors: Mapping[str, Tensor | None], why: str) -> None:
    """Every entry of ``tensors`` is given (not None); ``why`` says what needs them."""
    missing = [field for field, value in tensors.items() if value is None]
    if missing:
        raise ValueError(f"{loss_name}: {why}, but {', '.join(missing)} is None")


def check_floating(loss_name: str, tensors: Mapping[str, Tensor | None]) -> None:
    """Log-prob tensors must be floating point."""
    for field, value in tensors.items():
        if value is not None and not value.dtype.is_floating_point:
            raise ValueError(f"{loss_name}: {field} must be a floating tensor, got {value.dtype}")


def check_lengths(loss_name: str, lengths: Mapping[str, Tensor | None]) -> None:
    """Token counts must be given and all > 0 (they divide log-prob sums)."""
    check_present(loss_name, lengths, "this loss divides by response lengths")
    for field, value in lengths.items():
        if bool((value <= 0).any()):
            raise ValueError(
                f"{loss_name}: {field} must be > 0 everywhere (an empty response cannot be "
                f"length-normalised), got min {value.min().item()}"
            )


def check_desirable(loss_name: str, desirable: Tensor) -> None:
    """The desirable flags of unpaired data must be a bool tensor."""
    if desirable.dtype != torch.bool:
        raise ValueError(f"{loss_name}: desirable must be a bool tensor, got {desirable.dtype}")


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
