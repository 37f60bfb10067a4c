"""Find and read the raw rows of one split: a hub dataset, or local files through `datasets`.

Where a split's rows come from (`data.source` plus `data.splits[split]`):
- split value is a file path or glob (has a `/`, a wildcard or a data-file extension): those files,
  relative to `source` when it is a directory, else to the working directory the run started in;
- `source` is a directory: its data files (searched recursively) named after the split value, such
  as `train.jsonl` or `train-00000-of-00002.parquet` for `train`;
- `source` is a local file or a glob: those files, whatever the split value is;
- otherwise `source` is a hub dataset id and the split value is its split name (`train_prefs`).

Each local file is loaded on its own with `datasets.load_dataset` (json, parquet, arrow or csv, also
gzip-compressed), so that every row keeps its file and 0-based row index (blank lines of a JSON-lines
file are skipped). When Arrow cannot parse a JSON-lines file (invalid UTF-8, a broken line), the file
is read line by line instead and each bad line becomes a bad row (`invalid_utf8`, `invalid_json`)
rather than failing the whole file. An empty file, an unreadable or corrupt file (a truncated Parquet
or gzip file) raises a `DataError` naming it and saying to download or write it again.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

import datasets
from datasets.utils import logging as datasets_logging
from hydra.utils import to_absolute_path

from .badrows import BadRow
from .files import BUILDERS, COMPRESSIONS, builder_of, is_data_file, open_binary
from .records import DataError
from .settings import DataSettings

GLOB_CHARS = re.compile(r"[*?\[]")
REWRITE = "download or write it again"  # what to do with a file that cannot be read

RawRow = tuple[str, int, "dict | BadRow"]  # (source, 0-based row, the row or why it is unreadable)


def iter_split_rows(settings: DataSettings, split: str) -> Iterator[RawRow]:
    """Yield the raw rows of `split`, at most `settings.max_rows` of them, in source order."""
    spec = settings.split_spec(split)
    files = local_split_files(settings.source, spec)
    if files is None:
        rows = _hub_rows(settings.source, spec)
    else:
        rows = (item for path in files for item in _file_rows(path))
    for count, item in enumerate(rows):
        if settings.max_rows is not None and count >= settings.max_rows:
            return
        yield item


def local_split_files(source: str, spec: str) -> list[Path] | None:
    """The local files serving split value `spec`, or None when `source` is a hub dataset id."""
    source_path = Path(to_absolute_path(os.path.expanduser(source)))
    if _looks_like_path(spec):
        base = source_path if source_path.is_dir() else Path(to_absolute_path("."))
        return _glob_data_files(str(base / spec), f"split file pattern {spec!r}")
    if source_path.is_dir():
        stem_pattern = re.compile(rf"{re.escape(spec)}(-\d+(-of-\d+)?)?")
        files = [
            path
            for path in sorted(source_path.rglob("*"))
            if is_data_file(path) and stem_pattern.fullmatch(_data_stem(path))
        ]
        if not files:
            available = sorted(p.name for p in source_path.rglob("*") if is_data_file(p))
            raise DataError(
                f"{source_path}: no data file named after split {spec!r} "
                f"(expected e.g. {spec}.jsonl or {spec}-00000-of-00001.parquet); found {available}"
            )
        return files
    if source_path.is_file():
        return [source_path]
    if GLOB_CHARS.search(source):
        return _glob_data_files(str(source_path), f"source glob {source!r}")
    if source.startswith((".", "/", "~")) or builder_of(source_path) is not None:
        raise DataError(f"{source_path}: no such file or directory (data.source={source!r})")
    return None


def _looks_like_path(value: str) -> bool:
    """A split value naming files: a wildcard, a `/` or a data-file extension ("[" alone is not
    enough, so a hub split slice such as `train[:1000]` stays a split name)."""
    return any(char in value for char in "*?/") or builder_of(Path(value)) is not None


def _glob_data_files(pattern: str, what: str) -> list[Path]:
    matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
    files = [path for path in matches if is_data_file(path)]
    if not files:
        raise DataError(
            f"{pattern}: {what} matches no data file "
            f"(extensions {sorted(BUILDERS)}, optionally {COMPRESSIONS})"
        )
    return files


def _data_stem(path: Path) -> str:
    name = path.name
    for suffix in COMPRESSIONS:
        name = name.removesuffix(suffix)
    return name.rsplit(".", 1)[0]


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """Silence datasets' own error logs and progress bars: failures surface as a DataError."""
    verbosity = datasets_logging.get_verbosity()
    bars_were_off = datasets.are_progress_bars_disabled()
    datasets_logging.set_verbosity(datasets_logging.CRITICAL)
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        datasets_logging.set_verbosity(verbosity)
        if not bars_were_off:
            datasets.enable_progress_bars()


def _hub_rows(source: str, spec: str) -> Iterator[RawRow]:
    label = f"{source}:{spec}"
    try:
        with _quiet_datasets():
            dataset = datasets.load_dataset(source, split=spec)
    except Exception as exc:  # any loader failure becomes one clear error naming the source
        raise DataError(
            f"{label}: cannot load hub dataset split (and no local path {source!r} exists): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if dataset.num_rows == 0:
        raise DataError(f"{label}: split has no rows")
    yield from ((label, row, value) for row, value in enumerate(dataset))


def _file_rows(path: Path) -> Iterator[RawRow]:
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    count = 0
    for value in _file_values(path):
        yield str(path), count, value
        count += 1
    if count == 0:
        raise DataError(f"{path}: file has no rows")


def _file_values(path: Path) -> Iterator:
    """Row values of one file through `datasets`; a JSON file that Arrow fails on, at load or at
    some row (invalid UTF-8 surfaces only when that row is decoded), goes on line by line."""
    builder = builder_of(path)
    try:
        with _quiet_datasets():
            dataset = datasets.load_dataset(builder, data_files=[str(path)], split="train")
    except Exception as exc:  # corrupt or unparsable file
        if builder != "json":
            raise DataError(
                f"{path}: cannot be read as {builder}: {type(exc).__name__}: {exc} "
                f"(the file is truncated, corrupt or not {builder}: {REWRITE})"
            ) from exc
        yield from _json_rows(path)
        return
    done = 0
    try:
        for value in dataset:
            yield value
            done += 1
    except Exception as exc:  # a row Arrow stored but cannot decode
        if builder != "json":
            raise DataError(
                f"{path}: row {done + 1}: cannot be decoded: {type(exc).__name__}: {exc} "
                f"(the file is corrupt: {REWRITE})"
            ) from exc
        yield from _json_rows(path)[done:]


def _json_rows(path: Path) -> list:
    """Rows of a JSON file that Arrow could not parse: one row per non-blank line (JSON lines), or
    the elements of a top-level array. Undecodable or unparsable lines become `BadRow`s."""
    try:
        with open_binary(path) as handle:
            data = handle.read()
    except (OSError, EOFError, zlib.error) as exc:
        what = "truncated or corrupt gzip file" if path.suffix == ".gz" else "cannot be read"
        raise DataError(f"{path}: {what}: {type(exc).__name__}: {exc} ({REWRITE})") from exc
    if data.lstrip()[:1] == b"[":
        try:
            values = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{path}: not a valid JSON array: {exc}") from exc
        return values
    return [_json_line(line) for line in data.split(b"\n") if line.strip()]


def _json_line(line: bytes) -> dict | BadRow:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return BadRow("invalid_utf8", f"undecodable byte at position {exc.start} of the line")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        return BadRow("invalid_json", str(exc))
