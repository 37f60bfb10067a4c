"""aot, aot_unpaired, cpo, simpo's AlphaPO shape and ablations, sigmoid_norm's margin, kto_pair and
apo_zero_unpaired by hand."""

import dataclasses
import math

import pytest
import torch
from loss_inputs import PAIRS, SINGLES, paired, unpaired
from test_loss_behaviour import grads
from test_loss_values import (
    AVG_L,
    AVG_W,
    CHOSEN,
    D_L,
    D_W,
    LEN_W,
    REF_CHOSEN,
    REF_REJECTED,
    REJECTED,
    approx,
    column,
    log_sigmoid,
    sigmoid,
)

from prefopt.losses import build_loss, loss_class
from prefopt.losses.base import PairedLogps, ResponseTokens

MARGINS = [c - r for c, r in zip(CHOSEN, REJECTED, strict=True)]  # [1.0, -2.0, 0.5]
REF_MARGINS = [c - r for c, r in zip(REF_CHOSEN, REF_REJECTED, strict=True)]  # [-0.5, -0.5, -0.2]


def conservative(x, eps):
    """-(1 - ε) log σ(x) - ε log σ(-x)."""
    return -(1 - eps) * log_sigmoid(x) - eps * log_sigmoid(-x)


def rank_matched(values, baseline):
    """values_i minus the baseline's sorted value at the rank of values_i (values distinct)."""
    ordered, ordered_baseline = sorted(values), sorted(baseline)
    return [v - ordered_baseline[ordered.index(v)] for v in values]


def permuted(inputs, order):
    """``inputs`` with every tensor of the batch reordered by ``order``."""
    index = torch.tensor(order)
    tensors = {
        field.name: getattr(inputs, field.name)
        for field in dataclasses.fields(inputs)
        if isinstance(getattr(inputs, field.name), torch.Tensor)
    }
    return dataclasses.replace(inputs, **{key: value[index] for key, value in tensors.items()})


# aot and aot_unpaired


def test_shared_numbers_give_the_documented_quantile_gaps():
    assert approx([1.0, -2.0, 0.5]) == MARGINS
    assert approx([-0.5, -0.5, -0.2]) == REF_MARGINS
    assert approx([1.2, -1.5, 1.0]) == rank_matched(MARGINS, REF_MARGINS)  # DPO's Δ: 1.5, -1.5, 0.7
    assert approx([0.0, 0.0, 0.7]) == rank_matched(D_W, D_L)


@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_aot(eps):
    beta = 0.5
    out = build_loss("aot", beta=beta, label_smoothing=eps)(paired())
    gaps = rank_matched(MARGINS, REF_MARGINS)
    assert out.losses.tolist() == approx([conservative(beta * g, eps) for g in gaps])
    # TRL's form: the i-th smallest policy margin against the i-th smallest reference margin.
    trl = [
        conservative(beta * (a - b), eps)
        for a, b in zip(sorted(MARGINS), sorted(REF_MARGINS), strict=True)
    ]
    assert out.losses.sum().item() == pytest.approx(sum(trl))
    assert out.chosen_rewards.tolist() == approx([beta * d for d in D_W])
    assert out.rejected_rewards.tolist() == approx([beta * d for d in D_L])


@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_aot_unpaired(eps):
    beta = 0.5
    out = build_loss("aot_unpaired", beta=beta, label_smoothing=eps)(paired())
    gaps = rank_matched(D_W, D_L)
    assert out.losses.tolist() == approx([conservative(beta * g, eps) for g in gaps])
    trl = [conservative(beta * (a - b), eps) for a, b in zip(sorted(D_W), sorted(D_L), strict=True)]
    assert out.losses.sum().item() == pytest.approx(sum(trl))
    assert out.rejected_rewards.tolist() == approx([beta * d for d in D_L])


@pytest.mark.parametrize("name", ["aot", "aot_unpaired"])
def test_aot_compares_the_whole_batch(name):
    cls = loss_class(name)
    assert cls.whole_batch and cls.min_batch_size == 2
    with pytest.raises(ValueError, match="at least 2"):
        build_loss(name)(paired(**{key: values[:1] for key, values in PAIRS.items()}))


@pytest.mark.parametrize("name", ["aot", "aot_unpaired"])
def test_permuting_the_batch_permutes_the_losses(name):
    loss = build_loss(name, beta=0.5)
    order = [2, 0, 1]
    plain = loss(paired()).losses
    shuffled = loss(permuted(paired(), order)).losses
    assert shuffled.tolist() == approx(plain[torch.tensor(order)].tolist())


