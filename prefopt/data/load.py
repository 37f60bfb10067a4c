"""`load_split`: read and tokenize one split in one call, for scripts and tests.

The trainer (`prefopt.trainer.data_setup.prepare_data`) calls the two steps itself, `read_records`
then `tokenize_records`, because it may hold a validation split out of the train records between them.
"""

from __future__ import annotations

from collections.abc import Mapping

from .reader import read_records
from .records import TokenizedPair, TokenizedUnpaired
from .report import DataReport
from .tokenize import tokenize_records


def load_split(
    data_cfg: Mapping,
    split: str,
    tokenizer,
    report: DataReport | None = None,
) -> list[TokenizedPair | TokenizedUnpaired]:
    """`tokenize_records(read_records(...))` for prefopt split `split`; counts go to `report`."""
    report = (report if report is not None else DataReport()).use_split(split)
    records = read_records(data_cfg, split, tokenizer, report)
    return tokenize_records(records, tokenizer, data_cfg, report)
