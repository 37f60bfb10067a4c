"""Each source format read into records, with the chat template and the unpaired labels."""

from __future__ import annotations

import pytest
from data_test_helpers import data_cfg, write_jsonl

from prefopt.data import (
    PreferenceRecord,
    TokenizedUnpaired,
    UnpairedRecord,
    load_split,
    read_records,
)

USER = {"role": "user", "content": "hi"}
CHOSEN = {"role": "assistant", "content": "hello"}
REJECTED = {"role": "assistant", "content": "go away"}
# What the fixture's chat template renders for USER, with the generation prompt, and for a reply.
PROMPT_TEXT = "<|user|>hi<eos><|assistant|>"


@pytest.mark.parametrize("fmt", ["trl", "auto"])
def test_trl_strings_are_used_as_they_are(tmp_path, fmt):
    rows = [{"prompt": "say hi", "chosen": " hi", "rejected": " no", "id": "a", "score": 2.5}]
    (record,) = read_records(data_cfg(write_jsonl(tmp_path / "p.jsonl", rows), format=fmt), "train")
    assert isinstance(record, PreferenceRecord)
    assert (record.prompt, record.chosen, record.rejected) == ("say hi", " hi", " no")
    assert (record.weight, record.row, record.source) == (None, 0, str(tmp_path / "p.jsonl"))
    assert record.meta == {"format": "trl", "id": "a", "score": 2.5}


@pytest.mark.parametrize(
    "row",
    [
        {"prompt": [USER], "chosen": [CHOSEN], "rejected": [REJECTED]},  # explicit prompt
        {"prompt": "hi", "chosen": [CHOSEN], "rejected": [REJECTED]},  # prompt as a string
        {"chosen": [USER, CHOSEN], "rejected": [USER, REJECTED]},  # implicit prompt
    ],
    ids=["explicit", "string_prompt", "implicit"],
)
def test_conversational_is_rendered_with_the_chat_template(tmp_path, tokenizer, row):
    path = write_jsonl(tmp_path / "c.jsonl", [row])
    cfg = data_cfg(path, format="conversational")
    (record,) = read_records(cfg, "train", tokenizer)
    assert (record.prompt, record.chosen, record.rejected) == (
        PROMPT_TEXT,
        "hello<eos>",
        "go away<eos>",
    )
    (example,) = load_split(cfg, "train", tokenizer)
    assert example.chosen_ids.count(tokenizer.eos_token_id) == 1  # the template's EOS, not doubled


def test_conversational_without_a_chat_template_is_a_clear_error(tmp_path, tokenizer):
    plain = tokenizer.__class__(tokenizer_object=tokenizer.backend_tokenizer, eos_token="<eos>")
    path = write_jsonl(
        tmp_path / "c.jsonl", [{"prompt": [USER], "chosen": [CHOSEN], "rejected": [REJECTED]}]
    )
    with pytest.raises(ValueError, match="chat template"):
        read_records(data_cfg(path), "train", plain)


def test_ultrafeedback_binarized_rows(tmp_path, tokenizer):
    row = {
        "prompt": "hi",
        "prompt_id": "p0",
        "chosen": [USER, CHOSEN],
        "rejected": [USER, REJECTED],
        "messages": [USER, CHOSEN],
        "score_chosen": 8.0,
        "score_rejected": 3.0,
    }
    (record,) = read_records(data_cfg(write_jsonl(tmp_path / "u.jsonl", [row])), "train", tokenizer)
    assert (record.prompt, record.chosen, record.rejected) == (
        PROMPT_TEXT,
        "hello<eos>",
        "go away<eos>",
    )
    assert record.meta == {
        "format": "ultrafeedback",
        "prompt_id": "p0",
        "score_chosen": 8.0,
        "score_rejected": 3.0,
    }


def test_unpaired_labels_accept_bools_ints_and_strings(tmp_path):
    labels = [True, False, 1, 0, "true", "FALSE", "1", "0"]
    rows = [
        {"prompt": f"q{i}", "completion": " a", "label": label} for i, label in enumerate(labels)
    ]
    records = read_records(data_cfg(write_jsonl(tmp_path / "k.jsonl", rows)), "train")
    assert all(isinstance(record, UnpairedRecord) for record in records)
    assert [record.desirable for record in records] == [True, False] * 4


def test_unpaired_csv(tmp_path, tokenizer):
    path = tmp_path / "k.csv"
    path.write_text("prompt,completion,label\nsay hi, hi,true\nsay hi, go away,false\n")
    examples = load_split(data_cfg(path, format="unpaired"), "train", tokenizer)
    assert [type(e) for e in examples] == [TokenizedUnpaired, TokenizedUnpaired]
    assert [e.desirable for e in examples] == [True, False]


def test_weight_column_gives_per_example_weights(tmp_path):
    rows = [
        {"prompt": "a", "chosen": " b", "rejected": " c", "p": 0.9},
        {"prompt": "d", "chosen": " e", "rejected": " f", "p": 1},
    ]
    path = write_jsonl(tmp_path / "w.jsonl", rows)
    records = read_records(data_cfg(path, weight_column="p"), "train")
    assert [record.weight for record in records] == [0.9, 1.0]
    assert "p" not in records[0].meta


def test_max_rows_caps_the_rows_read(tmp_path):
    rows = [{"prompt": f"q{i}", "chosen": " a", "rejected": " b"} for i in range(10)]
    records = read_records(data_cfg(write_jsonl(tmp_path / "p.jsonl", rows), max_rows=3), "train")
    assert [record.prompt for record in records] == ["q0", "q1", "q2"]
