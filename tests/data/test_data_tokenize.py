"""Tokenization: separate prompt/response encoding, BOS/EOS, the truncation policy, length stats.

Digits are single byte-level tokens in the fixture tokenizer (no merges were learned for them), so
lengths and truncations below are worked out by hand from the strings."""

from __future__ import annotations

import pytest

from prefopt.data import (
    DataError,
    DataReport,
    PreferenceRecord,
    TokenizedPair,
    TokenizedUnpaired,
    UnpairedRecord,
    tokenize_records,
)


def pair(prompt: str, chosen: str, rejected: str, row: int = 0) -> PreferenceRecord:
    return PreferenceRecord(prompt, chosen, rejected, None, row, "mem", {})


def cfg(**overrides) -> dict:
    return {"source": "mem.jsonl", **overrides}


@pytest.fixture
def ids(tokenizer):
    """Token ids of a string of digits, one token per character."""

    def digit_ids(text: str) -> list[int]:
        return tokenizer.convert_tokens_to_ids(list(text))

    assert tokenizer("0123456789", add_special_tokens=False)["input_ids"] == digit_ids("0123456789")
    return digit_ids


def test_prompt_and_response_are_encoded_separately_so_no_token_spans_the_boundary(tokenizer):
    (example,) = tokenize_records([pair("the cap", "ital", " dog")], tokenizer, cfg(), None)
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    assert example.prompt_ids == encode("the cap")
    assert example.chosen_ids == encode("ital") + [tokenizer.eos_token_id]
    assert example.rejected_ids == encode(" dog") + [tokenizer.eos_token_id]
    joined = example.prompt_ids + example.chosen_ids[:-1]
    assert joined != encode("the capital")  # encoding the joined text would merge "cap|ital"
    assert len(encode("the capital")) < len(joined)


def test_eos_is_appended_once_and_only_when_asked(tokenizer, ids):
    eos = tokenizer.eos_token_id
    records = [pair("01", "23", "45<eos>")]
    (with_eos,) = tokenize_records(records, tokenizer, cfg(), None)
    assert with_eos.chosen_ids == ids("23") + [eos]
    assert with_eos.rejected_ids == ids("45") + [eos]  # already ended with EOS: not doubled
    (without,) = tokenize_records([pair("01", "23", "45")], tokenizer, cfg(add_eos=False), None)
    assert without.chosen_ids == ids("23") and without.rejected_ids == ids("45")


def test_at_most_one_bos_and_only_when_asked(tokenizer, ids):
    bos = tokenizer.bos_token_id
    (default,) = tokenize_records([pair("01", "2", "3")], tokenizer, cfg(), None)
    assert bos not in default.prompt_ids
    records = [pair("01", "2", "3"), pair("<bos>01", "2", "4", row=1)]
    added = tokenize_records(records, tokenizer, cfg(add_bos=True), None)
    for example in added:
        assert example.prompt_ids == [bos, *ids("01")]
        assert bos not in example.chosen_ids + example.rejected_ids


def test_truncation_policy_by_hand(tokenizer, ids):
    eos = tokenizer.eos_token_id
    report = DataReport()
    records = [pair("0123456789", "98765", "54")]
    limits = cfg(max_prompt_length=4, max_response_length=4)
    (example,) = tokenize_records(records, tokenizer, limits, report)
    assert example.prompt_ids == ids("6789")  # prompt kept from the end
    assert example.chosen_ids == ids("9876")  # response cut at the end (its EOS with it)
    assert example.rejected_ids == ids("54") + [eos]  # 3 tokens: within the limit
    stats = report.to_dict()["splits"]["train"]
    assert (stats["truncated_prompts"], stats["truncated_responses"]) == (1, 1)

    (example,) = tokenize_records(records, tokenizer, {**limits, "max_length": 7}, None)
    assert example.prompt_ids == ids("6789")
    assert example.chosen_ids == ids("987")  # 7 - 4 prompt tokens leave room for 3
    assert example.rejected_ids == ids("54") + [eos]


