"""Data pipeline: any preference source -> validated records -> tokenized examples for the trainer.

    report = DataReport()
    train = load_split(cfg.data, "train", tokenizer, report)          # list[TokenizedPair | ...]
    print(report.summary()); save report.to_dict() as data_report.json

Modules: `sources` (find and read raw rows), `files` (kinds of data file, and the line of a row
for messages), `formats` (row -> record per format), `reader`
(`read_records`: validation, de-duplication, bad-row policy), `tokenize` (`tokenize_records`:
special tokens and the truncation policy, stated in its docstring), `convert`
(`pairs_to_unpaired`), `report` (`DataReport`), `badrows` (the reasons a row is dropped), `lengths`
(`check_lengths_fit_context`: the length limits against the model's context, before reading).
"""

from .badrows import BAD_ROW_REASONS
from .convert import pairs_to_unpaired
from .lengths import check_lengths_fit_context
from .load import load_split
from .reader import read_records
from .records import (
    DataError,
    PreferenceRecord,
    TokenizedPair,
    TokenizedUnpaired,
    UnpairedRecord,
)
from .report import DataReport
from .settings import FORMATS, DataSettings, available_splits
from .tokenize import tokenize_records

__all__ = [
    "BAD_ROW_REASONS",
    "FORMATS",
    "DataError",
    "DataReport",
    "DataSettings",
    "PreferenceRecord",
    "TokenizedPair",
    "TokenizedUnpaired",
    "UnpairedRecord",
    "available_splits",
    "check_lengths_fit_context",
    "load_split",
    "pairs_to_unpaired",
    "read_records",
    "tokenize_records",
]
