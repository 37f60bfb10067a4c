"""prefopt.rl.objectives: PPO's clipped surrogate and value loss, RLOO's loss, by hand."""

import math

import pytest
import torch
from rl_numbers import assert_values

from prefopt.rl.objectives import ppo_policy_loss, rloo_policy_loss, value_loss

EPS = 0.2
OLD_LOGPS = [[-1.0, -2.0, -0.5], [-0.3, -1.2, 0.0]]
MASK = [[True, True, True], [True, True, False]]
# Per-token ratios rho and advantages A (response 1's third column is padding).
RATIOS = [[1.5, 0.9, 0.7], [1.1, 0.5, 1.0]]
ADVANTAGES = [[1.0, -2.0, 0.5], [-1.0, -1.0, 0.0]]


def k3(rho):
    return rho - 1.0 - math.log(rho)


def ppo_inputs(ratios=RATIOS, advantages=ADVANTAGES, requires_grad=False):
    old = torch.tensor(OLD_LOGPS)
    logps = (old + torch.tensor(ratios).log()).requires_grad_(requires_grad)
    return logps, old, torch.tensor(advantages), torch.tensor(MASK)


def test_ppo_clipped_surrogate_by_hand():
    out = ppo_policy_loss(*ppo_inputs(), clip_eps=EPS)
    # -min(rho A, clip(rho, 0.8, 1.2) A) per token:
    terms = [
        -min(1.5 * 1.0, 1.2 * 1.0),  # -1.2, clipped (rho > 1 + eps, A > 0)
        -min(0.9 * -2.0, 0.9 * -2.0),  # 1.8
        -min(0.7 * 0.5, 0.8 * 0.5),  # -0.35: rho < 1 - eps with A > 0 is not clipped
        -min(1.1 * -1.0, 1.1 * -1.0),  # 1.1
        -min(0.5 * -1.0, 0.8 * -1.0),  # 0.8, clipped (rho < 1 - eps, A < 0)
    ]
    assert_values(out.loss, sum(terms) / 5)  # 0.43
    assert_values(out.clip_fraction, 2 / 5)
    assert_values(out.ratio_mean, (1.5 + 0.9 + 0.7 + 1.1 + 0.5) / 5)
    assert_values(out.approx_kl, (k3(1.5) + k3(0.9) + k3(0.7) + k3(1.1) + k3(0.5)) / 5)


def test_ppo_asymmetric_clip():
    out = ppo_policy_loss(*ppo_inputs(), clip_eps=EPS, clip_eps_high=0.6)
    terms = [-1.5, 1.8, -0.35, 1.1, 0.8]  # rho = 1.5 < 1 + 0.6 is no longer clipped
    assert_values(out.loss, sum(terms) / 5)
    assert_values(out.clip_fraction, 1 / 5)


def test_padding_never_changes_the_ppo_loss():
    logps, old, advantages, mask = ppo_inputs()
    wide = [torch.cat([x, torch.full((2, 2), 50.0)], 1) for x in (logps, old, advantages)]
    wide[1][1, 2] = -300.0  # a padding entry whose ratio would overflow to inf
    wide_mask = torch.cat([mask, torch.zeros(2, 2, dtype=torch.bool)], 1)
    narrow, padded = (
        ppo_policy_loss(logps, old, advantages, mask, EPS),
        ppo_policy_loss(*wide, wide_mask, EPS),
    )
    for field in ("loss", "clip_fraction", "approx_kl", "ratio_mean"):
        assert torch.equal(getattr(narrow, field), getattr(padded, field))


def ppo_gradient(ratio, advantage):
    """d loss / d logp of a single token with the given ratio and advantage."""
    logps, old, advantages, mask = (
        torch.tensor([[math.log(ratio)]], requires_grad=True),
        torch.zeros(1, 1),
        torch.tensor([[advantage]]),
        torch.ones(1, 1, dtype=torch.bool),
    )
    ppo_policy_loss(logps, old, advantages, mask, EPS).loss.backward()
    return logps.grad.item()


def test_the_surrogate_raises_the_logp_of_a_positive_advantage_token():
    assert ppo_gradient(1.0, 2.0) == pytest.approx(
        -2.0
    )  # d(-rho A)/d logp = -rho A: descent raises logp
    assert ppo_gradient(0.5, 2.0) == pytest.approx(
        -0.5 * 2.0
    )  # below 1 - eps with A > 0: not clipped
    assert ppo_gradient(1.0, -2.0) == pytest.approx(2.0)  # and lowers a negative-advantage token's


def test_clipping_zeroes_the_gradient_past_the_clip():
    assert ppo_gradient(1.0 + EPS + 0.01, 2.0) == 0.0
    assert ppo_gradient(1.0 - EPS - 0.01, -2.0) == 0.0
    assert ppo_gradient(1.0 + EPS - 0.01, 2.0) == pytest.approx(-(1.0 + EPS - 0.01) * 2.0)


