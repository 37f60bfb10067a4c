"""Unlikelihood: hand-computed values, per-token gradients, the clamp at p = 1 and its alpha."""

import math

import pytest
import torch

from prefopt.losses import PairedLogps, ResponseTokens, build_loss

# Two pairs, response-aligned token log-probs (0 past each length).
CHOSEN = [[-0.5, -1.0, -2.0], [-0.4, 0.0, 0.0]]
REJECTED = [[-0.2, -1.5, 0.0], [-3.0, -0.7, -0.1]]
LEN_W, LEN_L = [3, 1], [2, 3]


def inputs(chosen=CHOSEN, rejected=REJECTED, requires_grad=False):
    """PairedLogps whose sequence sums are the token rows' sums (differentiable through them)."""
    tokens = ResponseTokens(
        chosen_logps=torch.tensor(chosen, requires_grad=requires_grad),
        rejected_logps=torch.tensor(rejected, requires_grad=requires_grad),
    )
    return PairedLogps(
        chosen_logps=tokens.chosen_logps.sum(-1),
        rejected_logps=tokens.rejected_logps.sum(-1),
        chosen_lengths=torch.tensor(LEN_W),
        rejected_lengths=torch.tensor(LEN_L),
        tokens=tokens,
    )


def unlikely(logp):
    """-log(1 - p) of a token of log-prob ``logp``."""
    return -math.log(1.0 - math.exp(logp))


def odds(logp):
    """p / (1 - p), the derivative of -log(1 - p) in log p."""
    return math.exp(logp) / (1.0 - math.exp(logp))


def test_unlikelihood_values():
    alpha = 0.5
    nll = [(0.5 + 1.0 + 2.0) / 3, 0.4]
    # The rejected response's padding (pair 0's third column) adds nothing.
    ul = [
        (unlikely(-0.2) + unlikely(-1.5)) / 2,
        (unlikely(-3.0) + unlikely(-0.7) + unlikely(-0.1)) / 3,
    ]
    out = build_loss("unlikelihood", alpha=alpha)(inputs())
    expected = [n + alpha * u for n, u in zip(nll, ul, strict=True)]
    assert out.losses.tolist() == pytest.approx(expected, rel=1e-6)
    assert out.chosen_rewards.tolist() == pytest.approx([-3.5 / 3, -0.4], rel=1e-6)
    assert out.rejected_rewards.tolist() == pytest.approx([-1.7 / 2, -3.8 / 3], rel=1e-6)
    assert out.metrics["nll"].item() == pytest.approx(sum(nll) / 2, rel=1e-6)
    assert out.metrics["unlikelihood"].item() == pytest.approx(sum(ul) / 2, rel=1e-6)


def test_alpha_zero_is_preferred_ft():
    ours = build_loss("unlikelihood", alpha=0.0)(inputs()).losses
    torch.testing.assert_close(ours, build_loss("sft")(inputs()).losses)


def test_gradient_on_each_rejected_token_is_alpha_over_length_times_its_odds():
    alpha = 0.5
    x = inputs(requires_grad=True)
    build_loss("unlikelihood", alpha=alpha)(x).losses.sum().backward()
    expected = [
        [alpha / 2 * odds(-0.2), alpha / 2 * odds(-1.5), 0.0],  # padding gets no gradient
        [alpha / 3 * odds(v) for v in (-3.0, -0.7, -0.1)],
    ]
    assert x.tokens.rejected_logps.grad.tolist() == [
        pytest.approx(row, rel=1e-5) for row in expected
    ]
    chosen = x.tokens.chosen_logps.grad  # (2, 3)
    assert chosen[0].tolist() == pytest.approx([-1 / 3] * 3, rel=1e-6)  # descent raises them
    assert chosen[1, 0].item() == pytest.approx(-1.0, rel=1e-6)


def test_a_rejected_token_of_probability_one_is_clamped():
    # log p = 0 and -1e-7 are both read as -1e-6: finite loss, no gradient on those tokens.
    # Pair 0's third column is padding; pair 1's third token (log p = 0) is inside its response.
    rejected = [[0.0, -1e-7, 0.0], [-1e-7, -1.0, 0.0]]
    x = inputs(rejected=rejected, requires_grad=True)
    out = build_loss("unlikelihood", alpha=1.0)(x)
    at_clamp = -math.log(-math.expm1(-1e-6))  # about 13.8
    expected = [3.5 / 3 + at_clamp, 0.4 + (2 * at_clamp + unlikely(-1.0)) / 3]
    assert out.losses.tolist() == pytest.approx(expected, rel=1e-5)
    out.losses.sum().backward()
    grad = x.tokens.rejected_logps.grad  # (2, 3)
    assert grad[0, :2].tolist() == [0.0, 0.0]
    assert grad[1].tolist() == pytest.approx([0.0, odds(-1.0) / 3, 0.0])


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan")])
def test_alpha_must_lie_in_zero_one(alpha):
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        build_loss("unlikelihood", alpha=alpha)
