"""csft: hand-computed values, gradients, its control-token capability and its training items."""

import pytest
import torch
from loss_inputs import PAIRS, paired
from pytest import approx

from prefopt.data.control_tokens import add_control_tokens, control_token_ids
from prefopt.data.records import TokenizedPair
from prefopt.losses import PreferenceLoss, build_loss, check_loss_class, loss_class
from prefopt.tasks.wordlevel import build_word_tokenizer
from prefopt.trainer.items import paired_items


def test_csft_values():
    out = build_loss("csft")(paired(reference=False))
    # -(logp_w + logp_l) / (len_w + len_l) per pair
    expected = [
        -(w + lo) / (nw + nl)
        for w, lo, nw, nl in zip(
            PAIRS["chosen_logps"],
            PAIRS["rejected_logps"],
            PAIRS["chosen_lengths"],
            PAIRS["rejected_lengths"],
            strict=True,
        )
    ]
    assert expected == approx([0.5, 2.0, 6.5 / 6])
    assert out.losses.tolist() == approx(expected)
    assert out.chosen_rewards.tolist() == approx([-0.5, -2.0, -3.0])
    assert out.rejected_rewards.tolist() == approx([-0.5, -2.0, -0.7])


def test_csft_gradient_raises_both_responses_given_their_tokens():
    inputs = paired(requires_grad=True, reference=False)
    total = build_loss("csft")(inputs).losses.sum()
    d_chosen, d_rejected = torch.autograd.grad(total, [inputs.chosen_logps, inputs.rejected_logps])
    pair_tokens = [
        w + lo for w, lo in zip(PAIRS["chosen_lengths"], PAIRS["rejected_lengths"], strict=True)
    ]
    expected = [-1.0 / n for n in pair_tokens]
    assert d_chosen.tolist() == approx(expected)
    assert d_rejected.tolist() == approx(expected)


def test_csft_declares_its_control_tokens():
    assert loss_class("csft").control_tokens == ("<|good|>", "<|bad|>")
    assert PreferenceLoss.control_tokens is None


@pytest.mark.parametrize(
    "tokens", [("<|good|>",), ("<|good|>", "<|good|>"), ("<|good|>", ""), ["<a>", "<b>"]]
)
def test_the_registry_refuses_malformed_control_tokens(tokens):
    cls = type(
        "Bad",
        (loss_class("csft"),),
        {flag: getattr(loss_class("csft"), flag) for flag in ("name", "requires_reference",
         "data_format", "stateful", "min_batch_size")} | {"control_tokens": tokens},
    )  # fmt: skip
    with pytest.raises(ValueError, match="control_tokens"):
        check_loss_class(cls)


def test_control_tokens_are_added_once_as_special_tokens():
    tokenizer = build_word_tokenizer(["good", "film"])
    size = len(tokenizer)
    assert add_control_tokens(tokenizer, ("<|good|>", "<|bad|>")) == 2
    assert add_control_tokens(tokenizer, ("<|good|>", "<|bad|>")) == 0
    good, bad = control_token_ids(tokenizer, ("<|good|>", "<|bad|>"))
    assert sorted([good, bad]) == [size, size + 1]
    ids = tokenizer("film <|good|> good", add_special_tokens=False)["input_ids"]
    assert good in ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == "film good"
    with pytest.raises(ValueError, match="no control token"):
        control_token_ids(build_word_tokenizer(["good"]), ("<|good|>",))


def test_items_start_each_response_with_its_control_token():
    pair = TokenizedPair([5, 6], [7, 1], [8, 9, 1], None, 0, {})
    (item,) = paired_items([pair], control_ids=[100, 101])
    assert item.prompt_ids == [5, 6]
    assert item.first_ids == [100, 7, 1]
    assert item.second_ids == [101, 8, 9, 1]
    (plain,) = paired_items([pair])
    assert (plain.first_ids, plain.second_ids) == ([7, 1], [8, 9, 1])
