"""Controls written into a prompt, for every input that produces text (keyboard, air-writing, dictation):

    And it came to pass +Moses +"burning bush" =60 ?question

`+word` (or `+"several words"`) asks for a keyword, `=N` (or `=Nw`) for a length of N words, `?question` /
`?statement` (or `?q` / `?s`) for a style. What remains is the prompt. Nothing here talks to the network.

Spoken controls ("mention Moses", "length sixty words", "make it a question"; Russian too) and the keyboard's
length slider edit the same marks in the prompt line (`with_keyword`, `with_length`, `with_style`), so what a
panel was asked for is always visible as text before it is sent. Vosk writes numbers as words, so
`spoken_number` reads "one hundred and twenty" and "сто двадцать" as well as digits.
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


def with_keyword(typed: str, word: str) -> str:
    """The prompt line with one more keyword mark (quoted when it is several words)."""
    word = " ".join(word.replace('"', " ").split())
    if not word:
        raise ValueError("say or type the keyword after the command")
    mark = f'+"{word}"' if " " in word else f"+{word}"
    return f"{typed} {mark}".strip()


def length_mark(typed: str) -> int | None:
    """The length in words the prompt line asks for (the last mark), if any."""
    found = _LENGTH.findall(typed)
    return int(found[-1]) if found else None


def with_length(typed: str, words: int | None) -> str:
    """The prompt line with its length mark set to `words` (None: removed)."""
    if words is not None and words < 1:
        raise ValueError("a length in words must be at least 1")
    rest = " ".join(_LENGTH.sub(" ", typed).split())
    return rest if words is None else f"{rest} ={words}".strip()


def with_style(typed: str, style: str | None) -> str:
    """The prompt line with its style mark set to `style` (question or statement; None: removed)."""
    rest = " ".join(_STYLE.sub(" ", typed).split())
    return rest if style is None else f"{rest} ?{STYLES[style]}".strip()


_OFF = {"off", "none", "no", "any", "free", "нет", "без", "выключи", "любая", "любой"}
_SPOKEN_STYLES = {"question": "question", "questions": "question", "вопрос": "question", "вопроса": "question",
                  "вопросом": "question", "statement": "statement", "statements": "statement",
                  "утверждение": "statement", "утверждения": "statement", "утверждением": "statement"}


def _spoken_words(text: str) -> list[str]:
    """The words of a spoken (or typed) argument, lowercased, without punctuation."""
    return [w for w in (w.strip(".,!?") for w in text.casefold().replace("-", " ").split()) if w]


def spoken_style(text: str) -> str | None:
    """"question" or "statement" from the words after a style command (None for "off"); an error otherwise."""
    words = _spoken_words(text)
    for w in words:
        if w in _SPOKEN_STYLES:
            return _SPOKEN_STYLES[w]
        if w in STYLES:
            return STYLES[w]
    if any(w in _OFF for w in words):
        return None
    raise ValueError(f"a style is “question” or “statement”, not “{text}”")


_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
_UNITS.update({w: i for i, w in enumerate(
    "ноль один два три четыре пять шесть семь восемь девять десять одиннадцать двенадцать тринадцать "
    "четырнадцать пятнадцать шестнадцать семнадцать восемнадцать девятнадцать".split())})
_UNITS.update({"одна": 1, "две": 2, "a": 1})
_TENS = {w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
_TENS.update({w: 10 * (i + 2) for i, w in enumerate(
    "двадцать тридцать сорок пятьдесят шестьдесят семьдесят восемьдесят девяносто".split())})
_HUNDREDS = {w: 100 * (i + 1) for i, w in enumerate(
    "сто двести триста четыреста пятьсот шестьсот семьсот восемьсот девятьсот".split())}
_FILLER = {"and", "words", "word", "слов", "слова", "слово", "in", "of", "в", "из"}


def spoken_number(text: str) -> int | None:
    """The whole number in `text`, written in digits or spoken in English or Russian ("sixty", "one hundred
    and twenty", "сто двадцать"), up to 9,999; None when `text` holds no number or words that are not one."""
    words = [w for w in _spoken_words(text) if w not in _FILLER]
    if len(words) == 1 and words[0].isdigit():
        return int(words[0])
    total, current, seen = 0, 0, False
    for w in words:
        if w.isdigit():
            current += int(w)
        elif w in _UNITS:
            current += _UNITS[w]
        elif w in _TENS:
            current += _TENS[w]
        elif w in _HUNDREDS:
            current += _HUNDREDS[w]
        elif w == "hundred":
            current = max(1, current) * 100
        elif w in ("thousand", "тысяча", "тысячи", "тысяч"):
            total += max(1, current) * 1000
            current = 0
        else:
            return None
        seen = True
    return total + current if seen and total + current <= 9_999 else None


def spoken_length(text: str) -> int | None:
    """The length in words from the words after a length command (None for "off"); an error otherwise."""
    if any(w in _OFF for w in _spoken_words(text)):
        return None
    words = spoken_number(text)
    if words is None:
        raise ValueError(f"say a number of words after “length”, not “{text}”")
    return words


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
