"""Each loss against values worked out in the test with plain math on the shared small numbers."""

import math

import pytest
import torch
from loss_inputs import PAIRS, SINGLES, paired, unpaired

from prefopt.losses import build_loss


def log_sigmoid(x):
    return -math.log1p(math.exp(-x))


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def column(name, data=PAIRS):
    return [float(v) for v in data[name]]


CHOSEN, REJECTED = column("chosen_logps"), column("rejected_logps")
REF_CHOSEN, REF_REJECTED = column("ref_chosen_logps"), column("ref_rejected_logps")
LEN_W, LEN_L = column("chosen_lengths"), column("rejected_lengths")
D_W = [c - r for c, r in zip(CHOSEN, REF_CHOSEN, strict=True)]  # [0.5, -1.0, 0.2]
D_L = [c - r for c, r in zip(REJECTED, REF_REJECTED, strict=True)]  # [-1.0, 0.5, -0.5]
DELTA = [w - l for w, l in zip(D_W, D_L, strict=True)]  # [1.5, -1.5, 0.7]
AVG_W = [c / n for c, n in zip(CHOSEN, LEN_W, strict=True)]  # [-0.5, -2.0, -3.0]
AVG_L = [r / n for r, n in zip(REJECTED, LEN_L, strict=True)]  # [-0.5, -2.0, -0.7]


def approx(values):
    return pytest.approx(values, rel=1e-5, abs=1e-6)


def test_shared_numbers_are_the_documented_ones():
    assert approx([0.5, -1.0, 0.2]) == D_W
    assert approx([-1.0, 0.5, -0.5]) == D_L
    assert approx([-0.5, -2.0, -0.7]) == AVG_L


def test_dpo_equals_log_two_when_policy_equals_reference():
    inputs = paired(chosen_logps=REF_CHOSEN, rejected_logps=REF_REJECTED)
    assert build_loss("dpo").forward(inputs).losses.tolist() == approx([math.log(2.0)] * 3)


def test_dpo():
    beta = 0.1
    out = build_loss("dpo", beta=beta)(paired())
    assert out.losses.tolist() == approx([-log_sigmoid(beta * d) for d in DELTA])
    assert out.chosen_rewards.tolist() == approx([beta * d for d in D_W])
    assert out.rejected_rewards.tolist() == approx([beta * d for d in D_L])


def test_conservative_dpo_label_smoothing():
    beta, eps = 0.5, 0.2
    out = build_loss("dpo", beta=beta, label_smoothing=eps)(paired())
    expected = [-(1 - eps) * log_sigmoid(beta * d) - eps * log_sigmoid(-beta * d) for d in DELTA]
    assert out.losses.tolist() == approx(expected)


def test_dpo_soft_labels_read_weights_as_preference_probabilities():
    beta, p = 0.5, [1.0, 0.3, 0.5]
    inputs = paired(weights=p)
    out = build_loss("dpo", beta=beta, soft_labels=True)(inputs)
    expected = [
        -q * log_sigmoid(beta * d) - (1 - q) * log_sigmoid(-beta * d)
        for q, d in zip(p, DELTA, strict=True)
    ]
    assert out.losses.tolist() == approx(expected)


def test_ipo_length_normalized():
    beta = 0.5  # target gap 1/(2 beta) = 1
    out = build_loss("ipo", beta=beta)(paired())
    h = [w / nw - lo / nl for w, lo, nw, nl in zip(D_W, D_L, LEN_W, LEN_L, strict=True)]
    assert h == approx([0.5, -1 / 3 - 0.25, 0.3])
    assert out.losses.tolist() == approx([(x - 1.0) ** 2 for x in h])
    assert out.chosen_rewards.tolist() == approx(
        [beta * w / n for w, n in zip(D_W, LEN_W, strict=True)]
    )


def test_ipo_sequence_sums_as_in_the_paper():
    beta = 0.25  # target gap 2
    out = build_loss("ipo", beta=beta, length_normalize=False)(paired(chosen_lengths=None))
    assert out.losses.tolist() == approx([(d - 2.0) ** 2 for d in DELTA])  # [0.25, 12.25, 1.69]


def test_kto():
    beta, w_d, w_u = 0.1, 1.0, 1.5
    out = build_loss("kto", beta=beta, desirable_weight=w_d, undesirable_weight=w_u)(unpaired())
    r = [a - b for a, b in zip(column("logps", SINGLES), column("ref_logps", SINGLES), strict=True)]
    z0 = max(0.0, (0.5 + 0.4 - 0.2 + 0.5) / 4)  # 0.3
    expected = [
        w_d * (1 - sigmoid(beta * (x - z0))) if good else w_u * (1 - sigmoid(beta * (z0 - x)))
        for x, good in zip(r, SINGLES["desirable"], strict=True)
    ]
    assert out.losses.tolist() == approx(expected)
    assert out.metrics["kl"].item() == pytest.approx(z0)
    assert out.chosen_rewards.tolist() == approx([beta * 0.5, beta * 0.2])
    assert out.rejected_rewards.tolist() == approx([beta * -1.0, beta * -0.3])


def test_kto_clamps_a_negative_kl_estimate_to_zero():
    inputs = unpaired(ref_kl_logps=[-3.0, -2.0, -4.0, -1.0])  # kl - ref_kl = [-1, -1, -1, -1]
    out = build_loss("kto", beta=1.0)(inputs)
    assert out.metrics["kl"].item() == 0.0
    r = [0.5, -1.0, 0.2, -0.3]
    expected = [
        1 - sigmoid(x) if good else 1 - sigmoid(-x)
        for x, good in zip(r, SINGLES["desirable"], strict=True)
    ]
    assert out.losses.tolist() == approx(expected)


def test_kto_with_only_desirable_examples_gives_empty_rejected_rewards():
    out = build_loss("kto")(unpaired(desirable=[True] * 4))
    assert out.chosen_rewards.shape == (4,)
    assert out.rejected_rewards.shape == (0,)


def log_odds(a):
    return a - math.log(1.0 - math.exp(a))


def test_orpo():
    beta = 0.2
    out = build_loss("orpo", beta=beta)(paired(reference=False))
    expected = [
        -w - beta * log_sigmoid(log_odds(w) - log_odds(lo))
        for w, lo in zip(AVG_W, AVG_L, strict=True)
    ]
    # First pair: equal averages, so log odds ratio 0 and loss 0.5 + 0.2 log 2.
    assert expected[0] == pytest.approx(0.5 + 0.2 * math.log(2.0))
    assert out.losses.tolist() == approx(expected)
    assert out.metrics["nll"].item() == pytest.approx(-sum(AVG_W) / 3)
    assert out.chosen_rewards.tolist() == approx([beta * w for w in AVG_W])


def test_simpo():
    beta, gamma = 2.0, 0.5
    out = build_loss("simpo", beta=beta, gamma=gamma)(paired(reference=False))
    expected = [-log_sigmoid(beta * (w - lo) - gamma) for w, lo in zip(AVG_W, AVG_L, strict=True)]
    assert expected[0] == pytest.approx(-log_sigmoid(-0.5))
    assert out.losses.tolist() == approx(expected)
    assert out.rejected_rewards.tolist() == approx([beta * lo for lo in AVG_L])


def test_losses_are_fp32_for_bf16_inputs():
    out = build_loss("dpo")(paired(dtype=torch.bfloat16))
    assert out.losses.dtype == torch.float32
