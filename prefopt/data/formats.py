"""Row parsers: one raw row (a dict) of a given format -> a `PreferenceRecord` or `UnpairedRecord`.

Formats (`data.format`):
- `trl`: `prompt`, `chosen`, `rejected` strings, used as they are.
- `conversational`: `chosen`/`rejected` lists of {role, content} messages, with the prompt messages
  in `prompt` (a list, or a string taken as one user message) or, when there is no `prompt`, as the
  messages before the last one shared by both. Rendered with the tokenizer's chat template: prompt =
  template(prompt, add_generation_prompt=True); response = template(prompt + [reply]) minus that
  prompt text (which must be its prefix).
- `hh_rlhf`: `chosen`/`rejected` whole dialogues ("\\n\\nHuman: ...\\n\\nAssistant: ..."); prompt =
  text up to and including the last "\\n\\nAssistant:", response = the rest (it keeps its leading
  space); both dialogues must give the same prompt.
- `ultrafeedback`: UltraFeedback-binarized rows: `prompt` string plus `chosen`/`rejected` message
  lists that hold the whole conversation; rendered like `conversational`, prompt messages shared.
- `unpaired`: `prompt`, `completion` (strings, or message lists rendered as above) and `label`
  (bool, 0/1, or "true"/"false" in any case) -> `UnpairedRecord`.
- `auto`: picked from the first row's columns and types (see `detect_format`).
Text must be valid UTF-8 and not empty or whitespace only; anything else raises `BadRow`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .badrows import BadRow
from .records import DataError, PreferenceRecord, UnpairedRecord
from .settings import DataSettings

HH_ASSISTANT = "\n\nAssistant:"
LABEL_STRINGS = {"true": True, "false": False, "1": True, "0": False}
META_TEXT_LIMIT = 200  # extra string columns up to this many characters are kept in `meta`


def detect_format(row: dict, source: str) -> str:
    """Format of a row from its columns: `label`+`completion` -> unpaired; message-list `chosen` ->
    ultrafeedback (string `prompt`) or conversational; string `chosen` -> trl (with `prompt`) or
    hh_rlhf (without)."""
    if {"prompt", "completion", "label"} <= row.keys():
        return "unpaired"
    if {"chosen", "rejected"} <= row.keys():
        if isinstance(row["chosen"], list):
            return "ultrafeedback" if isinstance(row.get("prompt"), str) else "conversational"
        return "trl" if "prompt" in row else "hh_rlhf"
    raise DataError(
        f"{source}: cannot detect the data format from columns {sorted(row)}; expected "
        "prompt/chosen/rejected, chosen/rejected or prompt/completion/label (or set data.format)"
    )


def row_parser(fmt: str, settings: DataSettings, tokenizer) -> Callable:
    """The function (row, row_index, source) -> record for format `fmt`."""
    needs_template = fmt in ("conversational", "ultrafeedback")
    if needs_template and getattr(tokenizer, "chat_template", None) is None:
        raise ValueError(
            f"data.format={fmt!r} renders messages with a chat template, but the tokenizer "
            f"({type(tokenizer).__name__}) has none; set its chat_template or use format 'trl'"
        )
    parsers = {
        "trl": _parse_trl,
        "conversational": _parse_conversational,
        "hh_rlhf": _parse_hh,
        "ultrafeedback": _parse_ultrafeedback,
        "unpaired": _parse_unpaired,
    }
    parse = parsers[fmt]

    def parse_row(row: dict, index: int, source: str):
        if not isinstance(row, dict):
            raise BadRow("wrong_type", f"row is a {type(row).__name__}, not an object")
        fields = parse(row, tokenizer)
        used = set(fields.pop("used"))
        weight = _weight(row, settings.weight_column)
        meta = {"format": fmt, **_extra_columns(row, used | {settings.weight_column})}
        record_type = UnpairedRecord if "completion" in fields else PreferenceRecord
        return record_type(**fields, weight=weight, row=index, source=source, meta=meta)

    return parse_row


def _parse_trl(row: dict, tokenizer) -> dict:
    return {
        "prompt": _text(row, "prompt"),
        "chosen": _text(row, "chosen"),
        "rejected": _text(row, "rejected"),
        "used": ("prompt", "chosen", "rejected"),
    }


def _parse_hh(row: dict, tokenizer) -> dict:
    chosen_prompt, chosen = _split_hh(_text(row, "chosen"), "chosen")
    rejected_prompt, rejected = _split_hh(_text(row, "rejected"), "rejected")
    if chosen_prompt != rejected_prompt:
        raise BadRow(
            "prompt_mismatch",
            f"chosen and rejected dialogues differ before the last {HH_ASSISTANT.strip()!r} "
            f"(prompts of {len(chosen_prompt)} and {len(rejected_prompt)} characters)",
        )
    return {
        "prompt": chosen_prompt,
        "chosen": _nonblank(chosen, "chosen response"),
        "rejected": _nonblank(rejected, "rejected response"),
        "used": ("chosen", "rejected"),
    }


def _split_hh(dialogue: str, name: str) -> tuple[str, str]:
    cut = dialogue.rfind(HH_ASSISTANT)
    if cut < 0:
        raise BadRow("no_assistant_turn", f"{name!r} has no {HH_ASSISTANT.strip()!r} turn")
    cut += len(HH_ASSISTANT)
    return dialogue[:cut], dialogue[cut:]


def _parse_conversational(row: dict, tokenizer) -> dict:
    chosen = _messages(row, "chosen")
    rejected = _messages(row, "rejected")
    if row.get("prompt") is None:
        prompt = _shared_prompt(chosen, rejected)
        chosen, rejected = chosen[-1:], rejected[-1:]
    elif isinstance(row["prompt"], str):
        prompt = [{"role": "user", "content": _text(row, "prompt")}]
    else:
        prompt = _messages(row, "prompt")
    prompt_text, chosen_text = _render(tokenizer, prompt, chosen)
    _, rejected_text = _render(tokenizer, prompt, rejected)
    return {
        "prompt": prompt_text,
        "chosen": chosen_text,
        "rejected": rejected_text,
        "used": ("prompt", "chosen", "rejected"),
    }


def _parse_ultrafeedback(row: dict, tokenizer) -> dict:
    prompt_string = _text(row, "prompt")
    chosen = _messages(row, "chosen")
    rejected = _messages(row, "rejected")
    prompt = _shared_prompt(chosen, rejected)
    if prompt[-1]["content"] != prompt_string:
        raise BadRow("prompt_mismatch", "the last prompt message differs from the `prompt` column")
    prompt_text, chosen_text = _render(tokenizer, prompt, chosen[-1:])
    _, rejected_text = _render(tokenizer, prompt, rejected[-1:])
    return {
        "prompt": prompt_text,
        "chosen": chosen_text,
        "rejected": rejected_text,
        "used": ("prompt", "chosen", "rejected", "messages"),
    }


def _parse_unpaired(row: dict, tokenizer) -> dict:
    desirable = _label(row)
    if isinstance(row.get("completion"), list):
        prompt_value = row.get("prompt")
        if isinstance(prompt_value, str):
            prompt = [{"role": "user", "content": _text(row, "prompt")}]
        else:
            prompt = _messages(row, "prompt")
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError(
                "unpaired rows with message lists need a tokenizer with a chat_template"
            )
        prompt_text, completion = _render(tokenizer, prompt, _messages(row, "completion"))
    else:
        prompt_text, completion = _text(row, "prompt"), _text(row, "completion")
    return {
        "prompt": prompt_text,
        "completion": completion,
        "desirable": desirable,
        "used": ("prompt", "completion", "label"),
    }


def _field(row: dict, name: str):
    value = row.get(name)
    if value is None:
        raise BadRow("missing_field", f"field {name!r} is missing or null")
    return value


def _text(row: dict, name: str) -> str:
    return _check_text(_field(row, name), f"field {name!r}")


def _check_text(value, what: str) -> str:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRow("invalid_utf8", f"{what}: undecodable byte at {exc.start}") from None
    if not isinstance(value, str):
        raise BadRow("wrong_type", f"{what} is a {type(value).__name__}, not a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadRow("invalid_utf8", f"{what}: lone surrogate at character {exc.start}") from None
    return _nonblank(value, what)


def _nonblank(value: str, what: str) -> str:
    if not value.strip():
        raise BadRow("empty_string", f"{what} is empty or whitespace only")
    return value


def _messages(row: dict, name: str) -> list[dict]:
    value = _field(row, name)
    if not isinstance(value, list) or not value:
        raise BadRow("wrong_type", f"field {name!r} is not a non-empty list of messages")
    messages = []
    for position, message in enumerate(value):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRow("wrong_type", f"{name}[{position}] is not a {{role, content}} message")
        content = _check_text(message.get("content"), f"{name}[{position}].content")
        messages.append({"role": message["role"], "content": content})
    return messages


def _shared_prompt(chosen: list[dict], rejected: list[dict]) -> list[dict]:
    """Prompt messages of two whole conversations: all but the last, which must be the same."""
    for name, messages in (("chosen", chosen), ("rejected", rejected)):
        if len(messages) < 2 or messages[-1]["role"] != "assistant":
            raise BadRow("no_assistant_turn", f"{name!r} does not end with an assistant reply")
    if chosen[:-1] != rejected[:-1]:
        raise BadRow("prompt_mismatch", "chosen and rejected differ before their last message")
    return chosen[:-1]


def _render(tokenizer, prompt: list[dict], reply: list[dict]) -> tuple[str, str]:
    """(prompt text with the generation prompt, reply text) through the chat template."""
    prompt_text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    full_text = tokenizer.apply_chat_template(prompt + reply, tokenize=False)
    if not full_text.startswith(prompt_text):
        raise BadRow(
            "template_mismatch",
            "the chat template renders the prompt differently with the reply appended",
        )
    return prompt_text, _nonblank(full_text[len(prompt_text) :], "rendered response")


def _label(row: dict) -> bool:
    value = _field(row, "label")
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in LABEL_STRINGS:
        return LABEL_STRINGS[value.strip().lower()]
    raise BadRow("bad_label", f"label {value!r} is not a bool, 0/1 or 'true'/'false'")


def _weight(row: dict, column: str | None) -> float | None:
    if column is None:
        return None
    value = row.get(column)
    if value is None:
        raise BadRow("missing_field", f"weight column {column!r} is missing or null")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRow("bad_weight", f"weight {value!r} is not a number")
    if not math.isfinite(value) or value < 0:
        raise BadRow("bad_weight", f"weight {value!r} is not a finite number >= 0")
    return float(value)


def _extra_columns(row: dict, used: set) -> dict:
    """Columns a format does not use, kept in `meta` when they are numbers, bools or short text."""
    extras = {}
    for key, value in row.items():
        if key in used:
            continue
        if isinstance(value, (bool, int, float)) or (
            isinstance(value, str) and len(value) <= META_TEXT_LIMIT
        ):
            extras[key] = value
    return extras
