"""Bad-row reasons and the policy that handles them (`data.on_bad_row`).

`drop`: the row is skipped and counted under its reason in the `DataReport`; `error`: a `DataError`
naming the source file and the row's line (from 1, as an editor numbers it; see `files.row_location`)
is raised at the first bad row. Nothing is dropped silently.
"""

from __future__ import annotations

from .files import row_location
from .records import DataError
from .report import DataReport

BAD_ROW_REASONS = {
    "invalid_json": "a line of a JSON-lines file is not valid JSON",
    "invalid_utf8": "text that is not valid UTF-8 (undecodable bytes or lone surrogates)",
    "missing_field": "a required field is absent or null",
    "wrong_type": "a field has the wrong type (for example a number where text is expected)",
    "empty_string": "a prompt or response is empty or whitespace only",
    "no_assistant_turn": "a dialogue has no assistant reply to take as the response",
    "prompt_mismatch": "chosen and rejected dialogues do not share the same prompt",
    "template_mismatch": "the chat template renders the prompt differently once a reply follows",
    "identical_responses": "chosen == rejected",
    "duplicate": "the same example already appeared earlier in the split",
    "bad_label": "an unpaired label that is not a bool, 0/1 or 'true'/'false'",
    "bad_weight": "a weight that is not a finite number >= 0",
    "empty_tokens": "a response whose text tokenizes to no tokens",
    "empty_after_truncation": "the length limits leave no room for the response",
    "prompt_too_long": "prompt over max_prompt_length (with drop_overlength)",
    "response_too_long": "response over max_response_length (with drop_overlength)",
    "sequence_too_long": "prompt + response over max_length (with drop_overlength)",
}


class BadRow(Exception):
    """Raised by a row parser; `reason` is a key of `BAD_ROW_REASONS`."""

    def __init__(self, reason: str, detail: str):
        if reason not in BAD_ROW_REASONS:
            raise ValueError(f"unknown bad-row reason {reason!r}; valid: {sorted(BAD_ROW_REASONS)}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def handle_bad_row(policy: str, report: DataReport, source: str, row: int, bad: BadRow) -> None:
    """Count the bad row (0-based `row` of `source`) under its reason (`drop`) or raise a DataError
    naming its line (`error`)."""
    if policy == "error":
        raise DataError(
            f"{source}: {row_location(source, row)}: {bad.reason}: {bad.detail} "
            "(set data.on_bad_row=drop to skip and count bad rows)"
        ) from None
    report.count_dropped(bad.reason, source, row)
