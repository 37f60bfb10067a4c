"""Training items: every example is a prompt with two responses, scored in one forward.

Paired data: (prompt, chosen, rejected). Unpaired data (KTO-style losses): (prompt, completion,
mismatched completion), the second response being another example's completion under this prompt, used
for the KL baseline z0. The mismatched partner is fixed once per data set by a seeded permutation (not per
batch), so reference log-probs of the mismatched sequences can be cached and shared by a sweep.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class TrainItem:
    """One example as two sequences that share a prompt, scored in one forward.

    What the two responses hold depends on the loss's data format:

    ==============  =================================  =========================================
    field           paired data                        unpaired data (KTO-style losses)
    ==============  =================================  =========================================
    ``first_ids``   the chosen response                the example's own completion, labelled by
                    (scored as ``chosen_logps``)       ``desirable`` (scored as ``logps``)
    ``second_ids``  the rejected response              another example's completion under this
                    (scored as ``rejected_logps``)     prompt (scored as ``kl_logps``, for z0)
    ``desirable``   None                               True or False
    ==============  =================================  =========================================
    """

    prompt_ids: list[int]
    first_ids: list[int]  # paired: chosen; unpaired: the completion
    second_ids: list[int]  # paired: rejected; unpaired: a mismatched completion (KL baseline)
    weight: float | None = None  # per-example weight or soft label
    desirable: bool | None = None  # unpaired only: the completion's label
    meta: dict = field(default_factory=dict)

    @property
    def num_tokens(self) -> int:
        """Non-padding tokens of both sequences, prompts counted twice."""
        return 2 * len(self.prompt_ids) + len(self.first_ids) + len(self.second_ids)


def paired_items(pairs: Sequence, control_ids: Sequence[int] | None = None) -> list[TrainItem]:
    """TrainItems from TokenizedPair examples; with ``control_ids`` (chosen id, rejected id), each
    response starts with its control token (a conditioned loss such as csft)."""
    chosen_head, rejected_head = ([control_ids[0]], [control_ids[1]]) if control_ids else ([], [])
    return [
        TrainItem(
            p.prompt_ids,
            [*chosen_head, *p.chosen_ids],
            [*rejected_head, *p.rejected_ids],
            weight=p.weight,
            meta=dict(p.meta),
        )
        for p in pairs
    ]


def unpaired_items(examples: Sequence, seed: int) -> list[TrainItem]:
    """TrainItems from TokenizedUnpaired examples, each with a mismatched completion.

    A seeded permutation orders the examples in a ring; each takes the completion of the next example in
    the ring whose prompt differs from its own (rotation, not reversal, so no example keeps its own pair).
    """
    if len(examples) < 2:
        raise ValueError("unpaired data needs at least 2 examples to form mismatched KL pairs")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    items: list[TrainItem | None] = [None] * len(examples)
    for position, index in enumerate(order):
        example = examples[index]
        partner = None
        for step in range(1, len(order)):
            candidate = examples[order[(position + step) % len(order)]]
            if candidate.prompt_ids != example.prompt_ids:
                partner = candidate
                break
        if partner is None:
            raise ValueError(
                "every unpaired example has the same prompt: no mismatched KL pair exists"
            )
        items[index] = TrainItem(
            example.prompt_ids,
            example.completion_ids,
            partner.completion_ids,
            weight=example.weight,
            desirable=bool(example.desirable),
            meta=dict(example.meta),
        )
    return items  # type: ignore[return-value]


def items_digest(items: Sequence[TrainItem]) -> str:
    """sha256 over every token id of every item: the data part of a reference-cache key."""
    digest = hashlib.sha256()
    for item in items:
        for ids in (item.prompt_ids, item.first_ids, item.second_ids):
            digest.update(len(ids).to_bytes(4, "little"))
            digest.update(b"".join(i.to_bytes(4, "little") for i in ids))
    return digest.hexdigest()[:16]
