"""Control marks in a prompt: keywords, a length in words, a style; everything else is the prompt."""
from __future__ import annotations

import pytest

from airquill.vr_client.prompt_controls import describe, parse_prompt


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
