"""The word-level tokenizer: ids, round trip, unknown words, save and reload."""

from transformers import AutoTokenizer

from prefopt.tasks.reviews.lexicon import all_words
from prefopt.tasks.wordlevel import build_word_tokenizer


def test_round_trip_and_specials(tmp_path):
    tokenizer = build_word_tokenizer(all_words())
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)
    assert len(tokenizer) == 3 + len(all_words()) < 1000
    text = "the food was very good . i loved the soup ."
    ids = tokenizer(text)["input_ids"]
    assert len(ids) == len(text.split()) and tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids + [tokenizer.eos_token_id], skip_special_tokens=True) == text
    assert tokenizer("the zebra")["input_ids"][1] == tokenizer.unk_token_id
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded(text)["input_ids"] == ids and reloaded.eos_token_id == 1
