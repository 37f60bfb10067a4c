"""discopop, sigmoid_norm, f-DPO (dpo's f_divergence) and slic against values worked out by hand."""

import dataclasses
import math

import pytest
import torch
from loss_inputs import PAIRS, paired
from test_loss_behaviour import at_reference, grads
from test_loss_values import (
    CHOSEN,
    D_L,
    D_W,
    DELTA,
    LEN_L,
    LEN_W,
    REJECTED,
    approx,
    log_sigmoid,
    sigmoid,
)

from prefopt.losses import PairedLogps, build_loss
from prefopt.losses.dpo import F_DIVERGENCES

LOGP_FIELDS = ["chosen_logps", "rejected_logps"]


# discopop


def discopop_by_hand(x, tau):
    m = sigmoid(x / tau)
    return (1 - m) * -log_sigmoid(x) + m * math.exp(-x)


def test_discopop():
    beta, tau = 0.05, 0.05  # x / τ = Δ = [1.5, -1.5, 0.7]: both parts weigh in
    out = build_loss("discopop", beta=beta, tau=tau)(paired())
    assert out.losses.tolist() == approx([discopop_by_hand(beta * d, tau) for d in DELTA])
    assert out.chosen_rewards.tolist() == approx([beta * d for d in D_W])
    assert out.rejected_rewards.tolist() == approx([beta * d for d in D_L])


def test_discopop_is_the_logistic_loss_below_zero_and_the_exponential_loss_above():
    out = build_loss("discopop", beta=1.0, tau=0.05)(paired())  # x / τ = ±30, 14
    logistic, exponential = -log_sigmoid(-1.5), math.exp(-1.5)
    assert out.losses[1].item() == pytest.approx(logistic, rel=1e-5)
    assert out.losses[0].item() == pytest.approx(exponential, rel=1e-5)


def test_discopop_stays_finite_where_exp_of_the_margin_overflows():
    # x = -1000: exp(-x) overflows and m = σ(-20000) is 0, so the loss is -log σ(-1000) = 1000.
    zero = torch.zeros(1)
    inputs = PairedLogps(
        torch.tensor([-1000.0]), zero, ref_chosen_logps=zero, ref_rejected_logps=zero
    )
    out = build_loss("discopop", beta=1.0)(inputs)
    assert out.losses.tolist() == approx([1000.0])


def test_discopop_gradient_is_reversed_at_the_reference_and_not_beyond_the_band():
    beta, tau = 0.1, 0.05
    loss = build_loss("discopop", beta=beta, tau=tau)
    # dL/dx at x = 0: m' = 1/(4τ), so (1/(4τ))(1 - log 2) - (1/2)(1/2) - 1/2 = 0.784 > 0.
    slope = (1 - math.log(2.0)) / (4 * tau) - 0.75
    d_chosen, d_rejected = grads(loss, at_reference(), LOGP_FIELDS)
    assert slope > 0
    assert d_chosen.tolist() == approx([beta * slope] * 3)
    assert d_rejected.tolist() == approx([-beta * slope] * 3)
    # Outside the band (-0.12, 0.07) of x = βΔ the usual direction returns: x = [1.5, -1.5, 0.7].
    d_chosen, d_rejected = grads(
        build_loss("discopop", beta=1.0), paired(requires_grad=True), LOGP_FIELDS
    )
    assert (d_chosen < 0).all() and (d_rejected > 0).all()


def test_discopop_tau_must_be_positive():
    with pytest.raises(ValueError, match="tau must be a finite number > 0"):
        build_loss("discopop", tau=0.0)


# sigmoid_norm


def test_sigmoid_norm_averages_each_log_ratio_over_its_own_response():
    beta = 2.0
    out = build_loss("sigmoid_norm", beta=beta)(paired())
    h = [w / nw - lo / nl for w, lo, nw, nl in zip(D_W, D_L, LEN_W, LEN_L, strict=True)]
    assert h == approx([0.25 + 0.25, -1 / 3 - 0.25, 0.2 + 0.1])
    assert out.losses.tolist() == approx([-log_sigmoid(beta * x) for x in h])
    assert out.chosen_rewards.tolist() == approx(
        [beta * w / n for w, n in zip(D_W, LEN_W, strict=True)]
    )
    assert out.rejected_rewards.tolist() == approx(
        [beta * lo / n for lo, n in zip(D_L, LEN_L, strict=True)]
    )


