"""Local data files: the loader of each kind, and where a row sits in a file for a message.

A file's kind comes from its extension (`.jsonl`, `.json`, `.parquet`, `.arrow`, `.csv`), optionally
followed by `.gz`. Rows are counted from 0 in the pipeline (`row` of a record); a message a user reads
names the line of a JSON-lines file as an editor numbers it (from 1, blank lines counted; the pipeline
skips them, as Arrow does) and the row, counted from 1, of any other source.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import BinaryIO

BUILDERS = {
    ".jsonl": "json",
    ".json": "json",
    ".parquet": "parquet",
    ".arrow": "arrow",
    ".csv": "csv",
}
COMPRESSIONS = (".gz",)


def builder_of(path: Path) -> str | None:
    """The `datasets` builder that reads `path` (json, parquet, arrow, csv), or None."""
    suffixes = path.suffixes
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes = suffixes[:-1]
    return BUILDERS.get(suffixes[-1]) if suffixes else None


def is_data_file(path: Path) -> bool:
    return path.is_file() and builder_of(path) is not None


def open_binary(path: Path) -> BinaryIO:
    """The file's bytes, decompressed when it ends in `.gz`."""
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def row_location(source: str, row: int) -> str:
    """`line N` of JSON-lines file `source` holding 0-based row `row`, else `row {row + 1}`."""
    return row_locations(source, [row])[row]


def row_locations(source: str, rows: list[int]) -> dict[int, str]:
    """`row_location` of each of `rows` of one source, reading a file once."""
    path = Path(source)
    lines = _lines_of_rows(path, set(rows)) if builder_of(path) == "json" and path.is_file() else {}
    return {row: f"line {lines[row]}" if row in lines else f"row {row + 1}" for row in rows}


def _lines_of_rows(path: Path, rows: set[int]) -> dict[int, int]:
    """The line (from 1) of each `row`-th non-blank line; none for a JSON array (its rows are
    elements, not lines), a row past the end or an unreadable file."""
    lines: dict[int, int] = {}
    seen = -1
    try:
        with open_binary(path) as handle:
            for number, line in enumerate(handle, 1):
                text = line.strip()
                if not text:
                    continue
                seen += 1
                if seen == 0 and text.startswith(b"["):
                    return {}
                if seen in rows:
                    lines[seen] = number
                    if len(lines) == len(rows):
                        break
    except (OSError, EOFError, zlib.error):
        return lines
    return lines
