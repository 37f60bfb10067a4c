"""`read_records`: the rows of one split -> validated, de-duplicated text records.

Per row, in order: unreadable (invalid UTF-8 / JSON) -> parse by format (missing fields, wrong
types, empty text, prompt mismatch, labels, weights) -> chosen == rejected -> duplicate of an
earlier kept example (same prompt and responses, or prompt, completion and label). A bad row is
dropped and counted, or raises a DataError, by `data.on_bad_row`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from .badrows import BadRow, handle_bad_row
from .formats import detect_format, row_parser
from .records import DataError, PreferenceRecord, UnpairedRecord
from .report import DataReport
from .settings import DataSettings
from .sources import iter_split_rows


def read_records(
    data_cfg: Mapping,
    split: str,
    tokenizer=None,
    report: DataReport | None = None,
) -> list[PreferenceRecord | UnpairedRecord]:
    """Read prefopt split `split` (train/validation/test) of `data_cfg` into records.

    `tokenizer` is needed only for the formats rendered with a chat template. Counts go to
    `report` (switched to `split`).
    """
    settings = DataSettings.from_cfg(data_cfg)
    report = (report if report is not None else DataReport()).use_split(split)
    rows = iter_split_rows(settings, split)
    fmt, rows = _resolve_format(settings, rows)
    parse = row_parser(fmt, settings, tokenizer)
    records: list[PreferenceRecord | UnpairedRecord] = []
    seen: set[tuple] = set()
    checked_sources: set[str] = set()
    for source, index, value in rows:
        report.current.rows_read += 1
        if source not in checked_sources and isinstance(value, dict):
            _check_weight_column(settings, value, source)
            checked_sources.add(source)
        try:
            if isinstance(value, BadRow):
                raise value
            record = parse(value, index, source)
            if isinstance(record, PreferenceRecord) and record.chosen == record.rejected:
                raise BadRow("identical_responses", "chosen and rejected are the same text")
            key = _dedup_key(record)
            if key in seen:
                raise BadRow("duplicate", "an earlier row has the same prompt and responses")
        except BadRow as bad:
            handle_bad_row(settings.on_bad_row, report, source, index, bad)
            continue
        seen.add(key)
        records.append(record)
    return records


def _resolve_format(settings: DataSettings, rows):
    """The configured format, or the one detected from the first readable row (rows re-chained)."""
    if settings.format != "auto":
        return settings.format, rows
    buffered = []
    for item in rows:
        buffered.append(item)
        source, _, value = item
        if isinstance(value, dict):
            return detect_format(value, source), itertools.chain(buffered, rows)
    raise DataError(f"{settings.source}: no readable row to detect the data format from")


def _check_weight_column(settings: DataSettings, row: dict, source: str) -> None:
    column = settings.weight_column
    if column is not None and column not in row:
        raise DataError(
            f"{source}: weight column {column!r} not found; columns: {sorted(row)} "
            "(set data.weight_column to one of them, or null)"
        )


def _dedup_key(record: PreferenceRecord | UnpairedRecord) -> tuple:
    if isinstance(record, PreferenceRecord):
        return (record.prompt, record.chosen, record.rejected)
    return (record.prompt, record.completion, record.desirable)