def test_sigmoid_norm_with_one_token_responses_is_dpo():
    inputs = paired(chosen_lengths=[1, 1, 1], rejected_lengths=[1, 1, 1])
    norm = build_loss("sigmoid_norm", beta=0.3)(inputs).losses
    assert norm.tolist() == approx(build_loss("dpo", beta=0.3)(inputs).losses.tolist())


# f-DPO: the dpo loss with another f-divergence


def f_dpo_by_hand(score, beta=0.1):
    """-log σ(β (f'(u_w) - f'(u_l))) with u = exp(log-ratio) and f' = ``score``."""
    return [
        -log_sigmoid(beta * (score(math.exp(w)) - score(math.exp(lo))))
        for w, lo in zip(D_W, D_L, strict=True)
    ]


def dpo_losses(**hyperparameters):
    return build_loss("dpo", **hyperparameters)(paired()).losses.tolist()


def test_the_default_f_divergence_is_plain_dpo():
    loss = build_loss("dpo")
    assert (loss.f_divergence, loss.f_alpha) == ("reverse_kl", 0.5)  # TRL 1.16's defaults
    assert dpo_losses() == approx(f_dpo_by_hand(math.log))


def test_forward_kl():
    expected = f_dpo_by_hand(lambda u: -1 / u)  # the paper's f'(u) = -1/u; TRL adds 1
    assert dpo_losses(f_divergence="forward_kl") == approx(expected)


def test_js_divergence():
    expected = f_dpo_by_hand(lambda u: math.log(2 * u / (1 + u)))
    assert dpo_losses(f_divergence="js_divergence") == approx(expected)


def test_f_alpha_is_trls_code_coefficient_and_the_papers_alpha_is_one_minus_it():
    a = 0.3
    trl_code = f_dpo_by_hand(lambda u: (u ** (a - 1) - 1) / (a - 1))
    alpha = 1 - a  # the paper's f'(u) = (1 - u^(-α)) / α
    paper = f_dpo_by_hand(lambda u: (1 - u ** (-alpha)) / alpha)
    assert trl_code == approx(paper)
    assert dpo_losses(f_divergence="alpha_divergence", f_alpha=a) == approx(paper)
    # Reading f_alpha as the paper's α (TRL's docstring) gives another loss.
    as_documented = f_dpo_by_hand(lambda u: (1 - u ** (-a)) / a)
    assert max(abs(p - q) for p, q in zip(paper, as_documented, strict=True)) > 1e-3


def test_f_alpha_one_is_the_reverse_kl_and_zero_the_forward_kl():
    reverse = dpo_losses()
    assert dpo_losses(f_divergence="alpha_divergence", f_alpha=1.0) == approx(reverse)
    assert dpo_losses(f_divergence="alpha_divergence", f_alpha=1.0 - 1e-4) == pytest.approx(
        reverse, rel=1e-4
    )
    forward = dpo_losses(f_divergence="forward_kl")
    assert dpo_losses(f_divergence="alpha_divergence", f_alpha=0.0) == approx(forward)
    assert forward != approx(reverse)


def test_f_divergence_combines_with_label_smoothing():
    beta, eps = 0.5, 0.2
    out = dpo_losses(beta=beta, label_smoothing=eps, f_divergence="js_divergence")
    margins = [
        beta * (log_sigmoid(w) - log_sigmoid(lo)) for w, lo in zip(D_W, D_L, strict=True)
    ]  # log 2 cancels
    expected = [-(1 - eps) * log_sigmoid(m) - eps * log_sigmoid(-m) for m in margins]
    assert out == approx(expected)


def test_forward_kl_clamps_the_exponent_at_80():
    # Δ_w = -200: exp(200) overflows fp32, so f'(u_w) = 1 - exp(80); Δ_l = 0 gives f'(u_l) = 0.
    inputs = paired(chosen_logps=[-200.0, -1.0, -3.0], rejected_logps=PAIRS["ref_rejected_logps"])
    inputs = dataclasses.replace(inputs, ref_chosen_logps=torch.tensor([0.0, -1.0, -3.0]))
    out = build_loss("dpo", beta=1.0, f_divergence="forward_kl")(inputs)
    assert out.losses[0].item() == pytest.approx(math.exp(80.0) - 1.0, rel=1e-5)
    assert out.losses[1:].tolist() == approx([math.log(2.0)] * 2)


