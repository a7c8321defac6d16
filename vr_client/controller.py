"""Input events → editing actions. The frame loop drains the input queue into `Controller.handle`.

Pointer events land on panels in one of two ways: a pinch that follows a pointing ray (OpenXR hand joints, a
controller) picks the panel the ray hits; a webcam pinch, calibrated to the unit square of the selected panel,
lands on that panel. A pinch on text selects a span (pinch, drag, release); a pinch on the keyboard presses a
key. Typed, air-written and dictated text collects in the prompt line; Enter (or "generate") sends it, or
replaces the selection when there is one. Every refusal becomes a message on the prompt panel; no input ever
raises into the frame loop.
"""
from __future__ import annotations

import queue
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from airquill.vr_client.editor import Editor, EditRefused
from airquill.vr_client.input.events import (Command, InputUnavailable, KeyPress, Letter, OpenPalm, Pinch, PointingRay,
                                             TwoHandGrab, Utterance, VoiceCommand)
from airquill.vr_client.input.airwriting import AirWriter
from airquill.vr_client.input.calibration import CalibrationSession
from airquill.vr_client.input.keyboard import SLIDER, VirtualKeyboard
from airquill.vr_client.prompt_controls import (length_mark, spoken_length, spoken_style, with_keyword, with_length,
                                               with_style)
from airquill.vr_client.scene import Panel, arc_placement, pick

Locate = Callable[[Panel, float, float], "int | None"]  # (panel, x em, y em) -> token under it
RAY_FRESH_S = 0.3  # a pinch uses its hand's pointing ray if one arrived this recently
MIN_PANEL_WIDTH, MAX_PANEL_WIDTH = 0.3, 3.0  # metres


@dataclass
class _Grab:
    panel: Panel
    position: tuple[float, float, float]
    width: float
    height: float
    em: float
    x: float
    y: float


