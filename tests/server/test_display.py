"""Display strings concatenate to exactly the decoded text, also where a token splits a UTF-8 character."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from airquill.server.sampling.display import TokenDisplay

TEXTS = {
    "english": "In the beginning God created the heaven and the earth.",
    "russian": "В начале сотворил Бог небо и землю.",
    "cjk": "起初，神创造天地。日本語のテキスト。",
    "emoji": "Light 🌅 and water 💧, family 👨‍👩‍👧 and flags 🇺🇦.",
}


@pytest.mark.parametrize("name", TEXTS)
def test_strings_concatenate_to_the_decoded_text(tokenizer, name):
    text = TEXTS[name]
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    display = TokenDisplay(tokenizer)
    strings = display.strings(ids)
    assert len(strings) == len(ids)
    assert "".join(strings) == text == tokenizer.decode(ids)


def test_a_character_split_across_tokens_is_shown_once(tokenizer):
    display = TokenDisplay(tokenizer)
    ids = tokenizer("🌅", add_special_tokens=False)["input_ids"]
    assert len(ids) > 1  # the byte-level tokenizer splits the emoji's four bytes
    strings = display.strings(ids)
    assert strings[-1] == "🌅" and all(s == "" for s in strings[:-1])


def test_masked_positions_break_the_run(tokenizer):
    display = TokenDisplay(tokenizer)
    ids = tokenizer("небо и землю", add_special_tokens=False)["input_ids"]
    with_gap = list(ids)
    with_gap[2] = None
    strings = display.strings(with_gap)
    assert strings[2] == "" and len(strings) == len(ids)
    assert "".join(display.strings(ids)) == "небо и землю"


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text(max_size=40))
def test_any_text_round_trips(tokenizer, text):
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert "".join(TokenDisplay(tokenizer).strings(ids)) == tokenizer.decode(ids) == text


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.integers(4, 399), max_size=30))
def test_any_token_sequence_concatenates_to_decode(tokenizer, ids):
    """Even sampled garbage (invalid UTF-8 pieces) shows exactly what decode gives."""
    assert "".join(TokenDisplay(tokenizer).strings(ids)) == tokenizer.decode(ids)


def test_generic_path_for_non_byte_level_tokenizers(tokenizer):
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "[MASK]": 1, "hello": 2, "world": 3, "##s": 4, "!": 5}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    wordpiece = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", mask_token="[MASK]")
    display = TokenDisplay(wordpiece)
    assert display.table is None
    ids = wordpiece("hello worlds !", add_special_tokens=False)["input_ids"]
    assert "".join(display.strings(ids)) == wordpiece.decode(ids, clean_up_tokenization_spaces=False)
