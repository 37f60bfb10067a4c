"""LD-DPO and WPO, the losses that read per-token quantities, against values worked out by hand."""

import math

import pytest
import torch

from prefopt.losses import PairedLogps, ResponseTokens, build_loss

# Two pairs, response-aligned token log-probs (0 past each length).
# Pair 0: |y_w| = 3, |y_l| = 1, shared length 1. Pair 1: |y_w| = 2, |y_l| = 2, shared length 2.
CHOSEN = [[-0.5, -1.0, -2.0], [-0.2, -0.4, 0.0]]
REJECTED = [[-1.5, 0.0, 0.0], [-1.0, -0.6, 0.0]]
REF_CHOSEN = [[-0.7, -0.8, -1.0], [-0.3, -0.3, 0.0]]
REF_REJECTED = [[-1.0, 0.0, 0.0], [-0.9, -0.5, 0.0]]
LOG_SQ_W = [[-0.4, -0.9, -1.5], [-0.1, -0.2, 0.0]]  # log sum_v p(v)^2 per position
LOG_SQ_L = [[-0.5, 0.0, 0.0], [-0.6, -0.3, 0.0]]
LEN_W, LEN_L = [3, 2], [1, 2]


def inputs(requires_grad=False):
    t = {
        name: torch.tensor(rows, requires_grad=requires_grad)
        for name, rows in {
            "chosen_logps": CHOSEN,
            "rejected_logps": REJECTED,
            "ref_chosen_logps": REF_CHOSEN,
            "ref_rejected_logps": REF_REJECTED,
        }.items()
    }
    tokens = ResponseTokens(
        **t,
        chosen_log_sum_sq_probs=torch.tensor(LOG_SQ_W),
        rejected_log_sum_sq_probs=torch.tensor(LOG_SQ_L),
    )
    return PairedLogps(
        chosen_logps=t["chosen_logps"].sum(-1),
        rejected_logps=t["rejected_logps"].sum(-1),
        chosen_lengths=torch.tensor(LEN_W),
        rejected_lengths=torch.tensor(LEN_L),
        ref_chosen_logps=t["ref_chosen_logps"].sum(-1),
        ref_rejected_logps=t["ref_rejected_logps"].sum(-1),
        tokens=tokens,
    )


def log_sigmoid(x):
    return -math.log1p(math.exp(-x))


def test_ld_dpo_discounts_the_tokens_past_the_shared_length():
    beta, alpha = 0.5, 0.25
    # Pair 0, shared length 1: chosen tail (-1.0, -2.0) against the reference's (-0.8, -1.0).
    d_w0 = (-0.5 + alpha * (-3.0)) - (-0.7 + alpha * (-1.8))  # 0.2 - 0.3 = -0.1
    d_l0 = -1.5 - (-1.0)  # no tail: the rejected response is the shorter one
    # Pair 1, equal lengths: plain DPO log-ratios.
    d_w1, d_l1 = -0.6 - (-0.6), -1.6 - (-1.4)
    out = build_loss("ld_dpo", beta=beta, ld_alpha=alpha)(inputs())
    expected = [-log_sigmoid(beta * (d_w0 - d_l0)), -log_sigmoid(beta * (d_w1 - d_l1))]
    assert out.losses.tolist() == pytest.approx(expected, rel=1e-6)
    assert out.chosen_rewards.tolist() == pytest.approx([beta * d_w0, beta * d_w1], rel=1e-6)


def test_ld_dpo_with_alpha_one_is_dpo():
    ld = build_loss("ld_dpo", beta=0.5, ld_alpha=1.0)(inputs()).losses
    dpo = build_loss("dpo", beta=0.5)(inputs()).losses
    torch.testing.assert_close(ld, dpo)


def test_ld_dpo_gradient_on_a_tail_token_is_alpha_times_a_shared_tokens():
    x = inputs(requires_grad=True)
    build_loss("ld_dpo", beta=0.5, ld_alpha=0.25)(x).losses.sum().backward()
    grad = x.tokens.chosen_logps.grad  # (2, 3)
    assert (grad[:, 0] < 0).all()  # descent raises the chosen tokens
    assert grad[0, 1].item() == pytest.approx(0.25 * grad[0, 0].item(), rel=1e-6)
    assert grad[0, 2].item() == pytest.approx(0.25 * grad[0, 0].item(), rel=1e-6)
    assert (x.tokens.rejected_logps.grad[:, 0] > 0).all()


def test_wpo_weights_each_pair_by_its_aligned_probability():
    beta = 0.5
    w_w = [math.exp(((-0.5 + 0.4) + (-1.0 + 0.9) + (-2.0 + 1.5)) / 3), math.exp((-0.1 - 0.2) / 2)]
    w_l = [math.exp(-1.5 + 0.5), math.exp(((-1.0 + 0.6) + (-0.6 + 0.3)) / 2)]
    delta = [(-3.5 + 2.5) - (-1.5 + 1.0), (-0.6 + 0.6) - (-1.6 + 1.4)]
    out = build_loss("wpo", beta=beta)(inputs())
    expected = [-a * b * log_sigmoid(beta * d) for a, b, d in zip(w_w, w_l, delta, strict=True)]
    assert out.losses.tolist() == pytest.approx(expected, rel=1e-6)
    mean_weight = (w_w[0] * w_l[0] + w_w[1] * w_l[1]) / 2
    assert out.metrics["policy_weight"].item() == pytest.approx(mean_weight, rel=1e-6)


def test_wpo_weights_are_not_back_propagated():
    # The sums are the tokens' row sums here: with the weights constant, every token of a
    # response gets the weighted DPO gradient of its sum, -w_w w_l β σ(-βΔ).
    x = inputs(requires_grad=True)
    out = build_loss("wpo", beta=0.5)(x)
    out.losses.sum().backward()
    weights = (
        build_loss("wpo", beta=0.5)(inputs()).losses / build_loss("dpo", beta=0.5)(inputs()).losses
    )  # (B,) w_w w_l
    delta = torch.tensor([-0.5, 0.2])
    expected = -weights * 0.5 * torch.sigmoid(-0.5 * delta)  # (B,)
    grad = x.tokens.chosen_logps.grad  # (2, 3)
    torch.testing.assert_close(grad[0], expected[0].expand(3))
    torch.testing.assert_close(grad[1, :2], expected[1].expand(2))


def test_a_token_loss_refuses_missing_per_token_inputs():
    x = inputs()
    bare = PairedLogps(**{**x.__dict__, "tokens": None})
    with pytest.raises(ValueError, match="ld_dpo: this loss reads per-token quantities"):
        build_loss("ld_dpo")(bare)
    short = ResponseTokens(**{**x.tokens.__dict__, "chosen_logps": torch.zeros(1, 3)})
    with pytest.raises(ValueError, match=r"share one shape \(B, L\)"):
        build_loss("ld_dpo")(PairedLogps(**{**x.__dict__, "tokens": short}))
