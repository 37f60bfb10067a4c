"""prefopt.rl.rewards against values worked out by hand, and its masking."""

import math

import pytest
import torch
from rl_numbers import assert_values

from prefopt.rl.rewards import penalised_scores, sequence_rewards, token_kl, token_rewards

# Two responses, of 3 and 2 tokens (T = 3). log pi - log pi_ref = [[0.5, -1.0, 0.0], [-0.2, -0.2]].
LOGPS = [[-1.0, -2.0, -0.5], [-0.3, -1.2, 0.0]]
REF_LOGPS = [[-1.5, -1.0, -0.5], [-0.1, -1.0, 0.0]]
MASK = [[True, True, True], [True, True, False]]
SCORES = [2.0, -1.0]
ENDED_WITH_EOS = [True, False]
K1 = [[-1.0 - -1.5, -2.0 - -1.0, -0.5 - -0.5], [-0.3 - -0.1, -1.2 - -1.0, 0.0]]


def k3(log_ratio):  # (rho - 1) - log rho with rho = pi_ref / pi = exp(-log_ratio)
    return math.exp(-log_ratio) - 1.0 + log_ratio


def inputs(**overrides):
    values = {
        "scores": torch.tensor(SCORES),
        "logps": torch.tensor(LOGPS),
        "ref_logps": torch.tensor(REF_LOGPS),
        "mask": torch.tensor(MASK),
        "ended_with_eos": torch.tensor(ENDED_WITH_EOS),
    }
    return {**values, **overrides}


def test_k1_is_the_log_ratio_and_zero_on_padding():
    kl = token_kl(torch.tensor(LOGPS), torch.tensor(REF_LOGPS), torch.tensor(MASK), "k1")
    assert_values(kl, K1)


def test_k3_is_schulmans_estimator_and_never_negative():
    kl = token_kl(torch.tensor(LOGPS), torch.tensor(REF_LOGPS), torch.tensor(MASK), "k3")
    expected = [[k3(0.5), k3(-1.0), k3(0.0)], [k3(-0.2), k3(-0.2), 0.0]]
    assert_values(kl, expected)
    assert expected[0][0] == pytest.approx(math.exp(-0.5) - 0.5)
    assert bool((kl >= 0).all())


def test_token_rewards_put_the_penalised_score_on_the_last_token():
    beta, penalty = 0.1, 0.5
    rewards = token_rewards(**inputs(), kl_coef=beta, missing_eos_penalty=penalty, estimator="k1")
    # Response 0 ended with EOS: score 2.0 on its third token. Response 1 did not: -1.0 - 0.5 on
    # its second token; its third position is padding.
    expected = [
        [-beta * 0.5, -beta * -1.0, -beta * 0.0 + 2.0],
        [-beta * -0.2, -beta * -0.2 + (-1.0 - penalty), 0.0],
    ]
    assert_values(rewards, expected)


def test_token_rewards_with_k3():
    beta = 0.2
    rewards = token_rewards(**inputs(), kl_coef=beta, estimator="k3")
    expected = [
        [-beta * k3(0.5), -beta * k3(-1.0), 2.0],
        [-beta * k3(-0.2), -beta * k3(-0.2) - 1.0, 0.0],
    ]
    assert_values(rewards, expected)


def test_sequence_rewards_subtract_beta_times_the_summed_kl():
    beta, penalty = 0.1, 0.5
    rewards = sequence_rewards(**inputs(), kl_coef=beta, missing_eos_penalty=penalty)
    expected = [2.0 - beta * (0.5 - 1.0 + 0.0), -1.0 - penalty - beta * (-0.2 - 0.2)]
    assert_values(rewards, expected)  # [2.05, -1.46]


def test_sequence_reward_is_the_sum_of_the_token_rewards():
    for estimator in ("k1", "k3"):
        tokens = token_rewards(
            **inputs(), kl_coef=0.3, missing_eos_penalty=1.0, estimator=estimator
        )
        sequence = sequence_rewards(
            **inputs(), kl_coef=0.3, missing_eos_penalty=1.0, estimator=estimator
        )
        assert_values(tokens.sum(-1), sequence.tolist())


def test_by_default_a_response_without_eos_keeps_its_score():
    assert penalised_scores(torch.tensor(SCORES), torch.tensor(ENDED_WITH_EOS)).tolist() == SCORES


def test_padding_never_changes_the_rewards():
    wide = torch.full((2, 5), float("nan"))  # (B, 5): two more padding columns, garbage on padding
    wide[:, :3] = torch.tensor(LOGPS)
    wide[1, 2] = float("inf")
    ref = torch.full((2, 5), -7.0)
    ref[:, :3] = torch.tensor(REF_LOGPS)
    mask = torch.zeros((2, 5), dtype=torch.bool)
    mask[:, :3] = torch.tensor(MASK)
    for estimator in ("k1", "k3"):
        narrow = token_rewards(**inputs(), kl_coef=0.1, estimator=estimator)
        padded = token_rewards(
            **inputs(logps=wide, ref_logps=ref, mask=mask), kl_coef=0.1, estimator=estimator
        )
        assert torch.equal(padded[:, :3], narrow)
        assert torch.equal(padded[:, 3:], torch.zeros(2, 2))
        assert torch.equal(
            sequence_rewards(**inputs(logps=wide, ref_logps=ref, mask=mask), kl_coef=0.1),
            sequence_rewards(**inputs(), kl_coef=0.1),
        )


def test_rewards_carry_no_gradient():
    logps = torch.tensor(LOGPS, requires_grad=True)
    assert not token_rewards(**inputs(logps=logps), kl_coef=0.1).requires_grad
    assert not sequence_rewards(**inputs(logps=logps), kl_coef=0.1).requires_grad


@pytest.mark.parametrize(
    ("overrides", "kwargs", "message"),
    [
        ({}, {"estimator": "k2"}, "unknown KL estimator"),
        ({}, {"kl_coef": -0.1}, "kl_coef"),
        ({}, {"missing_eos_penalty": -1.0}, "missing_eos_penalty"),
        ({"mask": torch.tensor([[True, False, True], [True, True, False]])}, {}, "right-padded"),
        ({"mask": torch.tensor([[True, True, True], [False, False, False]])}, {}, "at least one"),
        ({"scores": torch.tensor([1.0, 2.0, 3.0])}, {}, r"\(B,\)"),
        ({"ref_logps": torch.zeros(2, 2)}, {}, "one shape"),
    ],
)
def test_bad_inputs_are_refused(overrides, kwargs, message):
    with pytest.raises(ValueError, match=message):
        token_rewards(**inputs(**overrides), **{"kl_coef": 0.1, **kwargs})