def test_aot_loss_of_one_pair_moves_with_another_pairs_reference():
    # Pair 2's reference margin drops from -0.2 to -1.2: the sorted reference margins become
    # [-1.2, -0.5, -0.5], so pairs 0 (rank 2) and 1 (rank 0) get gaps 1.5 and -0.8.
    moved = paired(ref_rejected_logps=[-1.0, -4.5, -2.0])
    beta = 0.5
    before = build_loss("aot", beta=beta)(paired()).losses
    after = build_loss("aot", beta=beta)(moved).losses
    assert after[:2].tolist() == approx([-log_sigmoid(beta * 1.5), -log_sigmoid(beta * -0.8)])
    assert (after[:2] != before[:2]).all()
    dpo = build_loss("dpo", beta=beta)  # per-pair control: pairs 0 and 1 do not move
    assert dpo(moved).losses[:2].tolist() == approx(dpo(paired()).losses[:2].tolist())


def test_aot_unpaired_ignores_which_rejected_response_came_with_which_chosen():
    inputs = paired()
    index = torch.tensor([1, 2, 0])
    reshuffled = dataclasses.replace(
        inputs,
        rejected_logps=inputs.rejected_logps[index],
        ref_rejected_logps=inputs.ref_rejected_logps[index],
    )
    unpaired_aot = build_loss("aot_unpaired", beta=0.5)
    assert unpaired_aot(reshuffled).losses.tolist() == approx(unpaired_aot(inputs).losses.tolist())
    paired_aot = build_loss("aot", beta=0.5)  # the paired variant reads the pairing
    assert paired_aot(reshuffled).losses.tolist() != approx(paired_aot(inputs).losses.tolist())


# cpo


@pytest.mark.parametrize(("cpo_alpha", "eps"), [(1.0, 0.0), (0.5, 0.2), (0.0, 0.0)])
def test_cpo(cpo_alpha, eps):
    beta = 0.5
    out = build_loss("cpo", beta=beta, cpo_alpha=cpo_alpha, label_smoothing=eps)(
        paired(reference=False)
    )
    expected = [
        conservative(beta * m, eps) - cpo_alpha * w for m, w in zip(MARGINS, AVG_W, strict=True)
    ]
    assert out.losses.tolist() == approx(expected)
    assert out.metrics["nll"].item() == pytest.approx(-sum(AVG_W) / 3)
    assert out.chosen_rewards.tolist() == approx([beta * c for c in CHOSEN])
    assert out.rejected_rewards.tolist() == approx([beta * r for r in REJECTED])


def test_cpo_nll_adds_minus_one_over_length_to_the_chosen_gradient():
    inputs = paired(requires_grad=True, reference=False)
    (with_nll,) = grads(build_loss("cpo", cpo_alpha=1.0), inputs, ["chosen_logps"])
    (without,) = grads(build_loss("cpo", cpo_alpha=0.0), inputs, ["chosen_logps"])
    assert (with_nll - without).tolist() == approx([-1.0 / n for n in LEN_W])


# simpo with AlphaPO's reward shape


def alphapo_reward(mean_logp, alpha):
    """The AlphaPO paper's (1 - p^-α) / α of the per-token probability p = exp(mean log-prob)."""
    return (1 - math.exp(mean_logp) ** -alpha) / alpha


@pytest.mark.parametrize("alpha", [0.5, -1.0])
def test_simpo_with_alphapo_reward_shape(alpha):
    beta, gamma = 2.0, 0.5
    out = build_loss("simpo", beta=beta, gamma=gamma, alpha=alpha)(paired(reference=False))
    chosen = [alphapo_reward(a, alpha) for a in AVG_W]
    rejected = [alphapo_reward(a, alpha) for a in AVG_L]
    expected = [
        -log_sigmoid(beta * (w - lo) - gamma) for w, lo in zip(chosen, rejected, strict=True)
    ]
    assert out.losses.tolist() == approx(expected)
    assert out.chosen_rewards.tolist() == approx([beta * w for w in chosen])
    plain = build_loss("simpo", beta=beta, gamma=gamma)(paired(reference=False)).losses
    assert out.losses[2].item() != pytest.approx(plain[2].item())  # unequal averages: it matters


def test_simpo_alphapo_shape_tends_to_the_log_reward_as_alpha_goes_to_zero():
    inputs = paired(dtype=torch.float64, reference=False)
    plain = build_loss("simpo")(inputs).losses
    near_zero = build_loss("simpo", alpha=1e-8)(inputs).losses
    assert near_zero.tolist() == pytest.approx(plain.tolist(), rel=1e-7)


# kto_pair


