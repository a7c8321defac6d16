"""The virtual keyboard: a panel of keys operated by pinch, ray or click, with Latin and Cyrillic layouts.

The keyboard is an ordinary text panel whose tokens are key caps (token id = key index), so it is drawn by the
same renderer and hit-tested by the same `token_at` as any text; `press` turns a key into a `KeyPress` event.
Shift is one-shot (the next letter only); the layout key switches between the layouts.

The last row is the length slider: stops from "off" to 200 words. Pinching a stop, or pinching and dragging
along the row, sets the length control of the prompt being composed (a `Command("length", …)`, the same as
saying "length sixty words"); the stop the prompt line asks for is shown in brackets.
"""
from __future__ import annotations

from dataclasses import dataclass

from airquill.vr_client.document import show
from airquill.vr_client.input.events import Command, KeyPress
from airquill.vr_client.scene import EYE_HEIGHT, READING_DISTANCE, Panel

LAYOUTS: dict[str, tuple[str, ...]] = {
    "latin": ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm,.?"),
    "cyrillic": ("1234567890", "йцукенгшщзхъ", "фывапролджэ", "ячсмитьбюё."),
}
SPECIAL_ROW = ("shift", "layout", "space", "backspace", "enter")
CAPS = {"shift": "⇧", "layout": "EN/RU", "space": "␣ space", "backspace": "⌫", "enter": "⏎"}
NO_KEY = -1  # token id of the spacing and line breaks between caps
LENGTH_STOPS = (0, 20, 40, 60, 80, 100, 150, 200)  # words; 0: no length control
SLIDER = "length:"  # key names of the slider's stops: "length:60"


@dataclass
class VirtualKeyboard:
    layout: str = "latin"
    shift: bool = False
    length_words: int = 0  # the slider's stop (0: off), kept in step with the prompt line by the controller

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown layout {self.layout!r}; choose from {', '.join(LAYOUTS)}")

    def rows(self) -> list[list[str]]:
        """Key names row by row: characters as they would be typed now (shift applied), then the special row."""
        letters = [[c.upper() if self.shift else c for c in row] for row in LAYOUTS[self.layout]]
        return letters + [list(SPECIAL_ROW), [f"{SLIDER}{n}" for n in LENGTH_STOPS]]

    def keys(self) -> list[str]:
        return [key for row in self.rows() for key in row]

    def press(self, key: str, t: float) -> KeyPress | Command:
        """The event a key gives; shift and layout change the keyboard itself and are reported too; a slider
        stop gives the length command."""
        if key.startswith(SLIDER):
            words = _stop(key)
            if words not in LENGTH_STOPS:
                raise ValueError(f"{key!r} is not a stop of the length slider")
            self.length_words = words
            return Command("length", str(words) if words else "off", t)
        if key == "shift":
            self.shift = not self.shift
        elif key == "layout":
            names = list(LAYOUTS)
            self.layout = names[(names.index(self.layout) + 1) % len(names)]
            self.shift = False
        elif key == "space":
            key = " "
        elif key not in ("backspace", "enter"):
            if key not in self.keys():
                raise ValueError(f"{key!r} is not on the {self.layout} keyboard")
            self.shift = False
        return KeyPress(key, t)

    def show_on(self, panel: Panel) -> None:
        """Lay the caps out as the panel's tokens (call again after shift or a layout change)."""
        tokens: list[tuple[int, str]] = []
        index = 0
        for r, row in enumerate(self.rows()):
            if row[0].startswith(SLIDER):
                tokens.append((NO_KEY, "words: "))
            for key in row:
                tokens.append((index, f"{self._cap(key)} "))
                index += 1
            if r < len(self.rows()) - 1:
                tokens.append((NO_KEY, "\n"))
        show(panel.text, tokens)
        panel.title = f"keyboard · {self.layout}" + (" · shift" if self.shift else "")
        panel.touch()

    def _cap(self, key: str) -> str:
        if not key.startswith(SLIDER):
            return CAPS.get(key, key)
        words = _stop(key)
        cap = str(words) if words else "off"
        return f"[{cap}]" if words == self.length_words else cap

    def key_of(self, panel: Panel, token: int | None) -> str | None:
        """The key under a token position of the keyboard panel (None for the gaps)."""
        if token is None or not 0 <= token < len(panel.text.cells):
            return None
        index = panel.text.cells[token].token_id
        keys = self.keys()
        return keys[index] if 0 <= index < len(keys) else None


def _stop(key: str) -> int | None:
    """The words of a slider key ("length:60" -> 60), None when the rest is not a number."""
    rest = key[len(SLIDER):]
    return int(rest) if rest.isdigit() else None


def keyboard_panel(keyboard: VirtualKeyboard) -> Panel:
    """A panel below eye height, tilted towards the user like a desk keyboard."""
    panel = Panel("keyboard", position=(0.0, EYE_HEIGHT - 0.55, -READING_DISTANCE * 0.45), pitch=-0.6,
                  width=0.8, height=0.36, em=0.035, persist=False)
    keyboard.show_on(panel)
    return panel
