"""`tokenize_records`: text records -> token ids with special tokens and length limits applied.

Tokenization: prompt and each response are tokenized separately with
`tokenizer(text, add_special_tokens=False)` and only joined by the trainer (`prompt_ids +
response_ids`), so no token is ever merged across the prompt/response boundary. BOS: prepended to
the prompt only when `data.add_bos` is set and the tokenizer defines one, and never when the prompt
already starts with it (a chat template may render it), so there is at most one. EOS: appended to
each response when `data.add_eos` (default true), unless the response already ends with it.

Truncation policy (limits count every token, BOS and EOS included; `null` = no limit):
1. a prompt over `max_prompt_length` keeps its last tokens (left-truncated; a BOS stays first);
2. a response over `max_response_length` keeps its first tokens (cut at the end, losing its EOS);
3. a response for which prompt + response exceeds `max_length` is cut at the end to fit;
4. a response that would be left empty is a bad row (`empty_after_truncation`): never an empty one.
With `data.drop_overlength` an example over any limit is a bad row instead (`prompt_too_long`,
`response_too_long`, `sequence_too_long`) and nothing is truncated. Bad rows are dropped and counted
or raise a DataError, by `data.on_bad_row`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .badrows import BadRow, handle_bad_row
from .records import PreferenceRecord, TokenizedPair, TokenizedUnpaired, UnpairedRecord
from .report import DataReport, SplitStats
from .settings import DataSettings


def tokenize_records(
    records: Sequence[PreferenceRecord | UnpairedRecord],
    tokenizer,
    data_cfg: Mapping,
    report: DataReport | None = None,
) -> list[TokenizedPair | TokenizedUnpaired]:
    """Tokenize `records` by the policy above; counts go to `report`'s current split."""
    settings = DataSettings.from_cfg(data_cfg)
    report = report if report is not None else DataReport()
    stats = report.current
    if stats.rows_read == 0:  # records that did not come through read_records with this report
        stats.rows_read += len(records)
    eos = _special_id(tokenizer, "eos") if settings.add_eos else None
    bos = getattr(tokenizer, "bos_token_id", None)
    prompt_ids = _encode(tokenizer, [record.prompt for record in records])
    response_ids = [_encode(tokenizer, texts) for texts in _response_texts(records)]
    examples: list[TokenizedPair | TokenizedUnpaired] = []
    for position, record in enumerate(records):
        responses = [ids[position] for ids in response_ids]
        try:
            prompt, responses = _fit(prompt_ids[position], responses, settings, bos, eos, stats)
        except BadRow as bad:
            handle_bad_row(settings.on_bad_row, report, record.source, record.row, bad)
            continue
        meta = {**record.meta, "source": record.source}
        if isinstance(record, PreferenceRecord):
            chosen, rejected = responses
            examples.append(
                TokenizedPair(prompt, chosen, rejected, record.weight, record.row, meta)
            )
        else:
            (completion,) = responses
            examples.append(
                TokenizedUnpaired(
                    prompt, completion, record.desirable, record.weight, record.row, meta
                )
            )
    return examples


def _special_id(tokenizer, name: str) -> int:
    token_id = getattr(tokenizer, f"{name}_token_id", None)
    if token_id is None:
        raise ValueError(
            f"data.add_{name}=true but the tokenizer ({type(tokenizer).__name__}) has no "
            f"{name}_token; give it one or set data.add_{name}=false"
        )
    return token_id


def _encode(tokenizer, texts: list[str]) -> list[list[int]]:
    if not texts:
        return []
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def _response_texts(records) -> list[list[str]]:
    """One list of texts per response slot: [chosen, rejected] for pairs, [completion] otherwise."""
    if not records:
        return []
    if all(isinstance(record, PreferenceRecord) for record in records):
        return [[r.chosen for r in records], [r.rejected for r in records]]
    if all(isinstance(record, UnpairedRecord) for record in records):
        return [[r.completion for r in records]]
    raise ValueError("tokenize_records needs all PreferenceRecords or all UnpairedRecords")


def _fit(
    prompt: list[int],
    responses: list[list[int]],
    settings: DataSettings,
    bos: int | None,
    eos: int | None,
    stats: SplitStats,
) -> tuple[list[int], list[list[int]]]:
    """Add BOS/EOS and apply the length limits; record truncation counts and lengths in `stats`.
    `bos` is the tokenizer's BOS id (or None): added when `add_bos`, and kept first when the prompt
    is left-truncated."""
    if not prompt or not all(responses):
        raise BadRow("empty_tokens", "a prompt or response text tokenizes to no tokens")
    if settings.add_bos and bos is not None and prompt[0] != bos:
        prompt = [bos, *prompt]
    if eos is not None:
        responses = [ids if ids[-1] == eos else [*ids, eos] for ids in responses]
    stats.prompt_lengths_untruncated.append(len(prompt))
    stats.response_lengths_untruncated.extend(len(ids) for ids in responses)
    max_prompt, max_response, max_total = (
        settings.max_prompt_length,
        settings.max_response_length,
        settings.max_length,
    )
    longest = max(len(ids) for ids in responses)
    if settings.drop_overlength:
        if max_prompt is not None and len(prompt) > max_prompt:
            raise BadRow("prompt_too_long", f"{len(prompt)} prompt tokens > {max_prompt}")
        if max_response is not None and longest > max_response:
            raise BadRow("response_too_long", f"{longest} response tokens > {max_response}")
        if max_total is not None and len(prompt) + longest > max_total:
            raise BadRow("sequence_too_long", f"{len(prompt) + longest} tokens > {max_total}")
    prompt_cut = max_prompt is not None and len(prompt) > max_prompt
    if prompt_cut:
        head = prompt[:1] if bos is not None and prompt[0] == bos else []
        prompt = head + prompt[len(prompt) - (max_prompt - len(head)) :]
    room = min(
        max_response if max_response is not None else longest,
        max_total - len(prompt) if max_total is not None else longest,
    )
    if room < 1:
        raise BadRow(
            "empty_after_truncation",
            f"a {len(prompt)}-token prompt leaves no room under max_length={max_total}",
        )
    cut = [len(ids) > room for ids in responses]
    responses = [ids[:room] for ids in responses]
    stats.truncated_prompts += int(prompt_cut)
    stats.truncated_responses += sum(cut)
    stats.prompt_lengths.append(len(prompt))
    stats.response_lengths.extend(len(ids) for ids in responses)
    return prompt, responses