def kto_pair_by_hand(beta, d_w, d_l):
    z_w, z_l = max(0.0, sum(d_w) / len(d_w)), max(0.0, sum(d_l) / len(d_l))
    losses = [
        0.5 * ((1 - sigmoid(beta * (w - z_l))) + (1 - sigmoid(beta * (z_w - lo))))
        for w, lo in zip(d_w, d_l, strict=True)
    ]
    return losses, z_w, z_l


def test_kto_pair_with_negative_batch_log_ratios_has_zero_baselines():
    beta = 0.5
    out = build_loss("kto_pair", beta=beta)(paired())
    losses, z_w, z_l = kto_pair_by_hand(beta, D_W, D_L)
    assert (z_w, z_l) == (0.0, 0.0)  # mean Δ_w = -0.1, mean Δ_l = -1/3
    assert out.losses.tolist() == approx(losses)
    assert out.chosen_rewards.tolist() == approx([beta * d for d in D_W])


def test_kto_pair_baselines_come_from_the_other_half():
    beta = 0.5
    # References one nat lower: Δ_w = [1.5, 0, 1.2] (z_w = 0.9), Δ_l = [0, 1.5, 0.5] (z_l = 2/3).
    inputs = paired(
        ref_chosen_logps=[r - 1 for r in REF_CHOSEN],
        ref_rejected_logps=[r - 1 for r in REF_REJECTED],
    )
    out = build_loss("kto_pair", beta=beta)(inputs)
    losses, z_w, z_l = kto_pair_by_hand(beta, [d + 1 for d in D_W], [d + 1 for d in D_L])
    assert (z_w, z_l) == pytest.approx((0.9, 2 / 3))
    assert out.losses.tolist() == approx(losses)
    assert out.metrics["kl_chosen"].item() == pytest.approx(z_w)
    assert out.metrics["kl_rejected"].item() == pytest.approx(z_l)


def test_kto_pair_back_propagates_the_baselines():
    beta = 0.5
    inputs = paired(
        requires_grad=True,
        ref_chosen_logps=[r - 1 for r in REF_CHOSEN],
        ref_rejected_logps=[r - 1 for r in REF_REJECTED],
    )
    first_loss = build_loss("kto_pair", beta=beta)(inputs).losses[0]
    (d_rejected,) = torch.autograd.grad(first_loss, [inputs.rejected_logps])
    # Pair 0's chosen term ½ σ(-β(Δ_w,0 - z_l)) reaches every rejected response through z_l.
    s = sigmoid(-beta * (1.5 - 2 / 3))
    assert d_rejected[1:].tolist() == approx([0.5 * beta * s * (1 - s) / 3] * 2)


# apo_zero_unpaired


def test_apo_zero_unpaired():
    beta, w_d, w_u = 1.0, 1.0, 1.5
    loss = build_loss("apo_zero_unpaired", beta=beta, desirable_weight=w_d, undesirable_weight=w_u)
    out = loss(unpaired(kl_logps=None, ref_kl_logps=None))  # no KL baseline is read
    r = [a - b for a, b in zip(column("logps", SINGLES), column("ref_logps", SINGLES), strict=True)]
    expected = [
        w_d * (1 - sigmoid(beta * x)) if good else w_u * sigmoid(beta * x)
        for x, good in zip(r, SINGLES["desirable"], strict=True)
    ]
    assert out.losses.tolist() == approx(expected)
    assert out.chosen_rewards.tolist() == approx([beta * 0.5, beta * 0.2])
    assert out.rejected_rewards.tolist() == approx([beta * -1.0, beta * -0.3])


def test_apo_zero_unpaired_on_a_pairs_two_responses_is_apo_zero():
    beta = 0.5
    singles = unpaired(
        logps=CHOSEN + REJECTED,
        lengths=PAIRS["chosen_lengths"] + PAIRS["rejected_lengths"],
        desirable=[True] * 3 + [False] * 3,
        ref_logps=REF_CHOSEN + REF_REJECTED,
        kl_logps=None,
        ref_kl_logps=None,
    )
    halves = build_loss("apo_zero_unpaired", beta=beta)(singles).losses
    pairs = build_loss("apo_zero", beta=beta)(paired()).losses
    assert (halves[:3] + halves[3:]).tolist() == approx(pairs.tolist())


# simpo's ablations: sums in place of averages, an NLL term (CPO-SimPO), EOS left out of the
# average; sigmoid_norm's margin (SimPO with a reference)


