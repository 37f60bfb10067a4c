"""prefopt.rl.advantages: GAE, whitening and RLOO's leave-one-out baseline by hand."""

import math

import pytest
import torch
from rl_numbers import assert_values

from prefopt.rl.advantages import gae, masked_whiten, rloo_advantages

# Two responses (T = 3): the first of 3 tokens, the second of 2 (its third column is padding).
REWARDS = [[0.1, -0.2, 1.0], [0.3, 0.7, 0.0]]
VALUES = [[0.5, 0.4, 0.3], [0.2, 0.6, 0.0]]
MASK = [[True, True, True], [True, True, False]]
GAMMA, LAM = 0.9, 0.8


def hand_gae():
    """A_t = delta_t + gamma lam A_{t+1}, delta_t = r_t + gamma V_{t+1} - V_t, V and A 0 at the end."""
    gl = GAMMA * LAM
    # Response 0.
    d2 = 1.0 + GAMMA * 0.0 - 0.3  # 0.7
    d1 = -0.2 + GAMMA * 0.3 - 0.4  # -0.33
    d0 = 0.1 + GAMMA * 0.4 - 0.5  # -0.04
    a2 = d2
    a1 = d1 + gl * a2  # 0.174
    a0 = d0 + gl * a1  # 0.08528
    # Response 1: its value after the second token is 0.
    e1 = 0.7 + GAMMA * 0.0 - 0.6  # 0.1
    e0 = 0.3 + GAMMA * 0.6 - 0.2  # 0.64
    b1 = e1
    b0 = e0 + gl * b1  # 0.712
    return [[a0, a1, a2], [b0, b1, 0.0]]


def run_gae(rewards=REWARDS, values=VALUES, mask=MASK, gamma=GAMMA, lam=LAM):
    return gae(torch.tensor(rewards), torch.tensor(values), torch.tensor(mask), gamma, lam)


def test_gae_by_hand():
    advantages, returns = run_gae()
    expected = hand_gae()
    assert_values(advantages, expected)
    assert_values(advantages[0, 0], 0.08528)
    assert_values(advantages[1, 0], 0.712)
    returns_by_hand = [
        [a + v for a, v in zip(ar, vr, strict=True)]
        for ar, vr in zip(expected, VALUES, strict=True)
    ]
    returns_by_hand[1][2] = 0.0
    assert_values(returns, returns_by_hand)


def test_gae_with_lambda_one_and_no_discount_is_the_return_to_go_minus_the_value():
    advantages, returns = run_gae(gamma=1.0, lam=1.0)
    to_go = [[0.1 - 0.2 + 1.0, -0.2 + 1.0, 1.0], [0.3 + 0.7, 0.7, 0.0]]
    assert_values(returns, to_go)
    assert_values(advantages, [[0.9 - 0.5, 0.8 - 0.4, 1.0 - 0.3], [1.0 - 0.2, 0.7 - 0.6, 0.0]])


def test_gae_with_lambda_zero_is_the_one_step_td_error():
    advantages, _ = run_gae(lam=0.0)
    assert_values(advantages, [[-0.04, -0.33, 0.7], [0.64, 0.1, 0.0]])


def test_padding_never_changes_gae():
    rewards = torch.full((2, 5), 9.0)  # (B, 5): garbage on two more padding columns
    values = torch.full((2, 5), -4.0)
    mask = torch.zeros((2, 5), dtype=torch.bool)
    rewards[:, :3], values[:, :3], mask[:, :3] = (
        torch.tensor(REWARDS),
        torch.tensor(VALUES),
        torch.tensor(MASK),
    )
    rewards[1, 2], values[1, 2] = 5.0, 3.0  # response 1's padding column
    advantages, returns = gae(rewards, values, mask, GAMMA, LAM)
    assert_values(advantages, [row + [0.0, 0.0] for row in hand_gae()])
    _, narrow_returns = run_gae()
    assert torch.equal(returns[:, :3], narrow_returns)
    assert torch.equal(returns[:, 3:], torch.zeros(2, 2))


def test_gae_refuses_a_discount_outside_zero_one():
    with pytest.raises(ValueError, match="gamma"):
        run_gae(gamma=1.5)


def test_whitening_by_hand():
    values = torch.tensor([[1.0, 2.0, 3.0], [4.0, 100.0, -100.0]])
    mask = torch.tensor([[True, True, True], [True, False, False]])
    mean = (1.0 + 2.0 + 3.0 + 4.0) / 4  # 2.5
    var = (1.5**2 + 0.5**2 + 0.5**2 + 1.5**2) / (4 - 1)  # 5/3, unbiased
    scale = 1.0 / math.sqrt(var + 1e-8)
    whitened = masked_whiten(values, mask)
    assert_values(whitened, [[-1.5 * scale, -0.5 * scale, 0.5 * scale], [1.5 * scale, 0.0, 0.0]])
    scaled = masked_whiten(values, mask, shift_mean=False)
    assert_values(
        scaled,
        [
            [-1.5 * scale + mean, -0.5 * scale + mean, 0.5 * scale + mean],
            [1.5 * scale + mean, 0, 0],
        ],
    )


def test_rloo_advantages_by_hand():
    rewards = torch.tensor([[1.0, 2.0, 4.0], [0.0, 0.0, 3.0]])
    expected = [
        [1.0 - (2.0 + 4.0) / 2, 2.0 - (1.0 + 4.0) / 2, 4.0 - (1.0 + 2.0) / 2],  # [-2, -0.5, 2.5]
        [0.0 - (0.0 + 3.0) / 2, 0.0 - (0.0 + 3.0) / 2, 3.0 - (0.0 + 0.0) / 2],  # [-1.5, -1.5, 3]
    ]
    assert_values(rloo_advantages(rewards), expected)


def test_rloo_baseline_is_the_mean_of_the_other_samples():
    rewards = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))  # (P, k)
    advantages = rloo_advantages(rewards)
    for p in range(4):
        for i in range(5):
            others = [rewards[p, j].item() for j in range(5) if j != i]
            baseline = rewards[p, i].item() - advantages[p, i].item()
            assert baseline == pytest.approx(sum(others) / len(others), abs=1e-6)


def test_rloo_advantages_sum_to_zero_within_each_prompt():
    rewards = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    assert_values(rloo_advantages(rewards).sum(1), [0.0, 0.0, 0.0])


def test_rloo_refuses_a_single_sample_per_prompt():
    with pytest.raises(ValueError, match=r"k >= 2 samples per prompt.*got k=1"):
        rloo_advantages(torch.ones(3, 1))
