"""Gradient directions, reference-free use, weights, and stability at extreme inputs."""

import dataclasses
import math

import pytest
import torch
from loss_inputs import PAIRS, SINGLES, paired, unpaired

from prefopt.losses import available_losses, build_loss, loss_class

BUILT_IN = available_losses()
PAIRED = [name for name in BUILT_IN if loss_class(name).data_format == "paired"]
UNPAIRED = [name for name in BUILT_IN if loss_class(name).data_format == "unpaired"]
# Losses that raise the chosen response and lower the rejected one everywhere near the reference
# (simpo_eos_excluded leaves a one-token response, only its EOS, without a gradient: the shared
# pairs have one; its direction is tested in test_new_batch_losses).
CHOSEN_UP_REJECTED_DOWN = [
    name
    for name in PAIRED
    if name not in ("apo_down", "csft", "sft", "discopop", "slic", "simpo_eos_excluded")
]
# Hyperparameters that keep the shared numbers off a kink (slic: δ = 1 puts pair 1 on the hinge).
SMOOTH_AT_SHARED_NUMBERS = {"slic": {"delta": 2.0}}
# Inputs that keep a sorting loss off a tie, where the sort has no derivative (aot: the shared
# reference margins are -0.5, -0.5, -0.2; these give -0.5, -1.0, -0.2).
UNTIED_AT_SHARED_NUMBERS = {"aot": {"ref_rejected_logps": [-1.0, -4.0, -3.0]}}


def grads(loss, inputs, fields):
    """d sum(losses) / d field for each named field of ``inputs``, zeros where unused."""
    tensors = [getattr(inputs, field) for field in fields]
    total = loss(inputs).losses.sum()
    return torch.autograd.grad(total, tensors, allow_unused=True, materialize_grads=True)


def at_reference(**overrides):
    """The shared pairs with the policy equal to the reference (Δ_w = Δ_l = 0)."""
    return paired(
        requires_grad=True,
        chosen_logps=PAIRS["ref_chosen_logps"],
        rejected_logps=PAIRS["ref_rejected_logps"],
        **overrides,
    )


@pytest.mark.parametrize("name", CHOSEN_UP_REJECTED_DOWN)
def test_gradient_raises_chosen_and_lowers_rejected(name):
    for inputs in (at_reference(), paired(requires_grad=True)):
        d_chosen, d_rejected = grads(build_loss(name), inputs, ["chosen_logps", "rejected_logps"])
        assert (d_chosen < 0).all(), (name, d_chosen)
        assert (d_rejected > 0).all(), (name, d_rejected)


def test_apo_down_gradient_lowers_rejected_and_then_chosen():
    loss = build_loss("apo_down", beta=1.0)
    # At the reference the chosen gradient vanishes: σ'(r_w) - σ'(r_w - r_l) = 0.
    d_chosen, d_rejected = grads(loss, at_reference(), ["chosen_logps", "rejected_logps"])
    assert torch.allclose(d_chosen, torch.zeros(3), atol=1e-7)
    assert (d_rejected > 0).all()
    # Once the rejected response is below the reference (r_l = -1) and the chosen at it
    # (r_w = 0), the loss pushes the chosen likelihood down too: gradient descent lowers it.
    ref = PAIRS["ref_chosen_logps"]
    inputs = paired(
        requires_grad=True,
        chosen_logps=ref,
        rejected_logps=[r - 1.0 for r in PAIRS["ref_rejected_logps"]],
    )
    d_chosen, d_rejected = grads(loss, inputs, ["chosen_logps", "rejected_logps"])
    assert (d_chosen > 0).all()
    assert (d_rejected > 0).all()


def test_sft_gradient_raises_chosen_and_ignores_rejected():
    inputs = paired(requires_grad=True, reference=False)
    d_chosen, d_rejected = grads(build_loss("sft"), inputs, ["chosen_logps", "rejected_logps"])
    expected = [-1.0 / n for n in PAIRS["chosen_lengths"]]  # d(-logp/len)/dlogp
    assert d_chosen.tolist() == pytest.approx(expected)
    assert (d_rejected == 0).all()


@pytest.mark.parametrize("name", UNPAIRED)
def test_unpaired_gradient_raises_desirable_lowers_undesirable_and_ignores_kl_pairs(name):
    inputs = unpaired(requires_grad=True)
    d_logps, d_kl = grads(build_loss(name), inputs, ["logps", "kl_logps"])
    assert (d_logps[inputs.desirable] < 0).all()
    assert (d_logps[~inputs.desirable] > 0).all()
    assert (d_kl == 0).all()  # KTO's z0 is not back-propagated; APO reads no KL pairs


def test_reference_free_losses_need_no_reference_logps():
    free = [name for name in BUILT_IN if not loss_class(name).requires_reference]
    expected = ["cpo", "csft", "orpo", "sft", "simpo", "simpo_eos_excluded", "slic", "unlikelihood"]
    assert sorted(free) == expected
    for name in free:
        out = build_loss(name)(paired(reference=False))
        assert torch.isfinite(out.losses).all()


@pytest.mark.parametrize("name", [n for n in BUILT_IN if loss_class(n).requires_reference])
def test_reference_losses_refuse_missing_reference(name):
    loss = build_loss(name)
    inputs = paired(reference=False) if loss.data_format == "paired" else unpaired(ref_logps=None)
    with pytest.raises(ValueError, match="requires reference log-probs"):
        loss(inputs)