@pytest.mark.parametrize("f_divergence", F_DIVERGENCES)
def test_every_f_divergence_raises_chosen_and_lowers_rejected(f_divergence):
    loss = build_loss("dpo", f_divergence=f_divergence, f_alpha=0.5)
    for inputs in (at_reference(), paired(requires_grad=True)):
        d_chosen, d_rejected = grads(loss, inputs, LOGP_FIELDS)
        assert (d_chosen < 0).all(), (f_divergence, d_chosen)
        assert (d_rejected > 0).all(), (f_divergence, d_rejected)


@pytest.mark.parametrize("f_divergence", F_DIVERGENCES)
def test_f_divergence_gradients_match_finite_differences_in_fp64(f_divergence):
    loss = build_loss("dpo", f_divergence=f_divergence, f_alpha=0.3)
    base = paired(dtype=torch.float64)
    fields = [*LOGP_FIELDS, "ref_chosen_logps", "ref_rejected_logps"]
    leaves = [getattr(base, field).clone().requires_grad_(True) for field in fields]

    def losses(*tensors):
        return loss(dataclasses.replace(base, **dict(zip(fields, tensors, strict=True)))).losses

    assert torch.autograd.gradcheck(losses, leaves)


@pytest.mark.parametrize(
    ("hyperparameters", "message"),
    [
        ({"f_divergence": "kl"}, "f_divergence must be one of reverse_kl, forward_kl"),
        ({"f_alpha": float("nan")}, "f_alpha must be a finite number"),
    ],
)
def test_bad_f_divergence_options(hyperparameters, message):
    with pytest.raises(ValueError, match=message):
        build_loss("dpo", **hyperparameters)


# slic


def test_slic():
    delta, lam = 2.0, 0.5
    out = build_loss("slic", delta=delta, reg_weight=lam)(paired(reference=False))
    hinge = [max(0.0, delta - c + r) for c, r in zip(CHOSEN, REJECTED, strict=True)]
    assert hinge == approx([1.0, 4.0, 1.5])
    assert out.losses.tolist() == approx([h - lam * c for h, c in zip(hinge, CHOSEN, strict=True)])
    assert out.metrics["calibration"].item() == pytest.approx(6.5 / 3)
    assert out.metrics["nll"].item() == pytest.approx(10.0 / 3)
    assert out.chosen_rewards.tolist() == approx(CHOSEN)


def test_slic_ignores_the_reference_unlike_hinge():
    with_reference = build_loss("slic")(paired()).losses
    assert with_reference.tolist() == approx(
        build_loss("slic")(paired(reference=False)).losses.tolist()
    )
    hinge = build_loss("hinge", beta=1.0)(paired()).losses  # max(0, 1 - Δ): reference log-ratios
    bare = build_loss("slic", delta=1.0, reg_weight=0.0)(paired()).losses  # max(0, 1 - (c - r))
    assert bare.tolist() == approx([0.0, 3.0, 0.5])
    assert hinge.tolist() == approx([0.0, 2.5, 0.3])


def test_slic_gradient_inside_and_past_the_margin():
    lam = 0.5
    inputs = paired(requires_grad=True, reference=False)  # c - r = [1, -2, 0.5]
    d_chosen, d_rejected = grads(
        build_loss("slic", delta=0.75, reg_weight=lam), inputs, LOGP_FIELDS
    )
    # Pair 1 leads by more than δ: only the regulariser raises the chosen response.
    assert d_chosen.tolist() == approx([-lam, -1 - lam, -1 - lam])
    assert d_rejected.tolist() == approx([0.0, 1.0, 1.0])


@pytest.mark.parametrize(
    ("hyperparameters", "message"),
    [
        ({"delta": 0.0}, "delta must be a finite number > 0"),
        ({"reg_weight": -0.5}, "reg_weight must be a finite number >= 0"),
    ],
)
def test_bad_slic_hyperparameters(hyperparameters, message):
    with pytest.raises(ValueError, match=message):
        build_loss("slic", **hyperparameters)
