"""Controls written into a prompt, for every input that produces text (keyboard, air-writing, dictation):

    And it came to pass +Moses +"burning bush" =60 ?question

`+word` (or `+"several words"`) asks for a keyword, `=N` (or `=Nw`) for a length of N words, `?question` /
`?statement` (or `?q` / `?s`) for a style. What remains is the prompt. Nothing here talks to the network.
"""
from __future__ import annotations

import re

from airquill.shared.protocol import Controls

_KEYWORD = re.compile(r'(?:^|\s)\+(?:"([^"]+)"|(\S+))')
_LENGTH = re.compile(r"(?:^|\s)=(\d+)w?(?=\s|$)")
_STYLE = re.compile(r"(?:^|\s)\?(question|statement|q|s)(?=\s|$)", re.IGNORECASE)
STYLES = {"q": "question", "s": "statement", "question": "question", "statement": "statement"}


def parse_prompt(text: str) -> tuple[str, Controls | None]:
    """(the prompt without its control marks, the controls it asks for or None)."""
    keywords = [quoted or bare for quoted, bare in _KEYWORD.findall(text)]
    lengths = [int(n) for n in _LENGTH.findall(text)]
    styles = [STYLES[s.lower()] for s in _STYLE.findall(text)]
    prompt = " ".join(_STYLE.sub(" ", _LENGTH.sub(" ", _KEYWORD.sub(" ", text))).split())
    if not (keywords or lengths or styles):
        return text.strip(), None
    if len(lengths) > 1 or len(styles) > 1:
        raise ValueError("give at most one =length and one ?style")
    if lengths and lengths[0] < 1:
        raise ValueError("a length in words must be at least 1")
    return prompt, Controls(keywords=keywords, length_words=lengths[0] if lengths else None,
                            style=styles[0] if styles else None)


def describe(controls: Controls | None) -> str:
    """A short line for a panel's title: what its text was asked to do."""
    if controls is None:
        return ""
    parts = [f"+{k}" for k in controls.keywords]
    if controls.length_words:
        parts.append(f"={controls.length_words} words")
    if controls.style:
        parts.append(f"?{controls.style}")
    return " ".join(parts)
