"""Record types that flow through the data pipeline, and the error it raises on bad data.

Text records (`PreferenceRecord`, `UnpairedRecord`) come out of the readers; token records
(`TokenizedPair`, `TokenizedUnpaired`) come out of tokenization and go to the trainer. `row` is the
0-based index of the row in its source (`source` is the file, or `hub_id:split`; blank lines of a
JSON-lines file are not rows), so a record can always be traced back to the line it came from.
Messages a user reads name that line counted from 1 as an editor does (`files.row_location`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prefopt.errors import UserError


class DataError(UserError, ValueError):
    """Bad input data; the message names the file (or hub source) and, for one bad row, its line."""


@dataclass(frozen=True)
class PreferenceRecord:
    """One preference pair: `chosen` is preferred to `rejected` as a reply to `prompt`."""

    prompt: str
    chosen: str
    rejected: str
    weight: float | None
    row: int
    source: str
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class UnpairedRecord:
    """One judged completion (KTO-style): `desirable` says if it is a good reply to `prompt`."""

    prompt: str
    completion: str
    desirable: bool
    weight: float | None
    row: int
    source: str
    meta: dict = field(default_factory=dict)


@dataclass
class TokenizedPair:
    """The model sees `prompt_ids + chosen_ids` and `prompt_ids + rejected_ids`."""

    prompt_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]
    weight: float | None
    row: int
    meta: dict = field(default_factory=dict)


@dataclass
class TokenizedUnpaired:
    """Token ids of one judged completion; the model sees `prompt_ids + completion_ids`."""

    prompt_ids: list[int]
    completion_ids: list[int]
    desirable: bool
    weight: float | None
    row: int
    meta: dict = field(default_factory=dict)
