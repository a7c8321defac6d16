"""Per-token display strings that concatenate to exactly the decoded text.

A byte-level BPE piece can end in the middle of a UTF-8 character (Cyrillic, CJK, emoji). Token bytes are fed
through one incremental UTF-8 decoder; a character is shown by the token in which its last byte arrives, so
the strings always concatenate to the decoded text. A masked position breaks the run: bytes still pending
before it are flushed (as U+FFFD) so that nothing is shown twice.
Tokenizers that are not byte-level fall back to decoding growing prefixes.
"""
from __future__ import annotations

import codecs
import json
from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte <-> printable-character table, as byte-level BPE vocabularies use."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


def _is_byte_level(tokenizer: PreTrainedTokenizerBase) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return False
    decoder = json.loads(backend.to_str()).get("decoder") or {}
    kinds = [decoder.get("type")] + [d.get("type") for d in decoder.get("decoders", []) or []]
    return "ByteLevel" in kinds


def _byte_table(tokenizer: PreTrainedTokenizerBase) -> list[bytes] | None:
    """Bytes of every token id, or None when the vocabulary is not byte-level."""
    if not _is_byte_level(tokenizer):
        return None
    decode_char = {c: b for b, c in _bytes_to_unicode().items()}
    special = set(tokenizer.all_special_ids)
    table: list[bytes] = []
    for token_id, piece in enumerate(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))):
        if token_id in special or piece is None:
            table.append(b"")
            continue
        try:
            table.append(bytes(decode_char[ch] for ch in piece))
        except KeyError:
            return None
    return table


class TokenDisplay:
    """Maps a run of token ids (None = masked) to display strings."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase):
        self.tokenizer = tokenizer
        self.table = _byte_table(tokenizer)

    def strings(self, ids: Sequence[int | None]) -> list[str]:
        return self._byte_level(ids) if self.table is not None else self._generic(ids)

    def _byte_level(self, ids: Sequence[int | None]) -> list[str]:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        out: list[str] = []
        for token_id in ids:
            if token_id is None:
                if out:
                    out[-1] += decoder.decode(b"", final=True)
                decoder.reset()
                out.append("")
                continue
            out.append(decoder.decode(self.table[token_id]))
        if out:
            out[-1] += decoder.decode(b"", final=True)
        return out

    def _generic(self, ids: Sequence[int | None]) -> list[str]:
        out: list[str] = []
        run: list[int] = []
        shown = ""
        for token_id in ids:
            if token_id is None:
                run, shown = [], ""
                out.append("")
                continue
            run.append(token_id)
            text = self.tokenizer.decode(run, skip_special_tokens=True, clean_up_tokenization_spaces=False)
            if text.startswith(shown):
                out.append(text[len(shown) :])
            else:  # the decoder rewrote earlier text: show the whole run on this token
                for i in range(len(out) - len(run) + 1, len(out)):
                    out[i] = ""
                out.append(text)
            shown = text
        return out

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.strings(list(ids)))
