"""Hand-sized numbers shared by the loss tests, and builders of loss inputs from them."""

import torch

from prefopt.losses import PairedLogps, ResponseTokens, UnpairedLogps

# Three preference pairs. Δ_w = [0.5, -1.0, 0.2], Δ_l = [-1.0, 0.5, -0.5], Δ = [1.5, -1.5, 0.7].
PAIRS = {
    "chosen_logps": [-1.0, -6.0, -3.0],
    "rejected_logps": [-2.0, -4.0, -3.5],
    "chosen_lengths": [2, 3, 1],
    "rejected_lengths": [4, 2, 5],
    "ref_chosen_logps": [-1.5, -5.0, -3.2],
    "ref_rejected_logps": [-1.0, -4.5, -3.0],
}

# Four single responses for KTO-style losses; r = logps - ref_logps = [0.5, -1.0, 0.2, -0.3].
SINGLES = {
    "logps": [-1.0, -6.0, -3.0, -2.0],
    "lengths": [2, 3, 1, 4],
    "desirable": [True, False, True, False],
    "ref_logps": [-1.5, -5.0, -3.2, -1.7],
    "kl_logps": [-4.0, -3.0, -5.0, -2.0],
    "ref_kl_logps": [-4.5, -3.4, -4.8, -2.5],  # kl_logps - ref_kl_logps = [0.5, 0.4, -0.2, 0.5]
}


def paired(dtype=torch.float32, requires_grad=False, reference=True, **overrides):
    """PairedLogps from ``PAIRS`` (with ``overrides``), lengths as int64."""
    values = {**PAIRS, **overrides}
    tensors = {}
    for key, value in values.items():
        if value is None or isinstance(value, torch.Tensor):
            tensors[key] = value
        elif key.endswith("lengths"):
            tensors[key] = torch.tensor(value, dtype=torch.int64)
        else:
            tensors[key] = torch.tensor(value, dtype=dtype, requires_grad=requires_grad)
    if not reference:
        tensors["ref_chosen_logps"] = tensors["ref_rejected_logps"] = None
    return PairedLogps(**tensors, tokens=spread_tokens(tensors))


def spread(logps, lengths, width):
    """(B, width) per-token log-probs: each sum spread evenly over its length, 0 past it."""
    inside = torch.arange(width) < lengths.unsqueeze(1)  # (B, width)
    return torch.where(inside, (logps / lengths).unsqueeze(1), torch.zeros(()).to(logps))


def spread_tokens(tensors):
    """Per-token quantities consistent with the sequence sums (differentiable through them), and
    log sum_v p(v)^2 = -0.5 at every response position."""
    lengths = {"chosen": tensors["chosen_lengths"], "rejected": tensors["rejected_lengths"]}
    given = [v for v in tensors.values() if v is not None]
    shapes = {v.shape for v in given}
    if any(v is None for v in lengths.values()) or len(shapes) > 1 or len(shapes.pop()) != 1:
        return None  # inputs that a test makes inconsistent on purpose
    width = int(max(lengths["chosen"].max(), lengths["rejected"].max()))
    fields = {}
    for side, n in lengths.items():
        for prefix in ("", "ref_"):
            logps = tensors[f"{prefix}{side}_logps"]
            fields[f"{prefix}{side}_logps"] = None if logps is None else spread(logps, n, width)
        inside = torch.arange(width) < n.unsqueeze(1)
        fields[f"{side}_log_sum_sq_probs"] = -0.5 * inside.to(tensors["chosen_logps"].dtype)
    return ResponseTokens(**fields)


def unpaired(dtype=torch.float32, requires_grad=False, **overrides):
    """UnpairedLogps from ``SINGLES`` (with ``overrides``)."""
    values = {**SINGLES, **overrides}
    tensors = {}
    for key, value in values.items():
        if value is None or isinstance(value, torch.Tensor):
            tensors[key] = value
        elif key == "desirable":
            tensors[key] = torch.tensor(value, dtype=torch.bool)
        elif key == "lengths":
            tensors[key] = torch.tensor(value, dtype=torch.int64)
        else:
            tensors[key] = torch.tensor(value, dtype=dtype, requires_grad=requires_grad)
    return UnpairedLogps(**tensors)


def example_inputs(loss, **kwargs):
    """Inputs of the right format for ``loss`` built from the shared numbers."""
    return paired(**kwargs) if loss.data_format == "paired" else unpaired(**kwargs)
