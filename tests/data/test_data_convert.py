"""pairs_to_unpaired: each pair gives a desirable and an undesirable example."""

from __future__ import annotations

from prefopt.data import TokenizedPair, TokenizedUnpaired, pairs_to_unpaired


def test_pairs_become_desirable_and_undesirable_examples():
    pairs = [
        TokenizedPair([1, 5], [6, 2], [7, 8, 2], 0.75, 3, {"source": "f"}),
        TokenizedPair([9], [4, 2], [3, 2], None, 4, {"source": "f"}),
    ]
    unpaired = pairs_to_unpaired(pairs)
    assert unpaired == [
        TokenizedUnpaired([1, 5], [6, 2], True, 0.75, 3, {"source": "f", "from_pair": "chosen"}),
        TokenizedUnpaired(
            [1, 5], [7, 8, 2], False, 0.75, 3, {"source": "f", "from_pair": "rejected"}
        ),
        TokenizedUnpaired([9], [4, 2], True, None, 4, {"source": "f", "from_pair": "chosen"}),
        TokenizedUnpaired([9], [3, 2], False, None, 4, {"source": "f", "from_pair": "rejected"}),
    ]
    unpaired[0].prompt_ids.append(0)  # examples own their lists: the pairs are unchanged
    assert pairs[0].prompt_ids == [1, 5]
    assert pairs_to_unpaired([]) == []
