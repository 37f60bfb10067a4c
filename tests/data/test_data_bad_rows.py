"""The bad-row policy for every reason not covered by the corpus in tests/data/bad/: `drop` counts
the row under its reason, `error` raises a DataError naming the file and the line (from 1, blank lines
counted, as an editor numbers them) or, for a source without lines, the row (from 1)."""

from __future__ import annotations

import copy
import gzip
import json
import re

import pandas as pd
import pytest
from data_test_helpers import data_cfg, write_jsonl
from test_data_bad_corpus import BAD_ROW_FILES

from prefopt.data import BAD_ROW_REASONS, DataError, DataReport, load_split

GOOD = {"prompt": "say hello", "chosen": " hello", "rejected": " go away"}
GOOD_2 = {"prompt": "name an animal", "chosen": " a cat", "rejected": " a log"}
DIGITS = {"prompt": "01", "chosen": "2", "rejected": "3"}
DIGITS_2 = {"prompt": "45", "chosen": "6", "rejected": "7"}
USER = {"role": "user", "content": "hi"}
CHOSEN = {"role": "assistant", "content": "hello"}
REJECTED = {"role": "assistant", "content": "go away"}
HH = {"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: no"}
HH_2 = {
    "chosen": "\n\nHuman: bye\n\nAssistant: ciao",
    "rejected": "\n\nHuman: bye\n\nAssistant: no",
}
# Trims the last message only: a prompt ending in a space renders differently once a reply follows.
TEMPLATE_TRIMMING_LAST = (
    "{% for m in messages %}<|{{ m['role'] }}|>"
    "{% if loop.last %}{{ m['content'] | trim }}{% else %}{{ m['content'] }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

# reason -> (rows, extra config); row 1 of the three is the bad one
CASES = {
    "no_assistant_turn": (
        [HH, {"chosen": "\n\nHuman: hi there", "rejected": HH["rejected"]}, HH_2],
        {"format": "hh_rlhf"},
    ),
    "template_mismatch": (
        [
            {"prompt": [USER], "chosen": [CHOSEN], "rejected": [REJECTED]},
            {"prompt": [{**USER, "content": "hi "}], "chosen": [CHOSEN], "rejected": [REJECTED]},
            {"prompt": [{**USER, "content": "yo"}], "chosen": [CHOSEN], "rejected": [REJECTED]},
        ],
        {"format": "conversational"},
    ),
    "bad_label": (
        [
            {"prompt": "say hello", "completion": " hello", "label": True},
            {"prompt": "say hello", "completion": " hi", "label": "maybe"},
            {"prompt": "say hello", "completion": " go away", "label": False},
        ],
        {},
    ),
    "bad_weight": (
        [{**GOOD, "w": 0.8}, {**GOOD, "chosen": " hi", "w": -1.0}, {**GOOD_2, "w": 1}],
        {"weight_column": "w"},
    ),
    "prompt_mismatch": (  # UltraFeedback: chosen and rejected conversations ask different things
        [
            {"prompt": "hi", "chosen": [USER, CHOSEN], "rejected": [USER, REJECTED]},
            {
                "prompt": "hi",
                "chosen": [USER, CHOSEN],
                "rejected": [{**USER, "content": "yo"}, REJECTED],
            },
            {"prompt": "hi", "chosen": [USER, REJECTED], "rejected": [USER, CHOSEN]},
        ],
        {"format": "ultrafeedback"},
    ),
    "empty_tokens": ([GOOD, {**GOOD, "chosen": "~~~"}, GOOD_2], {}),
    "empty_after_truncation": (
        [DIGITS, {"prompt": "0123456789", "chosen": "2", "rejected": "3"}, DIGITS_2],
        {"max_prompt_length": 8, "max_length": 8},
    ),
    "response_too_long": (
        [DIGITS, {"prompt": "01", "chosen": "23456789", "rejected": "3"}, DIGITS_2],
        {"max_response_length": 4, "drop_overlength": True},
    ),
    "sequence_too_long": (
        [DIGITS, {"prompt": "0123", "chosen": "4567", "rejected": "3"}, DIGITS_2],
        {"max_length": 8, "drop_overlength": True},
    ),
}


def write_case(tmp_path, reason: str):
    rows, extra = CASES[reason]
    return write_jsonl(tmp_path / f"{reason}.jsonl", rows), extra


def tokenizer_for(reason, request):
    if reason == "empty_tokens":
        return request.getfixturevalue("silent_tokenizer")
    tokenizer = request.getfixturevalue("tokenizer")
    if reason == "template_mismatch":
        tokenizer = copy.deepcopy(tokenizer)
        tokenizer.chat_template = TEMPLATE_TRIMMING_LAST
    return tokenizer


def test_every_reason_is_tested():
    assert set(CASES) | {reason for _, reason, _, _ in BAD_ROW_FILES.values()} == set(
        BAD_ROW_REASONS
    )


@pytest.mark.parametrize("reason", sorted(CASES))
def test_drop_counts_the_bad_row(reason, tmp_path, request):
    path, extra = write_case(tmp_path, reason)
    report = DataReport()
    cfg = data_cfg(path, on_bad_row="drop", **extra)
    examples = load_split(cfg, "train", tokenizer_for(reason, request), report)
    assert sorted(example.row for example in examples) == [0, 2]
    assert report.to_dict()["splits"]["train"]["dropped"] == {reason: 1}


@pytest.mark.parametrize("reason", sorted(CASES))
def test_error_names_file_and_line(reason, tmp_path, request):
    path, extra = write_case(tmp_path, reason)
    cfg = data_cfg(path, on_bad_row="error", **extra)
    with pytest.raises(DataError, match=rf"{re.escape(path.name)}: line 2: {reason}: "):
        load_split(cfg, "train", tokenizer_for(reason, request))


@pytest.mark.parametrize("name", ["blank.jsonl", "blank.jsonl.gz", "unparsable.jsonl"])
def test_the_line_counts_blank_lines(name, tmp_path, tokenizer):
    """A bad row after blank lines is named by its line, whether Arrow parsed the file or, when a
    broken line made Arrow give up, the line-by-line reader did."""
    broken = "{not json" if name == "unparsable.jsonl" else json.dumps(GOOD)
    lines = [json.dumps(GOOD), "", "   ", json.dumps({"prompt": "p"}), broken, json.dumps(GOOD_2)]
    text = "\n".join(lines) + "\n"
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    cfg = data_cfg(path, on_bad_row="error")
    with pytest.raises(DataError, match=rf"{re.escape(name)}: line 4: missing_field: "):
        load_split(cfg, "train", tokenizer)


def test_a_parquet_row_is_counted_from_1(tmp_path, tokenizer):
    path = tmp_path / "train.parquet"
    pd.DataFrame([GOOD, {**GOOD_2, "chosen": " "}]).to_parquet(path)
    cfg = data_cfg(path, on_bad_row="error")
    with pytest.raises(DataError, match=r"train.parquet: row 2: empty_string: "):
        load_split(cfg, "train", tokenizer)