@dataclass
class Controller:
    editor: Editor
    locate: Locate
    keyboard: VirtualKeyboard | None = None
    keyboard_panel: Panel | None = None
    writer: AirWriter | None = None  # strokes drawn with a pinch off the panels become letters
    calibration: CalibrationSession | None = None  # while set, pinches calibrate the webcam pointer
    typed: str = ""
    listening: str = ""  # the live partial speech result
    _rays: dict = field(default_factory=dict)  # hand -> latest PointingRay
    _anchor: dict = field(default_factory=dict)  # hand -> (panel, token) where its pinch started on text
    _sliding: set = field(default_factory=set)  # hands whose pinch started on the length slider
    _grab: _Grab | None = None

    @property
    def scene(self):
        return self.editor.scene

    def selected(self) -> Panel | None:
        return next((p for p in self.scene.panels if p.selected and p.persist), None)

    def select(self, panel: Panel | None) -> None:
        for p in self.scene.panels:
            if p.selected != (p is panel):
                p.selected = p is panel
                p.touch()

    def drain(self, events: queue.Queue) -> int:
        n = 0
        while True:
            try:
                event = events.get_nowait()
            except queue.Empty:
                return n
            self.handle(event)
            n += 1

    def handle(self, event) -> None:
        handler = getattr(self, f"_on_{type(event).__name__}", None)
        if handler is None:
            raise TypeError(f"no handler for input event {event!r}")
        try:
            handler(event)
        except EditRefused as refusal:
            self.tell(str(refusal))
        self._sync_slider()

    def _sync_slider(self) -> None:
        """The keyboard's length slider shows the length mark of the prompt line (voice or typing may set it)."""
        if self.keyboard is None or self.keyboard_panel is None:
            return
        words = length_mark(self.typed) or 0
        if words != self.keyboard.length_words:
            self.keyboard.length_words = words
            self.keyboard.show_on(self.keyboard_panel)

    @property
    def messages(self) -> list[str]:
        """What the user should be told, newest last (the editor's messages and the controller's refusals)."""
        return self.editor.messages

    def tell(self, message: str) -> None:
        self.messages.append(message)
        del self.messages[:-5]

    # --- pointer ----------------------------------------------------------------------------------------------

    def _target(self, event: Pinch) -> tuple[Panel, float, float] | None:
        """The panel and em point under a pinch: along a fresh pointing ray, else on the selected panel."""
        ray = self._rays.get(event.hand)
        if ray is not None and event.t - ray.t <= RAY_FRESH_S:
            return pick(self.scene, np.array(ray.origin), np.array(ray.direction))
        panel = self.selected()
        if panel is None or not (0 <= event.x <= 1 and 0 <= event.y <= 1):
            return None
        return panel, event.x * panel.width_em, event.y * panel.height / panel.em

    def _on_PointingRay(self, event: PointingRay) -> None:
        self._rays[event.hand] = event

    def _on_Pinch(self, event: Pinch) -> None:
        if self.calibration is not None:
            self.calibration.feed(event)
            return
        if self.writer is not None and self.writer.writing and event.hand == self.writer.hand:
            letter = self.writer.feed(event)
            if letter is not None:
                self.handle(letter)
            return
        if event.phase == "end":
            self._anchor.pop(event.hand, None)
            self._sliding.discard(event.hand)
            return
        hit = self._target(event)
        if hit is None:  # a pinch in the air beside the panels starts an air-written stroke
            if event.phase == "start" and self.writer is not None and event.hand == self.writer.hand:
                self.writer.feed(event)
            return
        panel, x, y = hit
        token = self.locate(panel, x, y)
        if event.hand in self._sliding and panel is self.keyboard_panel:  # dragging along the length slider
            key = self.keyboard.key_of(panel, token)
            if key is not None and key.startswith(SLIDER) and key != f"{SLIDER}{self.keyboard.length_words}":
                self.handle(self.keyboard.press(key, event.t))
                self.keyboard.show_on(panel)
            return
        if event.phase == "start":
            if panel is self.keyboard_panel and self.keyboard is not None:
                key = self.keyboard.key_of(panel, token)
                if key is not None and key.startswith(SLIDER):
                    self._sliding.add(event.hand)
                if key is not None:
                    self.handle(self.keyboard.press(key, event.t))
                    self.keyboard.show_on(panel)
                    if self.writer is not None and key == "layout":  # air-writing follows the keyboard's script
                        self.writer.alphabet = self.keyboard.layout
                return
            if not panel.persist:  # the prompt line is not a place to select
                return
            self.select(panel)
            if token is not None:
                self._anchor[event.hand] = (panel, token)
                panel.select_span(token, token)
        elif event.hand in self._anchor and token is not None:
            anchor_panel, anchor = self._anchor[event.hand]
            if anchor_panel is panel:
                panel.select_span(anchor, token)

    def _on_TwoHandGrab(self, event: TwoHandGrab) -> None:
        """Both hands pinching: the selected panel follows the hands' centre and scales with their distance
        (the text scales with it, so its layout stays as it was)."""
        if event.phase == "start":
            panel = self.selected()
            self._grab = _Grab(panel, panel.position, panel.width, panel.height, panel.em,
                                event.x, event.y) if panel else None
            return
        grab = self._grab
        if grab is None:
            return
        if event.phase == "end":
            self._grab = None
            return
        panel = grab.panel
        scale = min(max(event.scale, MIN_PANEL_WIDTH / grab.width), MAX_PANEL_WIDTH / grab.width)
        right = panel.model_matrix()[:3, 0] / panel.em
        up = -panel.model_matrix()[:3, 1] / panel.em
        shift = (event.x - grab.x) * grab.width * right - (event.y - grab.y) * grab.height * up
        panel.position = tuple(float(v) for v in np.array(grab.position) + shift)
        panel.width, panel.height, panel.em = grab.width * scale, grab.height * scale, grab.em * scale  # text scales
        panel.touch()

    def _on_OpenPalm(self, event: OpenPalm) -> None:
        if self.selected() is not None:
            self.command("cancel")

    # --- text -------------------------------------------------------------------------------------------------

    def _on_KeyPress(self, event: KeyPress) -> None:
        if event.key == "backspace":
            self.typed = self.typed[:-1]
        elif event.key == "enter":
            self.submit()
        elif event.key not in ("shift", "layout"):
            self.typed += event.key

    def _on_Letter(self, event: Letter) -> None:
        self._on_KeyPress(KeyPress({"\b": "backspace", "\n": "enter"}.get(event.char, event.char), event.t))

    def _on_Utterance(self, event: Utterance) -> None:
        self.listening = "" if event.final else event.text
        if event.final and event.text:
            self.typed = (self.typed + " " + event.text).strip()

    def _on_InputUnavailable(self, event: InputUnavailable) -> None:
        self.tell(f"{event.source}: {event.message}")

    def submit(self) -> None:
        """Enter: typed text replaces the selection if there is one, else it is the prompt for the selected panel
        (for a new panel when the selected one is still condensing)."""
        text, panel = self.typed, self.selected()
        if panel is not None and panel.selection is not None:
            self.editor.replace(panel, text)
        else:
            if panel is None or self.editor.app.busy(panel):  # a busy panel keeps condensing: use a new one
                panel = self.new_panel()
            self.editor.generate(panel, text)
        self.typed = ""

    def new_panel(self) -> Panel:
        count = sum(1 for p in self.scene.panels if p.persist)
        panel = Panel(f"panel-{count + 1}")
        (position, yaw), = arc_placement(1)
        panel.position = (position[0] + 1.2 * count, position[1], position[2]) if count else position
        panel.yaw = yaw
        self.scene.add(panel)
        self.select(panel)
        return panel

    # --- voice ------------------------------------------------------------------------------------------------

    def _on_VoiceCommand(self, event: VoiceCommand) -> None:
        self.listening = ""
        self.command(event.name, event.argument)

    def _on_Command(self, event: Command) -> None:
        self.command(event.name, event.argument)

    def command(self, name: str, argument: str = "") -> None:
        """One editing command on the selected panel (shortcuts, buttons and voice all end here)."""
        panel = self.selected()
        if name == "new_panel":
            self.new_panel()
        elif name == "next_chapter":
            self._select_next()
        elif name == "generate":
            self.typed = argument or self.typed
            self.submit()
        elif name in ("keyword", "length", "style"):
            self._control(name, argument)
        elif panel is None:
            raise EditRefused(f"“{name}” needs a panel: pinch or click one first")
        elif name in ("undo", "redo"):
            if not getattr(self.editor, name)(panel):
                self.tell(f"nothing to {name}")
        elif name == "save":
            self.editor.save(panel, argument or None)
        elif name == "cancel":
            if not self.editor.cancel(panel) and panel.selection is not None:
                panel.selection = None
                panel.touch()
        elif name in ("rewrite", "delete", "regenerate"):
            getattr(self.editor, name)(panel)
        else:
            raise EditRefused(f"unknown command {name!r}")

    def _control(self, name: str, argument: str) -> None:
        """A control for the prompt being composed, written as its mark in the prompt line."""
        try:
            if name == "keyword":
                self.typed = with_keyword(self.typed, argument)
            elif name == "style":
                self.typed = with_style(self.typed, spoken_style(argument))
            else:
                self.typed = with_length(self.typed, spoken_length(argument))
        except ValueError as err:
            raise EditRefused(str(err)) from None

    def _select_next(self) -> None:
        panels = [p for p in self.scene.panels if p.persist]
        if panels:
            current = self.selected()
            index = panels.index(current) + 1 if current in panels else 0
            self.select(panels[index % len(panels)])
