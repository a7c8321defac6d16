"""The spoken-command parser: English and Russian phrases with their arguments, robustness to case and
punctuation, and the near-misses that must stay ordinary speech (a command must lead the utterance)."""
from __future__ import annotations

import pytest

from airquill.vr_client.input.commands import (COMMANDS, LANGUAGES, UNKNOWN, SpokenCommand, command_phrases, grammar,
                                               parse_command)


@pytest.mark.parametrize("text,name,argument", [
    ("generate a story about a lighthouse", "generate", "a story about a lighthouse"),
    ("write a poem", "generate", "a poem"),
    ("compose a letter to my aunt", "generate", "a letter to my aunt"),
    ("create a dialogue", "generate", "a dialogue"),
    ("rewrite", "rewrite", ""),
    ("rewrite it shorter", "rewrite", "it shorter"),
    ("rephrase this", "rewrite", "this"),
    ("regenerate", "regenerate", ""),
    ("try again", "regenerate", ""),
    ("generate again", "regenerate", ""),  # longest phrase wins over "generate" with the argument "again"
    ("delete", "delete", ""),
    ("remove the last sentence", "delete", "the last sentence"),
    ("erase", "delete", ""),
    ("undo", "undo", ""),
    ("revert", "undo", ""),
    ("go back", "undo", ""),
    ("redo", "redo", ""),
    ("save", "save", ""),
    ("store", "save", ""),
    ("new panel", "new_panel", ""),
    ("add a panel", "new_panel", ""),
    ("open a new panel", "new_panel", ""),
    ("create a new panel", "new_panel", ""),  # longest phrase wins over "create" = generate
    ("next chapter", "next_chapter", ""),
    ("go to the next chapter", "next_chapter", ""),
    ("new chapter", "next_chapter", ""),
    ("cancel", "cancel", ""),
    ("stop", "cancel", ""),
    ("never mind", "cancel", ""),
    ("please undo", "undo", ""),
    ("ok please save", "save", ""),
    ("hey quill generate a haiku", "generate", "a haiku"),
    ("generate a haiku please", "generate", "a haiku"),
    ("generate please a haiku", "generate", "a haiku"),
    ("undo [unk]", "undo", ""),
    ("mention Moses", "keyword", "Moses"),
    ("please use the word burning bush", "keyword", "burning bush"),
    ("length sixty words", "length", "sixty words"),
    ("word count one hundred", "length", "one hundred"),
    ("make it a question", "style", "question"),
    ("style statement", "style", "statement"),
])
def test_english(text, name, argument):
    assert parse_command(text, language="en") == SpokenCommand(name, argument, "en")
    assert parse_command(text) == SpokenCommand(name, argument, "en")


@pytest.mark.parametrize("text,name,argument", [
    ("сгенерируй рассказ о маяке", "generate", "рассказ о маяке"),
    ("сгенерируйте стихотворение", "generate", "стихотворение"),
    ("напиши письмо тете", "generate", "письмо тете"),
    ("напишите сказку", "generate", "сказку"),
    ("сочини песню", "generate", "песню"),
    ("создай диалог", "generate", "диалог"),
    ("перепиши", "rewrite", ""),
    ("перепиши короче", "rewrite", "короче"),
    ("перефразируй это", "rewrite", "это"),
    ("напиши заново", "regenerate", ""),  # longest phrase wins over "напиши" = generate
    ("перегенерируй", "regenerate", ""),
    ("сгенерируй ещё раз", "regenerate", ""),
    ("сгенерируй еще раз", "regenerate", ""),  # Vosk models may write "ё" as "е"
    ("удали", "delete", ""),
    ("удалите последнее предложение", "delete", "последнее предложение"),
    ("сотри", "delete", ""),
    ("отмени", "undo", ""),
    ("отмените", "undo", ""),
    ("отменить", "undo", ""),
    ("верни", "redo", ""),
    ("повтори", "redo", ""),
    ("сохрани", "save", ""),
    ("сохраните", "save", ""),
    ("новая панель", "new_panel", ""),
    ("новую панель", "new_panel", ""),
    ("создай новую панель", "new_panel", ""),
    ("открой панель", "new_panel", ""),
    ("следующая глава", "next_chapter", ""),
    ("следующую главу", "next_chapter", ""),
    ("перейди к следующей главе", "next_chapter", ""),
    ("новая глава", "next_chapter", ""),
    ("отмена", "cancel", ""),
    ("стоп", "cancel", ""),
    ("не надо", "cancel", ""),
    ("пожалуйста отмени", "undo", ""),
    ("давай напиши сказку", "generate", "сказку"),
    ("напиши пожалуйста сказку про кота", "generate", "сказку про кота"),
    ("сохрани пожалуйста", "save", ""),
    ("упомяни Моисея", "keyword", "Моисея"),
    ("ключевое слово хлеб", "keyword", "хлеб"),
    ("длиной сто двадцать слов", "length", "сто двадцать слов"),
    ("в форме вопроса", "style", "вопроса"),
])
def test_russian(text, name, argument):
    assert parse_command(text, language="ru") == SpokenCommand(name, argument, "ru")
    assert parse_command(text) == SpokenCommand(name, argument, "ru")


