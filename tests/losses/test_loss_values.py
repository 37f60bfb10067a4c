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


def test_hinge():
    out = build_loss("hinge", beta=0.5)(paired())
    assert out.losses.tolist() == approx([0.25, 1.75, 0.65])  # max(0, 1 - 0.5 Δ)


def test_robust_dpo():
    beta, eps = 0.5, 0.2
    out = build_loss("robust", beta=beta, label_smoothing=eps)(paired())
    expected = [
        ((1 - eps) * -log_sigmoid(beta * d) + eps * log_sigmoid(-beta * d)) / (1 - 2 * eps)
        for d in DELTA
    ]
    assert out.losses.tolist() == approx(expected)


def test_robust_dpo_at_zero_noise_is_dpo():
    inputs = paired()
    robust = build_loss("robust", beta=0.3, label_smoothing=0.0)(inputs).losses
    dpo = build_loss("dpo", beta=0.3)(inputs).losses
    assert robust.tolist() == approx(dpo.tolist())


def test_r_dpo():
    beta, alpha = 0.1, 0.05
    out = build_loss("r_dpo", beta=beta, alpha=alpha)(paired())
    gaps = [w - lo for w, lo in zip(LEN_W, LEN_L, strict=True)]  # [-2, 1, -4]
    expected = [-log_sigmoid(beta * d + alpha * g) for d, g in zip(DELTA, gaps, strict=True)]
    assert out.losses.tolist() == approx(expected)


def test_bco_pair_without_running_mean():
    beta = 0.5
    out = build_loss("bco_pair", beta=beta, running_mean=False)(paired())
    expected = [
        -log_sigmoid(beta * w) - log_sigmoid(-beta * lo) for w, lo in zip(D_W, D_L, strict=True)
    ]
    assert out.losses.tolist() == approx(expected)


def test_bco_pair_running_mean_over_batches():
    beta = 0.5
    loss = build_loss("bco_pair", beta=beta)
    first_mean = beta * (sum(D_W) + sum(D_L)) / 6  # -0.65 / 6
    out = loss(paired())
    assert out.metrics["delta"].item() == pytest.approx(first_mean)
    expected = [
        -log_sigmoid(beta * w - first_mean) - log_sigmoid(-(beta * lo - first_mean))
        for w, lo in zip(D_W, D_L, strict=True)
    ]
    assert out.losses.tolist() == approx(expected)
    # A second batch whose log-ratios are all 2: its mean reward is 1, delta the mean of both.
    shifted = paired(
        chosen_logps=[r + 2 for r in REF_CHOSEN], rejected_logps=[r + 2 for r in REF_REJECTED]
    )
    second = loss(shifted)
    assert second.metrics["delta"].item() == pytest.approx((first_mean + beta * 2) / 2)
    # Evaluation mode reads delta without moving it.
    loss.eval()
    assert loss(paired()).metrics["delta"].item() == pytest.approx((first_mean + beta * 2) / 2)
    assert int(loss.num_batches) == 2


def test_nca_pair():
    beta = 1.0
    out = build_loss("nca_pair", beta=beta)(paired())
    expected = [
        -log_sigmoid(w) - 0.5 * log_sigmoid(-w) - 0.5 * log_sigmoid(-lo)
        for w, lo in zip(D_W, D_L, strict=True)
    ]
    assert out.losses.tolist() == approx(expected)


def test_apo_zero():
    out = build_loss("apo_zero", beta=1.0)(paired())
    expected = [1 - sigmoid(w) + sigmoid(lo) for w, lo in zip(D_W, D_L, strict=True)]
    assert out.losses.tolist() == approx(expected)


def test_apo_down():
    out = build_loss("apo_down", beta=1.0)(paired())
    expected = [sigmoid(w) + 1 - sigmoid(w - lo) for w, lo in zip(D_W, D_L, strict=True)]
    assert out.losses.tolist() == approx(expected)


def test_sppo_hard():
    out = build_loss("sppo_hard", beta=0.5)(paired())  # targets +1 and -1
    assert out.losses.tolist() == approx([0.25, 4.0 + 2.25, 0.64 + 0.25])


def test_exo_pair():
    beta, eps = 1.0, 0.01
    out = build_loss("exo_pair", beta=beta, label_smoothing=eps)(paired())
    expected = []
    for d in DELTA:
        q = sigmoid(beta * d)
        expected.append(
            q * (math.log(q) - math.log(1 - eps)) + (1 - q) * (math.log(1 - q) - math.log(eps))
        )
    assert out.losses.tolist() == approx(expected)
    assert min(expected) > 0  # a KL divergence between different Bernoullis


def test_dpop():
    beta, lam = 0.1, 5.0
    out = build_loss("dpop", beta=beta, lambda_dpop=lam)(paired())
    penalty = [max(0.0, r - c) for r, c in zip(REF_CHOSEN, CHOSEN, strict=True)]  # [0, 1, 0]
    assert penalty == approx([0.0, 1.0, 0.0])
    expected = [-log_sigmoid(beta * (d - lam * p)) for d, p in zip(DELTA, penalty, strict=True)]
    assert out.losses.tolist() == approx(expected)
    assert out.metrics["penalty"].item() == pytest.approx(1 / 3)


def test_sft():
    out = build_loss("sft")(paired(reference=False))
    assert out.losses.tolist() == approx([0.5, 2.0, 3.0])
    assert out.rejected_rewards.tolist() == approx(AVG_L)
