"""Bad inputs and bad hyperparameters get clear ValueErrors."""

import pytest
import torch
from loss_inputs import SINGLES, paired, unpaired

from prefopt.losses import PairedLogps, available_losses, build_loss, loss_class

WITH_BETA = [name for name in available_losses() if "beta" in loss_class(name).hyperparameters()]
USING_LENGTHS = [name for name in available_losses() if loss_class(name).uses_lengths]


@pytest.mark.parametrize("name", WITH_BETA)
@pytest.mark.parametrize("beta", [0.0, -0.1, float("nan"), float("inf"), "0.1", True])
def test_beta_must_be_a_positive_number(name, beta):
    with pytest.raises(ValueError, match="beta must be a finite number > 0"):
        build_loss(name, beta=beta)


@pytest.mark.parametrize(
    ("name", "epsilon", "interval"),
    [
        ("dpo", 0.5, r"\[0, 0.5\)"),
        ("dpo", -0.01, r"\[0, 0.5\)"),
        ("robust", 0.5, r"\[0, 0.5\)"),
        ("exo_pair", 0.0, r"\(0, 0.5\)"),
        ("exo_pair", 0.7, r"\(0, 0.5\)"),
    ],
)
def test_label_smoothing_out_of_range(name, epsilon, interval):
    with pytest.raises(ValueError, match=f"label_smoothing must be in {interval}, got {epsilon}"):
        build_loss(name, label_smoothing=epsilon)


@pytest.mark.parametrize(
    ("name", "hyperparameters", "message"),
    [
        ("simpo", {"gamma": -0.5}, "gamma must be a finite number >= 0"),
        ("dpop", {"lambda_dpop": -1.0}, "lambda_dpop must be a finite number >= 0"),
        ("kto", {"desirable_weight": 0.0}, "desirable_weight must be a finite number > 0"),
        ("kto", {"undesirable_weight": -1.0}, "undesirable_weight must be a finite number > 0"),
        ("r_dpo", {"alpha": float("nan")}, "alpha must be a finite number"),
        ("ipo", {"length_normalize": "yes"}, "length_normalize must be true or false"),
        ("bco_pair", {"running_mean": 1}, "running_mean must be true or false"),
    ],
)
def test_other_hyperparameters_out_of_range(name, hyperparameters, message):
    with pytest.raises(ValueError, match=message):
        build_loss(name, **hyperparameters)


def test_mismatched_shapes():
    with pytest.raises(ValueError, match="share one shape.*rejected_logps=\\(2,\\)"):
        build_loss("dpo")(paired(rejected_logps=[-1.0, -2.0]))


def test_inputs_must_be_one_dimensional():
    inputs = paired(chosen_logps=torch.zeros(3, 1))
    with pytest.raises(ValueError, match=r"chosen_logps must have shape \(B,\), got \(3, 1\)"):
        build_loss("dpo")(inputs)


def test_weights_must_match_the_batch():
    with pytest.raises(ValueError, match="weights=\\(2,\\)"):
        build_loss("dpo")(paired(weights=[1.0, 2.0]))


def test_soft_labels_must_be_probabilities():
    with pytest.raises(ValueError, match="weights must lie in \\[0, 1\\]"):
        build_loss("dpo", soft_labels=True)(paired(weights=[0.5, 1.5, 0.0]))


def test_log_probs_must_be_floating():
    inputs = paired(chosen_logps=torch.tensor([-1, -2, -3]))
    with pytest.raises(ValueError, match="chosen_logps must be a floating tensor"):
        build_loss("dpo")(inputs)


def test_empty_batch():
    empty = PairedLogps(torch.zeros(0), torch.zeros(0), torch.ones(0), torch.ones(0))
    with pytest.raises(ValueError, match="at least 1 examples, got 0"):
        build_loss("sft")(empty)


@pytest.mark.parametrize("name", USING_LENGTHS)
def test_zero_lengths_are_refused_where_lengths_are_used(name):
    loss = build_loss(name)
    with pytest.raises(ValueError, match="chosen_lengths must be > 0 everywhere"):
        loss(paired(chosen_lengths=[2, 0, 1]))
    with pytest.raises(ValueError, match="divides by response lengths, but rejected_lengths is"):
        loss(paired(rejected_lengths=None))


def test_losses_that_ignore_lengths_accept_empty_responses():
    out = build_loss("dpo")(paired(chosen_lengths=[0, 0, 0], rejected_lengths=None))
    assert torch.isfinite(out.losses).all()
    ipo_sums = build_loss("ipo", length_normalize=False)
    assert torch.isfinite(ipo_sums(paired(chosen_lengths=None, rejected_lengths=None)).losses).all()


def test_kto_needs_two_examples():
    single = unpaired(**{key: value[:1] for key, value in SINGLES.items()})
    with pytest.raises(ValueError, match="kto: needs a batch of at least 2 examples, got 1"):
        build_loss("kto")(single)


def test_kto_needs_mismatched_pairs_for_its_baseline():
    with pytest.raises(ValueError, match="KL baseline z0 needs .* but kl_logps is None"):
        build_loss("kto")(unpaired(kl_logps=None))


def test_desirable_must_be_bool():
    with pytest.raises(ValueError, match="desirable must be a bool tensor"):
        build_loss("kto")(unpaired(desirable=torch.tensor([1, 0, 1, 0])))


def test_paired_and_unpaired_inputs_are_not_interchangeable():
    with pytest.raises(
        ValueError, match="kto: data_format is 'unpaired', so it takes UnpairedLogps"
    ):
        build_loss("kto")(paired())
    with pytest.raises(ValueError, match="dpo: data_format is 'paired', so it takes PairedLogps"):
        build_loss("dpo")(unpaired())
