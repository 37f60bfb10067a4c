"""Where a split's rows come from: file types, directories, globs, split mappings, the hub, and
the config checks."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from data_test_helpers import data_cfg, write_jsonl
from omegaconf import OmegaConf

from prefopt.data import DataError, available_splits, read_records

ROWS = [
    {"prompt": "say hi", "chosen": " hi", "rejected": " no"},
    {"prompt": "say bye", "chosen": " bye", "rejected": " stay"},
]


def prompts(cfg, split="train") -> list[str]:
    return [record.prompt for record in read_records(cfg, split)]


def write_parquet(path, rows):
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.mark.parametrize("suffix", ["jsonl", "jsonl.gz", "json", "parquet", "arrow", "csv"])
def test_each_local_file_type(tmp_path, suffix):
    path = tmp_path / f"prefs.{suffix}"
    if suffix == "jsonl.gz":
        path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in ROWS).encode()))
    elif suffix == "json":
        path.write_text(json.dumps(ROWS))
    elif suffix == "parquet":
        write_parquet(path, ROWS)
    elif suffix == "arrow":
        table = pa.Table.from_pylist(ROWS)
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    elif suffix == "csv":
        path.write_text("prompt,chosen,rejected\nsay hi, hi, no\nsay bye, bye, stay\n")
    else:
        write_jsonl(path, ROWS)
    assert prompts(data_cfg(path)) == ["say hi", "say bye"]


def test_directory_source_finds_files_named_after_each_split(tmp_path):
    write_parquet(tmp_path / "train-00000-of-00002.parquet", ROWS[:1])
    write_parquet(tmp_path / "train-00001-of-00002.parquet", ROWS[1:])
    (tmp_path / "sub").mkdir()
    write_jsonl(tmp_path / "sub" / "test_prefs.jsonl", ROWS[::-1])
    cfg = data_cfg(tmp_path, splits={"train": "train", "test": "test_prefs"})
    assert prompts(cfg, "train") == ["say hi", "say bye"]
    assert prompts(cfg, "test") == ["say bye", "say hi"]
    with pytest.raises(DataError, match="no data file named after split 'valid'"):
        read_records(data_cfg(tmp_path, splits={"train": "valid"}), "train")


def test_rows_keep_their_file_and_index(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", ROWS)
    write_jsonl(tmp_path / "b.jsonl", [{"prompt": "third", "chosen": " x", "rejected": " y"}])
    records = read_records(data_cfg(tmp_path / "*.jsonl"), "train")
    assert [(r.source.rsplit("/", 1)[-1], r.row) for r in records] == [
        ("a.jsonl", 0),
        ("a.jsonl", 1),
        ("b.jsonl", 0),
    ]


def test_split_values_that_are_paths_name_files(tmp_path):
    write_jsonl(tmp_path / "main.jsonl", ROWS)
    write_jsonl(tmp_path / "held_out.jsonl", ROWS[:1])
    cfg = data_cfg(tmp_path, splits={"train": "main.jsonl", "validation": "held_out.jsonl"})
    assert prompts(cfg, "validation") == ["say hi"]
    assert available_splits(cfg) == ["train", "validation"]
    with pytest.raises(ValueError, match="data split 'test' is not configured"):
        read_records(cfg, "test")


def test_a_dictconfig_is_accepted(tmp_path):
    cfg = OmegaConf.create(data_cfg(write_jsonl(tmp_path / "p.jsonl", ROWS)))
    assert prompts(cfg) == ["say hi", "say bye"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_lenght": 10}, r"unknown data config key\(s\) \['max_lenght'\]"),
        ({"format": "alpaca"}, r"data.format='alpaca'; valid formats"),
        ({"on_bad_row": "skip"}, r"data.on_bad_row='skip'; valid"),
        ({"splits": {"dev": "dev"}}, r"valid split names"),
        ({"max_length": 0}, r"data.max_length=0"),
    ],
)
def test_bad_config_values_are_named(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        read_records({**data_cfg(tmp_path / "p.jsonl"), **change}, "train")


def test_missing_local_paths_and_unknown_columns_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_records(data_cfg(tmp_path / "absent.jsonl"), "train")
    with pytest.raises(DataError, match="matches no data file"):
        read_records(data_cfg(tmp_path / "*.parquet"), "train")
    path = write_jsonl(tmp_path / "odd.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(DataError, match=r"odd.jsonl: cannot detect the data format from columns"):
        read_records(data_cfg(path), "train")
    with pytest.raises(DataError, match=r"weight column 'w' not found"):
        read_records(data_cfg(write_jsonl(tmp_path / "p.jsonl", ROWS), weight_column="w"), "train")


def test_an_unreachable_hub_dataset_is_a_data_error():  # the tests run with HF_HUB_OFFLINE=1
    with pytest.raises(DataError, match=r"prefopt-test/no-such-dataset:train: cannot load"):
        read_records({"source": "prefopt-test/no-such-dataset"}, "train")