def test_left_truncation_keeps_the_bos_first(tokenizer, ids):
    limits = cfg(max_prompt_length=4, add_bos=True)
    (example,) = tokenize_records([pair("0123456789", "1", "2")], tokenizer, limits, None)
    assert example.prompt_ids == [tokenizer.bos_token_id, *ids("789")]


def test_a_response_left_empty_by_the_limits_is_a_bad_row(tokenizer):
    limits = cfg(max_prompt_length=4, max_length=4)
    report = DataReport()
    kept = tokenize_records([pair("0123456789", "1", "2")], tokenizer, limits, report)
    assert kept == []
    assert report.to_dict()["splits"]["train"]["dropped"] == {"empty_after_truncation": 1}
    with pytest.raises(DataError, match=r"mem: row 1: empty_after_truncation"):
        tokenize_records(
            [pair("0123456789", "1", "2")], tokenizer, {**limits, "on_bad_row": "error"}
        )


@pytest.mark.parametrize(
    ("limits", "reason"),
    [
        ({"max_prompt_length": 9}, "prompt_too_long"),
        ({"max_response_length": 5}, "response_too_long"),  # "98765" + EOS = 6 tokens
        ({"max_length": 15}, "sequence_too_long"),  # 10 + 6 = 16 tokens
    ],
)
def test_drop_overlength_drops_instead_of_truncating(tokenizer, limits, reason):
    report = DataReport()
    records = [pair("0123456789", "98765", "54"), pair("01", "9", "5", row=1)]
    kept = tokenize_records(records, tokenizer, cfg(drop_overlength=True, **limits), report)
    assert [example.row for example in kept] == [1]
    stats = report.to_dict()["splits"]["train"]
    assert stats["dropped"] == {reason: 1}
    assert stats["truncated_prompts"] == stats["truncated_responses"] == 0


def test_length_stats_by_hand(tokenizer):
    report = DataReport()
    records = [pair("0123", "1", "22"), pair("01", "333", "4444", row=1)]
    tokenize_records(records, tokenizer, cfg(), report)
    stats = report.to_dict()["splits"]["train"]
    # prompts: 4 and 2 tokens; responses with EOS: 2, 3, 4, 5 tokens
    assert stats["prompt_tokens"] == {"count": 2, "mean": 3.0, "p95": 3.9, "max": 4}
    # p95 of [2, 3, 4, 5] by linear interpolation: position 0.95 * 3 = 2.85 -> 4 + 0.85 = 4.85
    assert stats["response_tokens"] == {"count": 4, "mean": 3.5, "p95": 4.85, "max": 5}
    assert (stats["rows_read"], stats["rows_kept"]) == (2, 2)
    assert "prompt tokens mean 3.0" in report.summary()


def test_unpaired_records_keep_their_label_and_weight(tokenizer, ids):
    records = [
        UnpairedRecord("01", "23", True, 0.5, 0, "mem", {}),
        UnpairedRecord("01", "45", False, None, 1, "mem", {}),
    ]
    good, bad = tokenize_records(records, tokenizer, cfg(), None)
    assert isinstance(good, TokenizedUnpaired)
    assert (good.completion_ids, good.desirable, good.weight) == (
        ids("23") + [tokenizer.eos_token_id],
        True,
        0.5,
    )
    assert (bad.desirable, bad.weight, bad.row) == (False, None, 1)


def test_pairs_keep_row_weight_and_meta(tokenizer):
    record = PreferenceRecord("01", "2", "3", 0.25, 7, "file.jsonl", {"id": "a"})
    (example,) = tokenize_records([record], tokenizer, cfg(), None)
    assert isinstance(example, TokenizedPair)
    assert (example.weight, example.row) == (0.25, 7)
    assert example.meta == {"id": "a", "source": "file.jsonl"}


def test_text_that_encodes_to_no_tokens_is_a_bad_row(silent_tokenizer, tokenizer):
    report = DataReport()
    kept = tokenize_records([pair("01", "~~~", "2")], silent_tokenizer, cfg(), report)
    assert kept == []
    assert report.to_dict()["splits"]["train"]["dropped"] == {"empty_tokens": 1}
    assert tokenizer("~", add_special_tokens=False)["input_ids"]  # the shared fixture is untouched
