"""Each file of the malformed-input corpus (tests/data/bad/) is handled by the documented policy."""

from __future__ import annotations

import re

import pytest
from data_test_helpers import BAD_DIR, data_cfg

from prefopt.data import DataError, DataReport, load_split

# file -> (extra config, bad-row reason, line of the bad row (from 1), rows kept under `drop`)
BAD_ROW_FILES = {
    "missing_field.jsonl": ({}, "missing_field", 2, 3),
    "wrong_type.jsonl": ({}, "wrong_type", 2, 3),
    "empty_string.jsonl": ({}, "empty_string", 2, 3),
    "invalid_utf8.jsonl": ({}, "invalid_utf8", 2, 3),
    "lone_surrogate.jsonl": ({}, "invalid_utf8", 2, 3),
    "invalid_json.jsonl": ({}, "invalid_json", 2, 3),
    "duplicate.jsonl": ({}, "duplicate", 4, 3),
    "identical_responses.jsonl": ({}, "identical_responses", 2, 3),
    "overlong_prompt.jsonl": (
        {"max_prompt_length": 64, "drop_overlength": True},
        "prompt_too_long",
        2,
        3,
    ),
    "hh_prompt_mismatch.jsonl": ({"format": "hh_rlhf"}, "prompt_mismatch", 2, 2),
}
UNREADABLE_FILES = {
    "empty.jsonl": "file is empty",
    "truncated.parquet": "cannot be read as parquet",
}


@pytest.mark.parametrize("name", sorted(BAD_ROW_FILES))
def test_bad_row_is_dropped_and_counted(name, tokenizer):
    extra, reason, _, kept = BAD_ROW_FILES[name]
    report = DataReport()
    examples = load_split(
        data_cfg(BAD_DIR / name, on_bad_row="drop", **extra), "train", tokenizer, report
    )
    stats = report.to_dict()["splits"]["train"]
    assert len(examples) == kept
    assert stats["dropped"] == {reason: 1}
    assert stats["rows_read"] == kept + 1
    assert f"{reason} 1" in report.summary()


@pytest.mark.parametrize("name", sorted(BAD_ROW_FILES))
def test_bad_row_raises_naming_file_and_line(name, tokenizer):
    extra, reason, line, _ = BAD_ROW_FILES[name]
    cfg = data_cfg(BAD_DIR / name, on_bad_row="error", **extra)
    with pytest.raises(DataError, match=rf"{re.escape(name)}: line {line}: {reason}"):
        load_split(cfg, "train", tokenizer)


@pytest.mark.parametrize("policy", ["drop", "error"])
@pytest.mark.parametrize("name", sorted(UNREADABLE_FILES))
def test_unreadable_file_raises_naming_it(name, policy, tokenizer):
    cfg = data_cfg(BAD_DIR / name, on_bad_row=policy)
    with pytest.raises(DataError, match=rf"{re.escape(name)}: {UNREADABLE_FILES[name]}"):
        load_split(cfg, "train", tokenizer)


def test_overlong_prompt_is_truncated_without_drop_overlength(tokenizer):
    report = DataReport()
    cfg = data_cfg(BAD_DIR / "overlong_prompt.jsonl", max_prompt_length=64)
    examples = load_split(cfg, "train", tokenizer, report)
    stats = report.to_dict()["splits"]["train"]
    assert len(examples) == 4
    assert stats["truncated_prompts"] == 1
    assert max(len(example.prompt_ids) for example in examples) == 64
    assert stats["prompt_tokens_untruncated"]["max"] > 64