def test_no_gradient_reaches_padding():
    logps, old, advantages, mask = ppo_inputs(requires_grad=True)
    ppo_policy_loss(logps, old, advantages, mask, EPS).loss.backward()
    assert logps.grad[1, 2].item() == 0.0
    assert logps.grad[0, 1].item() == pytest.approx(-0.9 * -2.0 / 5)


def test_value_loss_by_hand():
    c = 0.2
    values = torch.tensor([[1.0, 0.0], [1.0, 0.1]], requires_grad=True)
    old_values = torch.tensor([[0.5, 0.5], [0.5, 0.0]])
    returns = torch.tensor([[0.8, 0.6], [1.5, -0.2]])
    mask = torch.ones(2, 2, dtype=torch.bool)
    out = value_loss(values, old_values, returns, mask, clip_range=c)
    # max((V - G)^2, (V_old + clip(V - V_old, -c, c) - G)^2)
    errors = [
        max((1.0 - 0.8) ** 2, (0.5 + 0.2 - 0.8) ** 2),  # 0.04
        max((0.0 - 0.6) ** 2, (0.5 - 0.2 - 0.6) ** 2),  # 0.36
        max((1.0 - 1.5) ** 2, (0.5 + 0.2 - 1.5) ** 2),  # 0.64: the clipped error is larger
        max((0.1 + 0.2) ** 2, (0.0 + 0.1 + 0.2) ** 2),  # 0.09: within the clip, equal
    ]
    assert_values(out.loss, 0.5 * sum(errors) / 4)  # 0.14125
    assert_values(out.clip_fraction, 1 / 4)
    out.loss.backward()
    # 0.5 d/dV (V - G)^2 / 4 = (V - G) / 4 where the unclipped error counts; 0 where the clipped does
    assert_values(values.grad, [[(1.0 - 0.8) / 4, (0.0 - 0.6) / 4], [0.0, (0.1 + 0.2) / 4]])


def test_padding_never_changes_the_value_loss():
    values, old_values, returns = torch.randn(3, 2, 4, generator=torch.Generator().manual_seed(2))
    mask = torch.tensor([[True, True, False, False], [True, True, True, False]])
    garbage = torch.where(mask, values, 1e4)
    narrow = value_loss(values, old_values, returns, mask, 0.2)
    padded = value_loss(garbage, old_values, returns, mask, 0.2)
    assert torch.equal(narrow.loss, padded.loss)
    assert torch.equal(narrow.clip_fraction, padded.clip_fraction)


# RLOO: three sequences. Sequence log-ratios: 0.1 + 0.2 = 0.3, -0.1, -0.3 - 0.1 = -0.4.
RLOO_LOG_RATIOS = [[0.1, 0.2], [-0.1, 0.0], [-0.3, -0.1]]
RLOO_MASK = [[True, True], [True, False], [True, True]]
RLOO_ADVANTAGES = [1.0, -0.5, -0.5]


def rloo_inputs(requires_grad=False):
    old = torch.tensor([[-1.0, -2.0], [-0.5, 0.0], [-1.5, -0.7]])
    logps = (old + torch.tensor(RLOO_LOG_RATIOS)).requires_grad_(requires_grad)
    return logps, old, torch.tensor(RLOO_ADVANTAGES), torch.tensor(RLOO_MASK)


def test_rloo_loss_by_hand():
    out = rloo_policy_loss(*rloo_inputs(), clip_eps=EPS)
    rho = [math.exp(0.3), math.exp(-0.1), math.exp(-0.4)]  # [1.35, 0.905, 0.670]
    terms = [
        -min(rho[0] * 1.0, 1.2 * 1.0),  # -1.2, clipped
        -min(rho[1] * -0.5, rho[1] * -0.5),  # 0.452
        -min(rho[2] * -0.5, 0.8 * -0.5),  # 0.4, clipped
    ]
    assert_values(out.loss, sum(terms) / 3)
    assert_values(out.clip_fraction, 2 / 3)
    assert_values(out.ratio_mean, sum(rho) / 3)
    assert_values(out.approx_kl, sum(k3(r) for r in rho) / 3)


def test_rloo_on_a_fresh_rollout_is_reinforce():
    logps, _, advantages, mask = rloo_inputs(requires_grad=True)
    out = rloo_policy_loss(logps, logps.detach(), advantages, mask, clip_eps=EPS)
    assert_values(out.loss, -sum(RLOO_ADVANTAGES) / 3)
    out.loss.backward()
    # REINFORCE: -mean_i A_i * sum_t logp_it, whose gradient is -A_i / B on each token of response i
    expected = [[-1.0 / 3, -1.0 / 3], [0.5 / 3, 0.0], [0.5 / 3, 0.5 / 3]]
    assert_values(logps.grad, expected)
    assert_values(out.clip_fraction, 0.0)


def test_rloo_refuses_per_token_advantages():
    logps, old, _, mask = rloo_inputs()
    with pytest.raises(ValueError, match=r"advantages must be \(B,\)"):
        rloo_policy_loss(logps, old, torch.zeros(3, 2), mask, EPS)


def test_a_clip_range_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match="eps_low"):
        ppo_policy_loss(*ppo_inputs(), clip_eps=1.0)
