"""check_lengths_fit_context: every limit that bounds a sequence must fit the model's context."""

from __future__ import annotations

import pytest
from data_test_helpers import data_cfg

from prefopt.data import check_lengths_fit_context
from prefopt.errors import ConfigError


@pytest.mark.parametrize(
    ("limits", "max_new_tokens"),
    [
        ({"max_length": 128, "max_prompt_length": 64}, 64),
        ({"max_length": None, "max_prompt_length": 32, "max_response_length": 96}, None),
        ({"max_length": 100, "max_prompt_length": None}, None),  # prompt cut by max_length
    ],
)
def test_limits_that_fit_pass(limits, max_new_tokens):
    check_lengths_fit_context(data_cfg("d.jsonl", **limits), 128, "m", max_new_tokens)


@pytest.mark.parametrize(
    ("limits", "max_new_tokens", "named"),
    [
        ({"max_length": 512, "max_prompt_length": 64}, None, "data.max_length=512"),
        ({"max_length": 128, "max_prompt_length": 256}, None, "data.max_prompt_length=256"),
        ({"max_length": None, "max_prompt_length": 64}, None, "data.max_length=null"),
        (
            {"max_length": None, "max_prompt_length": 64, "max_response_length": 65},
            None,
            "data.max_prompt_length + data.max_response_length = 64 + 65",
        ),
        (
            {"max_length": 128, "max_prompt_length": 100},
            64,
            "data.max_prompt_length + eval.max_new_tokens = 100 + 64",
        ),
        ({"max_length": 128}, 64, "data.max_prompt_length=null"),
    ],
)
def test_a_limit_over_the_context_is_named(limits, max_new_tokens, named):
    with pytest.raises(ConfigError, match="longer than the 128 positions of model m") as error:
        check_lengths_fit_context(data_cfg("d.jsonl", **limits), 128, "m", max_new_tokens)
    assert named in str(error.value)


def test_both_keys_named_at_once_and_no_limit_means_no_check():
    cfg = data_cfg("d.jsonl", max_length=512, max_prompt_length=256)
    with pytest.raises(ConfigError, match=r"data.max_length=512; data.max_prompt_length=256: "):
        check_lengths_fit_context(cfg, 128, "m")
    check_lengths_fit_context(cfg, None, "m")  # a model without a position limit
