"""Per-split data report: rows read, kept, dropped per reason, truncation counts, length statistics.

A `DataReport` counts one or more splits: `read_records` / `load_split` switch it to the split they
read (`use_split`), and `tokenize_records` adds to the split it is on. The trainer makes one report
per split (`prepare_data`), prints each one's `summary()` and saves their `to_dict()` together, by
split, as `data_report.json` in the run directory; a script may pass one report to every split it
loads and print one summary. Invariant per split:
`rows_kept = rows_read - sum(dropped.values())`. The first few dropped rows of each reason are named
by file and line (from 1, as an editor numbers it; `first_dropped`), so they can be found and fixed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .files import row_locations

FIRST_DROPPED_KEPT = 3  # dropped rows named per reason in the report


@dataclass
class SplitStats:
    """Counts for one split. Lengths are token counts of kept examples after truncation
    (`*_lengths`) and of every tokenized example before truncation (`*_lengths_untruncated`);
    a pair adds two response lengths (chosen and rejected)."""

    rows_read: int = 0
    dropped: Counter = field(default_factory=Counter)
    first_dropped: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # (source, row)
    truncated_prompts: int = 0
    truncated_responses: int = 0
    prompt_lengths: list[int] = field(default_factory=list)
    response_lengths: list[int] = field(default_factory=list)
    prompt_lengths_untruncated: list[int] = field(default_factory=list)
    response_lengths_untruncated: list[int] = field(default_factory=list)

    @property
    def rows_kept(self) -> int:
        return self.rows_read - sum(self.dropped.values())

    def merge(self, other: SplitStats) -> None:
        self.rows_read += other.rows_read
        self.dropped.update(other.dropped)
        for reason, rows in other.first_dropped.items():
            kept = self.first_dropped.setdefault(reason, [])
            kept += rows[: FIRST_DROPPED_KEPT - len(kept)]
        self.truncated_prompts += other.truncated_prompts
        self.truncated_responses += other.truncated_responses
        self.prompt_lengths += other.prompt_lengths
        self.response_lengths += other.response_lengths
        self.prompt_lengths_untruncated += other.prompt_lengths_untruncated
        self.response_lengths_untruncated += other.response_lengths_untruncated

    def to_dict(self) -> dict:
        return {
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_dropped": sum(self.dropped.values()),
            "dropped": dict(sorted(self.dropped.items())),
            "first_dropped": {
                reason: [f"{source} {where}" for source, where in places]
                for reason, places in self.first_dropped_places().items()
            },
            "truncated_prompts": self.truncated_prompts,
            "truncated_responses": self.truncated_responses,
            "prompt_tokens": length_stats(self.prompt_lengths),
            "response_tokens": length_stats(self.response_lengths),
            "prompt_tokens_untruncated": length_stats(self.prompt_lengths_untruncated),
            "response_tokens_untruncated": length_stats(self.response_lengths_untruncated),
        }

    def first_dropped_places(self) -> dict[str, list[tuple[str, str]]]:
        """Per reason (sorted), the first dropped rows as (source, "line N" or "row N")."""
        wanted: dict[str, list[int]] = {}
        for rows in self.first_dropped.values():
            for source, row in rows:
                wanted.setdefault(source, []).append(row)
        where = {source: row_locations(source, rows) for source, rows in wanted.items()}
        return {
            reason: [(source, where[source][row]) for source, row in rows]
            for reason, rows in sorted(self.first_dropped.items())
        }


def length_stats(lengths: list[int]) -> dict:
    """mean, p95 (linear interpolation, numpy's default) and max of a list of token counts."""
    if not lengths:
        return {"count": 0, "mean": None, "p95": None, "max": None}
    array = np.asarray(lengths, dtype=np.float64)
    return {
        "count": len(lengths),
        "mean": round(float(array.mean()), 3),
        "p95": round(float(np.percentile(array, 95)), 3),
        "max": int(array.max()),
    }


class DataReport:
    """What the data pipeline read, kept and dropped, per split (train/validation/test)."""

    def __init__(self, split: str = "train"):
        self.splits: dict[str, SplitStats] = {}
        self.current_split = split

    def use_split(self, split: str) -> DataReport:
        """Make `split` the one that later counts go to."""
        self.current_split = split
        return self

    @property
    def current(self) -> SplitStats:
        return self.splits.setdefault(self.current_split, SplitStats())

    def count_dropped(self, reason: str, source: str | None = None, row: int | None = None) -> None:
        """Count a dropped row under `reason`; the first few are kept by (source, 0-based row)."""
        stats = self.current
        stats.dropped[reason] += 1
        if source is not None and row is not None:
            kept = stats.first_dropped.setdefault(reason, [])
            if len(kept) < FIRST_DROPPED_KEPT:
                kept.append((source, row))

    def merge(self, other: DataReport) -> DataReport:
        """Add another report's counts (e.g. from another process or source) into this one."""
        for split, stats in other.splits.items():
            self.splits.setdefault(split, SplitStats()).merge(stats)
        return self

    def to_dict(self) -> dict:
        return {"splits": {split: stats.to_dict() for split, stats in self.splits.items()}}

    def summary(self) -> str:
        """Printable lines per split: counts and drop reasons, where the first dropped rows are
        (file name and line), then token lengths."""
        lines = []
        for split, stats in self.splits.items():
            reasons = ", ".join(f"{r} {n}" for r, n in sorted(stats.dropped.items())) or "none"
            lines.append(
                f"data[{split}]: read {stats.rows_read}, kept {stats.rows_kept}, "
                f"dropped {sum(stats.dropped.values())} ({reasons}); truncated "
                f"{stats.truncated_prompts} prompts, {stats.truncated_responses} responses"
            )
            places = stats.first_dropped_places()
            if any(places.values()):
                named = "; ".join(
                    f"{reason} at " + ", ".join(f"{Path(s).name} {w}" for s, w in found)
                    for reason, found in places.items()
                    if found
                )
                lines.append(f"data[{split}]: first dropped: {named}")
            prompt = length_stats(stats.prompt_lengths)
            response = length_stats(stats.response_lengths)
            if prompt["count"]:
                lines.append(
                    f"data[{split}]: prompt tokens mean {prompt['mean']:.1f} "
                    f"p95 {prompt['p95']:.0f} "
                    f"max {prompt['max']}; response tokens mean {response['mean']:.1f} "
                    f"p95 {response['p95']:.0f} max {response['max']}"
                )
        return "\n".join(lines)
