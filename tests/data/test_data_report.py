"""DataReport: one report per run, sections per split, merge adds counts, JSON-ready dict."""

from __future__ import annotations

import json

from data_test_helpers import data_cfg, write_jsonl

from prefopt.data import DataReport, load_split

ROWS = [
    {"prompt": "01", "chosen": "2", "rejected": "3"},
    {"prompt": "01", "chosen": "2", "rejected": "3"},  # duplicate of row 0
    {"prompt": "45", "chosen": "6", "rejected": "6"},  # chosen == rejected
    {"prompt": "0123456789", "chosen": "2", "rejected": "3"},
]


def test_one_report_collects_every_split_and_merges(tmp_path, tokenizer):
    write_jsonl(tmp_path / "train.jsonl", ROWS)
    write_jsonl(tmp_path / "test.jsonl", ROWS[:1])
    cfg = data_cfg(tmp_path, splits={"train": "train", "test": "test"}, max_prompt_length=4)
    report = DataReport()
    assert len(load_split(cfg, "train", tokenizer, report)) == 2
    assert len(load_split(cfg, "test", tokenizer, report)) == 1
    splits = json.loads(json.dumps(report.to_dict()))["splits"]
    assert splits["train"]["rows_read"] == 4 and splits["train"]["rows_kept"] == 2
    assert splits["train"]["dropped"] == {"duplicate": 1, "identical_responses": 1}
    assert splits["train"]["truncated_prompts"] == 1
    assert splits["test"]["rows_kept"] == 1
    lines = report.summary().splitlines()
    assert lines[0].startswith("data[train]: read 4, kept 2, dropped 2 (duplicate 1, identical")
    assert any(line.startswith("data[test]: read 1, kept 1, dropped 0 (none)") for line in lines)

    other = DataReport("train")
    load_split(cfg, "train", tokenizer, other)
    merged = report.merge(other).to_dict()["splits"]
    assert merged["train"]["rows_read"] == 8
    assert merged["train"]["dropped"] == {"duplicate": 2, "identical_responses": 2}
    assert merged["train"]["prompt_tokens"]["count"] == 4
    assert merged["test"]["rows_read"] == 1


def test_the_first_dropped_rows_are_named_by_line(tmp_path, tokenizer):
    """Blank lines count as an editor counts them: the duplicate after the blank line 2 is named as
    line 3; a merge keeps at most three rows per reason."""
    path = tmp_path / "train.jsonl"
    lines = [json.dumps(row) for row in ROWS[:3]]
    path.write_text("\n".join([lines[0], "", *lines[1:]]) + "\n")
    report = report_of(path, tokenizer)
    first = report.to_dict()["splits"]["train"]["first_dropped"]
    assert first == {"duplicate": [f"{path} line 3"], "identical_responses": [f"{path} line 4"]}
    assert (
        "first dropped: duplicate at train.jsonl line 3; identical_responses at train.jsonl line 4"
        in report.summary()
    )
    for _ in range(3):
        report.merge(report_of(path, tokenizer))
    merged = report.to_dict()["splits"]["train"]["first_dropped"]
    assert merged["duplicate"] == [f"{path} line 3"] * 3


def report_of(path, tokenizer) -> DataReport:
    report = DataReport()
    load_split(data_cfg(path), "train", tokenizer, report)
    return report
