"""The live terminal view's look per noise kind: masks flicker as noise glyphs, random tokens (uniform noise) show
their own letters, provisional and settled text show the text."""
from __future__ import annotations

from rich.console import Console

from airquill.shared.step import Step, TokenChange
from airquill.shared.text_state import TextState, noise_width
from airquill.vr_client.terminal import NOISE_GLYPHS, Status, render_state


def shown(state: TextState, frame: int = 0) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(render_state(state, Status(), frame=frame))
    return console.export_text()


def test_each_kind_of_noise_has_its_look():
    state = TextState()
    state.apply(Step(1, 8, 4, (TokenChange(0, 5, "", 0.0, 1.0),  # a mask
                               TokenChange(1, 6, "Zebulun", 0.0, 1.0),  # a random token
                               TokenChange(2, 7, " firmament", 0.6, 0.5),  # a provisional proposal
                               TokenChange(3, 8, " Amen", 1.0, 0.0))))  # settled
    text = shown(state)
    body = text.splitlines()[1]
    assert "Zebulun"[: noise_width(1)] in body  # its own letters, cut to the noise width
    assert " firmament" in body and " Amen" in body
    mask = body.split("│")[1][: noise_width(0)].strip()
    assert mask and set(mask) <= set(NOISE_GLYPHS)
    later = [shown(state, frame=f).splitlines()[1] for f in range(1, 6)]
    assert any(b.split("│")[1][: noise_width(0)] != body.split("│")[1][: noise_width(0)] for b in later)  # flickers
    assert all("Zebulun"[: noise_width(1)] in b for b in later)  # a random token stays until the next step
