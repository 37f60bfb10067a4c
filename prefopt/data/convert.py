"""Paired examples -> unpaired ones for KTO-style losses that score single responses."""

from __future__ import annotations

from .records import TokenizedPair, TokenizedUnpaired


def pairs_to_unpaired(pairs: list[TokenizedPair]) -> list[TokenizedUnpaired]:
    """Each pair gives two examples, in order: (prompt, chosen) desirable, then (prompt, rejected)
    undesirable; weight, row and meta are carried to both (meta gains `from_pair: "chosen"` or
    `"rejected"`). So n pairs give n desirable and n undesirable examples, interleaved."""
    unpaired = []
    for pair in pairs:
        for side, completion, desirable in (
            ("chosen", pair.chosen_ids, True),
            ("rejected", pair.rejected_ids, False),
        ):
            unpaired.append(
                TokenizedUnpaired(
                    prompt_ids=list(pair.prompt_ids),
                    completion_ids=list(completion),
                    desirable=desirable,
                    weight=pair.weight,
                    row=pair.row,
                    meta={**pair.meta, "from_pair": side},
                )
            )
    return unpaired