@pytest.mark.parametrize("text,expected", [
    ("Undo!", SpokenCommand("undo", "", "en")),
    ("UNDO.", SpokenCommand("undo", "", "en")),
    ("  New   Panel,  please. ", SpokenCommand("new_panel", "", "en")),
    # the argument keeps its own spelling
    ("Generate: A Poem about Cats.", SpokenCommand("generate", "A Poem about Cats.", "en")),
    ("Generate — a poem", SpokenCommand("generate", "a poem", "en")),
    ("Please, save!", SpokenCommand("save", "", "en")),
    ("Next chapter?", SpokenCommand("next_chapter", "", "en")),
    ("Новая панель!", SpokenCommand("new_panel", "", "ru")),
    ("СОХРАНИ.", SpokenCommand("save", "", "ru")),
    ("Напиши, пожалуйста, сказку про ёжика.", SpokenCommand("generate", "сказку про ёжика.", "ru")),
    ("Следующая Глава", SpokenCommand("next_chapter", "", "ru")),
])
def test_case_and_punctuation(text, expected):
    assert parse_command(text) == expected


@pytest.mark.parametrize("text", [
    "",
    "   ",
    "...",
    "[unk]",
    "please",
    "пожалуйста",
    "ok ok",
    # a command word that does not lead the utterance is ordinary speech
    "i want to undo nothing",
    "the panel is new",
    "could you generate a story",
    "let's save the world",
    "and then stop",
    "я хочу отменить встречу",
    "надо сохранить",
    "это новая панель",
    "[unk] undo",
    "ok ok ok ok undo",  # more than three lead-in words
    # partial words and inflections that are not in the phrase list
    "undoing",
    "undone",
    "saved",
    "savel",
    "saves the day",
    "generated text",
    "rewriter",
    "deleted",
    "cancelled",
    "stopwatch",
    "panel",
    "new",
    "next",
    "chapter",
    "new paper",
    "next chapters",
    "сохранение",
    "сохранил",
    "удаление",
    "отменил",
    "панель",
    "новая",
    "глава",
    "следующий глаз",
    "написал письмо",
    # unrelated sentences
    "the quick brown fox jumps over the lazy dog",
    "в начале было слово",
    "don't undo that",
])
def test_near_misses_do_not_trigger(text):
    assert parse_command(text) is None
    for language in LANGUAGES:
        assert parse_command(text, language=language) is None


def test_language_is_respected():
    assert parse_command("undo", language="ru") is None
    assert parse_command("отмени", language="en") is None
    with pytest.raises(ValueError, match="no voice commands"):
        parse_command("undo", language="de")


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_command_has_phrases_that_parse_to_it(language):
    phrases = command_phrases(language)
    assert set(phrases) == set(COMMANDS)
    for name, spoken in phrases.items():
        assert len(spoken) >= 2, (language, name)
        for phrase in spoken:
            assert parse_command(phrase, language=language) == SpokenCommand(name, "", language), phrase


@pytest.mark.parametrize("language", LANGUAGES)
def test_grammar_lists_every_phrase_and_unk(language):
    words = grammar(language)
    assert words[-1] == UNKNOWN and words.count(UNKNOWN) == 1
    assert len(words) == len(set(words))
    for spoken in command_phrases(language).values():
        assert set(spoken) <= set(words)
    assert all(w == w.lower() and w.strip() == w for w in words)


def test_grammar_lists_both_spellings_of_yo():
    words = grammar("ru")
    assert "попробуй ещё раз" in words and "попробуй еще раз" in words


def test_grammar_with_custom_phrases():
    assert grammar(phrases=["Да", "нет", "да", "  два  слова ", "[unk]"]) == ["да", "нет", "два слова", UNKNOWN]
    assert grammar("ko", phrases=["안녕하세요"]) == ["안녕하세요", UNKNOWN]
    with pytest.raises(ValueError):
        grammar()
    with pytest.raises(ValueError):
        grammar("ko")