def test_simpo_without_length_normalisation_uses_summed_logps():
    beta, gamma = 0.5, 0.3
    out = build_loss("simpo", beta=beta, gamma=gamma, length_normalize=False)(
        paired(reference=False)
    )
    assert out.losses.tolist() == approx([-log_sigmoid(beta * m - gamma) for m in MARGINS])
    assert out.chosen_rewards.tolist() == approx([beta * c for c in CHOSEN])


def test_cpo_simpo_adds_the_chosen_per_token_nll():
    beta, gamma, weight = 2.0, 0.5, 0.7
    inputs = paired(reference=False)
    out = build_loss("simpo", beta=beta, gamma=gamma, nll_weight=weight)(inputs)
    simpo = [-log_sigmoid(beta * (w - lo) - gamma) for w, lo in zip(AVG_W, AVG_L, strict=True)]
    nll = [-a for a in AVG_W]  # [0.5, 2.0, 3.0]
    assert out.losses.tolist() == approx([s + weight * n for s, n in zip(simpo, nll, strict=True)])
    assert out.metrics["nll"].item() == pytest.approx(sum(nll) / 3)
    # the NLL term pushes every chosen log-prob up by weight / len_w more than SimPO alone
    grad_inputs = paired(reference=False, requires_grad=True)
    (with_nll,) = grads(build_loss("simpo", nll_weight=1.0), grad_inputs, ["chosen_logps"])
    (without,) = grads(build_loss("simpo"), grad_inputs, ["chosen_logps"])
    assert (with_nll - without).tolist() == approx([-1.0 / n for n in LEN_W])


def eos_inputs(requires_grad=False):
    """Two pairs with uneven per-token log-probs: chosen [-1, -2, -3] (3 tokens), [-0.5, -4]
    (2); rejected [-2, -1] (2), [-1, -1, -1] (3); the last token of each is its EOS."""
    chosen = torch.tensor([[-1.0, -2.0, -3.0], [-0.5, -4.0, 0.0]], requires_grad=requires_grad)
    rejected = torch.tensor([[-2.0, -1.0, 0.0], [-1.0, -1.0, -1.0]])
    tokens = ResponseTokens(chosen_logps=chosen, rejected_logps=rejected)
    return PairedLogps(
        chosen.sum(1),
        rejected.sum(1),
        torch.tensor([3, 2]),
        torch.tensor([2, 3]),
        tokens=tokens,
    )


def test_simpo_eos_excluded_averages_all_but_the_last_token():
    beta, gamma = 2.0, 0.5
    out = build_loss("simpo_eos_excluded", beta=beta, gamma=gamma)(eos_inputs())
    avg_w, avg_l = (
        [-1.5, -0.5],
        [-2.0, -1.0],
    )  # (-6 + 3) / 2, (-4.5 + 4) / 1; (-3 + 1) / 1, (-3 + 1) / 2
    expected = [-log_sigmoid(beta * (w - lo) - gamma) for w, lo in zip(avg_w, avg_l, strict=True)]
    assert out.losses.tolist() == approx(expected)
    assert out.chosen_rewards.tolist() == approx([beta * a for a in avg_w])
    plain = build_loss("simpo", beta=beta, gamma=gamma)(eos_inputs())  # averages -2, -2.25
    assert plain.losses.tolist() != approx(expected)
    summed = build_loss("simpo_eos_excluded", length_normalize=False)(eos_inputs())
    assert summed.chosen_rewards.tolist() == approx([2.0 * -3.0, 2.0 * -0.5])


def test_simpo_eos_excluded_gives_the_eos_token_no_gradient():
    inputs = eos_inputs(requires_grad=True)
    build_loss("simpo_eos_excluded")(inputs).losses.sum().backward()
    grad = inputs.tokens.chosen_logps.grad  # (2, 3)
    assert grad[0, 2] == 0 and grad[1, 1] == 0  # each chosen response's EOS
    assert (grad[0, :2] < 0).all() and grad[1, 0] < 0  # raising other chosen tokens lowers the loss


def test_sigmoid_norm_margin_is_simpo_with_a_reference():
    beta, gamma = 5.0, 0.4
    out = build_loss("sigmoid_norm", beta=beta, gamma=gamma)(paired())
    norm_w = [d / n for d, n in zip(D_W, LEN_W, strict=True)]
    norm_l = [d / n for d, n in zip(D_L, column("rejected_lengths"), strict=True)]
    expected = [-log_sigmoid(beta * (w - lo) - gamma) for w, lo in zip(norm_w, norm_l, strict=True)]
    assert out.losses.tolist() == approx(expected)
    tulu = build_loss("sigmoid_norm", beta=beta)(paired()).losses
    assert (out.losses > tulu).all()  # a margin to meet makes every pair's loss larger
