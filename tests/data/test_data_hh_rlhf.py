"""The HH-RLHF reader on the real harmless-base test file (skipped where the file is absent)."""

from __future__ import annotations

import gzip
import json

import pytest
from data_test_helpers import HH_FILE, data_cfg

from prefopt.data import DataError, DataReport, load_split, read_records

pytestmark = pytest.mark.skipif(not HH_FILE.exists(), reason=f"{HH_FILE.name} not present")


def read_pairs() -> list[dict]:
    with gzip.open(HH_FILE, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def measure_file() -> dict:
    """Count, without the pipeline, the pairs whose prompts differ and those with an empty response.

    Here the prompt is everything before the last "Assistant:" turn marker, found by splitting the
    dialogue on the marker (the reader uses rfind)."""
    pairs = read_pairs()
    mismatched, empty, rows_to_drop = 0, 0, set()
    for row, pair in enumerate(pairs):
        chosen_turns = pair["chosen"].split("\n\nAssistant:")
        rejected_turns = pair["rejected"].split("\n\nAssistant:")
        if chosen_turns[:-1] != rejected_turns[:-1]:
            mismatched += 1
            rows_to_drop.add(row)
        elif chosen_turns[-1].strip() == "" or rejected_turns[-1].strip() == "":
            empty += 1
            rows_to_drop.add(row)
    return {"pairs": len(pairs), "mismatched": mismatched, "empty": empty, "rows": rows_to_drop}


def test_hh_counts_match_an_independent_measurement(tokenizer):
    measured = measure_file()
    # The file's README: 2,312 pairs, 5 with mismatched prompts, 4 with an empty response.
    assert (measured["pairs"], measured["mismatched"], measured["empty"]) == (2312, 5, 4)
    report = DataReport()
    examples = load_split(data_cfg(HH_FILE, format="hh_rlhf"), "train", tokenizer, report)
    stats = report.to_dict()["splits"]["train"]
    assert stats["rows_read"] == measured["pairs"]
    assert stats["dropped"] == {
        "prompt_mismatch": measured["mismatched"],
        "empty_string": measured["empty"],
    }
    assert len(examples) == measured["pairs"] - len(measured["rows"])
    kept_rows = {example.row for example in examples}
    assert kept_rows.isdisjoint(measured["rows"])
    assert len(kept_rows) == len(examples)


def test_hh_format_is_auto_detected_and_split_at_the_last_assistant_turn():
    records = read_records(data_cfg(HH_FILE, max_rows=50), "train")
    assert len(records) == 50
    first = read_pairs()[0]
    record = records[0]
    assert record.meta["format"] == "hh_rlhf"
    assert record.prompt.endswith("\n\nAssistant:")
    assert record.prompt + record.chosen == first["chosen"]
    assert record.prompt + record.rejected == first["rejected"]
    assert "\n\nAssistant:" not in record.chosen


def test_hh_error_policy_names_the_line_of_the_first_bad_row():
    first_bad = min(measure_file()["rows"])  # 0-based index of a line of the file
    cfg = data_cfg(HH_FILE, format="hh_rlhf", on_bad_row="error")
    with pytest.raises(DataError, match=rf"{HH_FILE.name}: line {first_bad + 1}: "):
        read_records(cfg, "train")