@pytest.mark.parametrize("name", BUILT_IN)
def test_weights_multiply_per_example_losses(name):
    make = paired if loss_class(name).data_format == "paired" else unpaired
    batch = len(PAIRS["chosen_logps"]) if make is paired else len(SINGLES["logps"])
    weights = [0.5, 2.0, 0.0, 1.5][:batch]
    plain = build_loss(name)(make()).losses  # fresh instances: bco_pair's state starts equal
    weighted = build_loss(name)(make(weights=weights)).losses
    assert weighted.tolist() == pytest.approx((plain * torch.tensor(weights)).tolist(), abs=1e-6)


EXTREME_PAIRS = {  # log-probs of -1e4, of -1e-7 and 0 (avg log-prob near 0), lengths of 1
    "chosen_logps": [-1e4, -1e-7, 0.0, -5.0],
    "rejected_logps": [-1e-7, -1e4, -1e4, 0.0],
    "chosen_lengths": [1, 1, 1, 1],
    "rejected_lengths": [1, 1, 1, 1],
    "ref_chosen_logps": [-1e-7, -1e4, -3.0, -1e4],
    "ref_rejected_logps": [-1e4, -2.0, -1e-7, -1e4],
}
EXTREME_SINGLES = {
    "logps": [-1e4, -1e-7, 0.0, -1e4],
    "lengths": [1, 1, 1, 1],
    "ref_logps": [-1e-7, -1e4, -1e4, 0.0],
    "kl_logps": [-1e4, 0.0, -1e-7, -1e4],
    "ref_kl_logps": [0.0, -1e4, -1e4, -1e-7],
}
EXTREME_VARIANTS = [(name, {}) for name in BUILT_IN] + [
    ("ipo", {"length_normalize": False}),
    ("dpo", {"label_smoothing": 0.3}),
    ("robust", {"label_smoothing": 0.45}),
    ("simpo", {"beta": 10.0, "gamma": 3.0}),
    ("orpo", {"beta": 1.0}),
    ("simpo", {"alpha": -1.0}),
    ("dpo", {"f_divergence": "forward_kl"}),
    ("dpo", {"f_divergence": "js_divergence"}),
    ("dpo", {"f_divergence": "alpha_divergence", "f_alpha": 0.5}),
    ("dpo", {"f_divergence": "alpha_divergence", "f_alpha": 2.0}),
    ("discopop", {"beta": 1.0}),
    ("sigmoid_norm", {"beta": 5.0}),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize(("name", "hyperparameters"), EXTREME_VARIANTS)
def test_finite_loss_and_gradients_at_extreme_inputs(name, hyperparameters, dtype):
    loss = build_loss(name, **hyperparameters)
    if loss.data_format == "paired":
        inputs = paired(dtype=dtype, requires_grad=True, **EXTREME_PAIRS)
        fields = ["chosen_logps", "rejected_logps", "ref_chosen_logps", "ref_rejected_logps"]
    else:
        inputs = unpaired(dtype=dtype, requires_grad=True, **EXTREME_SINGLES)
        fields = ["logps", "ref_logps"]
    out = loss(inputs)
    assert out.losses.dtype == torch.float32
    assert torch.isfinite(out.losses).all(), out.losses
    assert torch.isfinite(out.chosen_rewards).all() and torch.isfinite(out.rejected_rewards).all()
    for field, grad in zip(fields, grads(loss, inputs, fields), strict=True):
        assert grad.dtype == dtype
        assert torch.isfinite(grad).all(), (field, grad)


def test_orpo_log_odds_stay_finite_and_accurate_near_zero():
    # Pair 1: avg log-probs -1e-3 and -2, log odds a - log(1 - e^a) by hand. Pair 2: -1e-7 and 0
    # are both clamped to -1e-6, so their log odds are equal and the ratio is 0.
    inputs = paired(
        reference=False,
        chosen_logps=[-1e-3, -1e-7],
        rejected_logps=[-2.0, 0.0],
        chosen_lengths=[1, 1],
        rejected_lengths=[1, 1],
    )
    out = build_loss("orpo", beta=1.0)(inputs)
    assert torch.isfinite(out.losses).all()
    first = (-1e-3 - math.log(1 - math.exp(-1e-3))) - (-2.0 - math.log(1 - math.exp(-2.0)))
    assert first == pytest.approx(math.log(999.5) + 2.0 + math.log(1 - math.exp(-2.0)), rel=1e-3)
    assert out.metrics["log_odds_ratio"].item() == pytest.approx((first + 0.0) / 2, rel=1e-4)


@pytest.mark.parametrize("name", BUILT_IN)
def test_analytic_gradients_match_finite_differences_in_fp64(name):
    # eval: bco_pair's shift must not move between evaluations
    loss = build_loss(name, **SMOOTH_AT_SHARED_NUMBERS.get(name, {})).eval()
    if loss.data_format == "paired":
        base = paired(dtype=torch.float64, **UNTIED_AT_SHARED_NUMBERS.get(name, {}))
        fields = ["chosen_logps", "rejected_logps", "ref_chosen_logps", "ref_rejected_logps"]
    else:
        base = unpaired(dtype=torch.float64)
        fields = ["logps", "ref_logps"]
    leaves = [getattr(base, field).clone().requires_grad_(True) for field in fields]

    def losses(*tensors):
        inputs = dataclasses.replace(base, **dict(zip(fields, tensors, strict=True)))
        return loss(inputs).losses

    assert torch.autograd.gradcheck(losses, leaves)
