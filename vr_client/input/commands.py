"""Spoken text -> editor command, in English and Russian, and the phrase list for Vosk's grammar mode.

The rule, kept strict so that dictation never fires a command by accident:

* the command phrase must be the *first* words of the utterance, optionally after up to three lead-in words
  ("please", "ok", "hey", "quill"; "пожалуйста", "окей", "давай", "ну", ...);
* phrases match whole words only ("undoing", "saved", "сохранение" are not commands), longest phrase first
  ("создай новую панель" is new_panel, not generate);
* everything after the phrase is the argument (the prompt after "generate"), with a politeness word right after
  the phrase or at the very end dropped ("напиши пожалуйста сказку" -> generate "сказку");
* a command word anywhere else ("i want to undo nothing") is ordinary speech: no command.

`regenerate` is the whole panel again ("try again"), `rewrite` the selected span in place, as in the editor.
`keyword`, `length` and `style` ("mention Moses", "length sixty words", "make it a question") add controls to
the prompt being composed.

Text is matched case-insensitively with punctuation ignored and "ё" read as "е", because Vosk outputs lowercase
words without punctuation while typed or test text may have both. The argument keeps the original spelling.
Pure Python: no Vosk here, so the parser is usable (and testable) without a model.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

COMMANDS = ("generate", "regenerate", "rewrite", "delete", "undo", "redo", "save", "new_panel", "next_chapter",
            "cancel", "keyword", "length", "style")
LANGUAGES = ("en", "ru")
UNKNOWN = "[unk]"  # Vosk's word for speech outside the grammar
MAX_LEAD_IN = 3


def _ru_verbs(verbs: Iterable[str], objects: Iterable[str]) -> list[str]:
    return [f"{verb} {obj}" for verb in verbs for obj in objects]


# Russian verbs come as Vosk hears them: informal imperative, formal/plural imperative, infinitive.
_PHRASES: dict[str, dict[str, list[str]]] = {
    "en": {
        "generate": ["generate", "write", "compose", "create"],
        "regenerate": ["regenerate", "try again", "generate again", "write it again"],
        "rewrite": ["rewrite", "rephrase", "reword"],
        "delete": ["delete", "remove", "erase"],
        "undo": ["undo", "revert", "go back"],
        "redo": ["redo", "reapply"],
        "save": ["save", "store"],
        "new_panel": ["new panel", "another panel", "add panel", "add a panel", "add a new panel", "open panel",
                      "open a panel", "open a new panel", "create a panel", "create a new panel"],
        "next_chapter": ["next chapter", "new chapter", "following chapter", "go to next chapter",
                         "go to the next chapter", "start a new chapter"],
        "cancel": ["cancel", "stop", "abort", "never mind", "nevermind"],
        # controls for the next prompt (marks in the prompt line, see prompt_controls)
        "keyword": ["mention", "keyword", "include the word", "use the word", "with the word"],
        "length": ["length", "set length", "word count"],
        "style": ["style", "make it a", "make it"],
    },
    "ru": {
        "generate": ["сгенерируй", "сгенерируйте", "сгенерировать", "генерируй", "генерируйте", "напиши",
                     "напишите", "написать", "пиши", "пишите", "сочини", "сочините", "сочинить", "создай",
                     "создайте"],
        "regenerate": ["перегенерируй", "перегенерируйте", "сгенерируй заново", "сгенерируй ещё раз",
                       "напиши заново", "напиши ещё раз", "попробуй ещё раз", "попробуйте ещё раз"],
        "rewrite": ["перепиши", "перепишите", "переписать", "перефразируй", "перефразируйте", "напиши иначе",
                    "скажи иначе"],
        "delete": ["удали", "удалите", "удалить", "сотри", "сотрите", "стереть", "убери", "уберите"],
        # "Отменить" is the Undo menu item, "Отмена" the Cancel button; Vosk keeps the two apart by their ending.
        "undo": ["отмени", "отмените", "отменить", "откати", "откатите", "откатить"],
        "redo": ["верни", "верните", "вернуть", "повтори", "повторите", "повторить"],
        "save": ["сохрани", "сохраните", "сохранить"],
        "new_panel": ["новая панель", "новую панель", "другая панель",
                      *_ru_verbs(["создай", "создайте", "открой", "откройте", "добавь", "добавьте"],
                                 ["панель", "новую панель"])],
        "next_chapter": ["следующая глава", "следующую главу", "к следующей главе", "новая глава", "новую главу",
                         *_ru_verbs(["перейди", "перейдите"], ["к следующей главе", "к новой главе"]),
                         *_ru_verbs(["начни", "начните", "открой", "откройте"], ["следующую главу", "новую главу"])],
        "cancel": ["отмена", "стоп", "хватит", "прекрати", "прекратите", "остановись", "остановитесь", "не надо",
                   "отбой"],
        "keyword": ["упомяни", "упомяните", "ключевое слово", "со словом"],
        "length": ["длина", "длиной", "объём"],
        "style": ["стиль", "в форме", "в виде"],
    },
}
_LEAD_IN = {
    "en": ["please", "ok", "okay", "hey", "quill", "airquill"],
    "ru": ["пожалуйста", "окей", "ок", "эй", "давай", "давайте", "ну"],
}
_POLITE = {"en": {"please"}, "ru": {"пожалуйста"}}

# Letters/digits (an inner apostrophe keeps "don't" one word), or Vosk's "[unk]", a word that matches nothing.
_WORD = re.compile(r"\[unk\]|[^\W_]+(?:['’][^\W_]+)*")
_TRAILING = " \t\r\n,;:-–—"


@dataclass(frozen=True)
class SpokenCommand:
    """A parsed command: canonical `name` (one of COMMANDS), the words after it, the language it matched in."""

    name: str
    argument: str
    language: str


def normalise(word: str) -> str:
    """Lowercase, "ё" as "е", typographic apostrophe as ASCII: how phrases are compared."""
    return word.casefold().replace("ё", "е").replace("’", "'")


@functools.lru_cache(maxsize=None)
def _table(language: str) -> dict[tuple[str, ...], str]:
    """Phrase (as a tuple of normalised words) -> command name; built on first use, not at import."""
    if language not in _PHRASES:
        raise ValueError(f"no voice commands for language {language!r}; known: {', '.join(LANGUAGES)}")
    return {tuple(normalise(p).split()): name for name, phrases in _PHRASES[language].items() for p in phrases}


def command_phrases(language: str) -> dict[str, list[str]]:
    """The phrases per command (for a help overlay or the report); a copy, so callers cannot change the parser."""
    _table(language)
    return {name: list(phrases) for name, phrases in _PHRASES[language].items()}


def parse_command(text: str, *, language: str | None = None) -> SpokenCommand | None:
    """The command that `text` starts with, or None. `language=None` tries every known language (Vosk output is
    in one language, and English and Russian words cannot be confused)."""
    languages = LANGUAGES if language is None else (language,)
    words = [(normalise(m.group()), m.start(), m.end()) for m in _WORD.finditer(text)]
    for lang in languages:
        found = _match(text, words, lang)
        if found is not None:
            return found
    return None


def _match(text: str, words: list[tuple[str, int, int]], language: str) -> SpokenCommand | None:
    table = _table(language)
    lead_in = set(_LEAD_IN[language])
    start = 0
    while start < min(len(words), MAX_LEAD_IN) and words[start][0] in lead_in:
        start += 1
    tokens = [w for w, _, _ in words]
    longest = max(len(key) for key in table)
    for n in range(min(longest, len(tokens) - start), 0, -1):
        name = table.get(tuple(tokens[start:start + n]))
        if name is not None:
            end = words[start + n - 1][2]
            return SpokenCommand(name, _argument(text[end:], language), language)
    return None


def _argument(rest: str, language: str) -> str:
    """The words after the phrase, in their original spelling, without Vosk's [unk] markers, leading separators
    or a politeness word right after the phrase or at the end."""
    rest = " ".join(rest.replace(UNKNOWN, " ").split())
    words = list(_WORD.finditer(rest))
    polite = _POLITE[language]
    if words and normalise(words[-1].group()) in polite and rest[words[-1].end():].strip(" .!?,;:") == "":
        rest, words = rest[:words[-1].start()], words[:-1]
    if words and normalise(words[0].group()) in polite:
        rest, words = rest[words[0].end():], words[1:]
    if not words:
        return ""
    return rest.strip().lstrip(_TRAILING + ".!?").rstrip(_TRAILING)


def grammar(language: str | None = None, *, phrases: Sequence[str] | None = None) -> list[str]:
    """The phrase list for Vosk's grammar mode (KaldiRecognizer(model, rate, json.dumps(grammar(...)))): every
    command phrase and lead-in word of `language`, or the given custom `phrases` (any language, e.g. for a model
    we have no command table for), plus "[unk]" so speech outside the list is not forced onto a phrase.
    Vosk ignores phrases whose words are not in the model's vocabulary, so "ё" phrases are listed both ways."""
    if phrases is None:
        if language is None:
            raise ValueError("grammar() needs a language or a phrase list")
        _table(language)
        phrases = [p for ps in _PHRASES[language].values() for p in ps] + _LEAD_IN[language]
    spelled: list[str] = []
    for phrase in phrases:
        phrase = " ".join(phrase.casefold().replace("’", "'").split())
        spelled += [phrase, phrase.replace("ё", "е")]  # models differ in writing "ё"; Vosk drops the unknown one
    return list(dict.fromkeys(p for p in spelled if p and p != UNKNOWN)) + [UNKNOWN]
