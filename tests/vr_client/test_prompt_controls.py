"""Control marks in a prompt: keywords, a length in words, a style; everything else is the prompt."""
from __future__ import annotations

import pytest

from airquill.vr_client.prompt_controls import (describe, length_mark, parse_prompt, spoken_number, spoken_style,
                                               with_keyword, with_length, with_style)


def test_marks_become_controls_and_leave_the_prompt():
    prompt, controls = parse_prompt('And it came to pass +Moses +"burning bush" =60w ?q')
    assert prompt == "And it came to pass"
    assert controls.keywords == ["Moses", "burning bush"] and controls.length_words == 60
    assert controls.style == "question"
    assert describe(controls) == "+Moses +burning bush =60 words ?question"


def test_plain_prompts_and_lookalikes_stay_as_they_are():
    assert parse_prompt("  And God said  ") == ("And God said", None)
    assert parse_prompt("1+1=2? said he") == ("1+1=2? said he", None)  # marks start a word


def test_conflicting_marks_are_refused():
    with pytest.raises(ValueError, match="at most one"):
        parse_prompt("Tell =10 =20")
    with pytest.raises(ValueError, match="at least 1"):
        parse_prompt("Tell =0")


@pytest.mark.parametrize("text, number", [
    ("60", 60), ("sixty", 60), ("sixty words", 60), ("one hundred and twenty", 120), ("a hundred", 100),
    ("two thousand five hundred", 2500), ("twenty-five", 25), ("шестьдесят", 60), ("сто двадцать слов", 120),
    ("двести", 200), ("одна тысяча", 1000), ("many", None), ("sixty pages", None), ("", None),
    ("ten thousand", None)])
def test_spoken_numbers(text, number):
    assert spoken_number(text) == number


def test_marks_are_edited_in_place_and_parse_back():
    line = with_keyword("Tell of the king", "Moses")
    line = with_keyword(line, 'burning "bush"')
    line = with_length(with_length(line, 60), 80)
    line = with_style(with_style(line, "q"), "statement")
    assert line == 'Tell of the king +Moses +"burning bush" =80 ?statement' and length_mark(line) == 80
    prompt, controls = parse_prompt(line)
    assert prompt == "Tell of the king" and controls.keywords == ["Moses", "burning bush"]
    assert controls.length_words == 80 and controls.style == "statement"
    assert with_style(with_length(line, None), None) == 'Tell of the king +Moses +"burning bush"'
    assert spoken_style("a question please") == "question" and spoken_style("утверждения") == "statement"
    assert spoken_style("off") is None
    for bad, call in (("keyword", lambda: with_keyword("x", "  ")), ("at least 1", lambda: with_length("x", 0)),
                      ("question", lambda: spoken_style("poem"))):
        with pytest.raises(ValueError, match=bad):
            call()
