"""A word-level ``PreTrainedTokenizerFast`` built locally from a closed vocabulary.

Text is split on whitespace; each word is one token; words outside the vocabulary map to ``<unk>``.
Decoding joins tokens with single spaces, so ``decode(encode(text)) == " ".join(text.split())``.
"""

from __future__ import annotations

from collections.abc import Sequence

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"


def build_word_tokenizer(words: Sequence[str]) -> PreTrainedTokenizerFast:
    """Tokenizer with ids ``<pad>``=0, ``<eos>``=1, ``<unk>``=2, then ``words`` in order."""
    specials = [PAD, EOS, UNK]
    clashes = sorted(set(words) & set(specials))
    if clashes:
        raise ValueError(f"words {clashes} clash with the special tokens {specials}")
    vocab = {w: i for i, w in enumerate(dict.fromkeys([*specials, *words]))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        eos_token=EOS,
        unk_token=UNK,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )
