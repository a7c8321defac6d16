"""Input events → editing actions, with the real text layout (PanelText with the DejaVu atlas) doing the hit
tests. No server is needed here: these actions are local (selection, keyboard, grab, delete/replace, undo);
requests to a real server are in test_editing.py. The client app is created but never connected."""
from __future__ import annotations

import math
import queue

import numpy as np
import pytest

from airquill.vr_client.app import ClientApp
from airquill.vr_client.controller import Controller
from airquill.vr_client.document import Revision, show
from airquill.vr_client.editor import Editor
from airquill.vr_client.input.events import (InputUnavailable, KeyPress, Letter, OpenPalm, Pinch, PointingRay,
                                             TwoHandGrab, Utterance, VoiceCommand)
from airquill.vr_client.input.keyboard import LAYOUTS, VirtualKeyboard, keyboard_panel
from airquill.vr_client.render.panel_text import PanelText
from airquill.vr_client.scene import Panel, Scene
from airquill.vr_client.text.atlas import GlyphAtlas

WORDS = ["In", " the", " begin", "ning", " God", " created", " the", " heaven", " and", " the", " earth", "."]


@pytest.fixture(scope="module")
def atlas():
    return GlyphAtlas()


@pytest.fixture
def setup(atlas):
    scene = Scene()
    panel = scene.add(Panel("p1", title="Genesis"))
    keyboard = VirtualKeyboard()
    keys = scene.add(keyboard_panel(keyboard))
    editor = Editor(scene, ClientApp("ws://127.0.0.1:9"))  # never started: no request leaves this test
    show(panel.text, [(i, w) for i, w in enumerate(WORDS)])
    editor.history(panel).record(Revision.of(panel.text, "generate", "Genesis"))
    layouts = {}

    def locate(p: Panel, x: float, y: float):
        layout = layouts.get(p.panel_id)
        if layout is None or layout.width_em != p.width_em:
            layout = layouts[p.panel_id] = PanelText(atlas, p.width_em, top=1.4)
            layout.update(p.text.cells, set(range(len(p.text.cells))), 0.0, animate=False)
        return layout.token_at(x, y)

    controller = Controller(editor, locate, keyboard=keyboard, keyboard_panel=keys)
    controller.select(panel)
    return controller, panel, keys, layouts


def point_of(layouts, panel: Panel, token: int) -> tuple[float, float]:
    """Pointer-space (unit square of the panel) coordinates of the middle of a token."""
    layout = layouts[panel.panel_id]
    (x0, line), (x1, _) = layout.starts[token], layout.ends[token]
    return (x0 + x1) / 2 / panel.width_em, (layout.top + (line + 0.5) * 1.3) * panel.em / panel.height


def test_pinch_and_drag_selects_a_span_and_delete_removes_exactly_it(setup):
    controller, panel, _, layouts = setup
    controller.locate(panel, 0, 0)
    a, b = point_of(layouts, panel, 2), point_of(layouts, panel, 5)
    controller.handle(Pinch("start", "right", *a, 0.0))
    for k in range(1, 5):
        controller.handle(Pinch("hold", "right", a[0] + (b[0] - a[0]) * k / 4, a[1] + (b[1] - a[1]) * k / 4, k * 0.03))
    controller.handle(Pinch("end", "right", *b, 0.2))
    assert panel.selection == (2, 6)
    controller.handle(VoiceCommand("delete", "", "en", 0.3))
    assert panel.text.text == "In the the heaven and the earth."
    controller.handle(VoiceCommand("undo", "", "en", 0.4))
    assert panel.text.text == "".join(WORDS)
    controller.handle(VoiceCommand("redo", "", "ru", 0.5))
    assert panel.text.text == "In the the heaven and the earth."


def test_a_pinch_off_the_panel_selects_nothing(setup):
    controller, panel, _, _ = setup
    controller.handle(Pinch("start", "left", 1.5, 0.5, 0.0))
    assert panel.selection is None


def aim_at_key(controller, layouts, keys, key: str, t: float) -> None:
    """A pointing ray from the eye at the middle of a key's cap."""
    token = next(i for i, c in enumerate(keys.text.cells) if controller.keyboard.key_of(keys, i) == key)
    x, y = point_of(layouts, keys, token)
    target = keys.model_matrix() @ np.array([x * keys.width_em, y * keys.height / keys.em, 0.0, 1.0])
    origin = np.array([0.0, 1.6, 0.0])
    direction = target[:3] - origin
    controller.handle(PointingRay("right", tuple(origin), tuple(direction / np.linalg.norm(direction)), t))


def test_keyboard_typing_by_pointing_ray_with_shift_and_layout_switch(setup, atlas):
    controller, panel, keys, layouts = setup
    keyboard = controller.keyboard
    controller.locate(keys, 0, 0)

    def press(key: str, t: float) -> None:  # aim a ray at the key's cap, then pinch
        aim_at_key(controller, layouts, keys, key, t)
        controller.handle(Pinch("start", "right", 0.5, 0.5, t + 0.01))
        controller.handle(Pinch("end", "right", 0.5, 0.5, t + 0.05))

    for i, key in enumerate(["shift", "H", "i", "space", "layout", "м", "и", "р", "backspace", "р"]):
        press(key, i * 0.1)
        layouts.pop(keys.panel_id, None)  # the caps changed (shift, layout): lay them out again
        controller.locate(keys, 0, 0)
    assert controller.typed == "Hi мир"
    assert keyboard.layout == "cyrillic" and not keyboard.shift
    assert panel.selected and not keys.selected  # typing does not steal the selection


def test_keyboard_layouts_and_bad_keys():
    keyboard = VirtualKeyboard()
    assert keyboard.press("shift", 0).key == "shift" and keyboard.rows()[1][0] == "Q"
    assert keyboard.press("Q", 0).key == "Q" and not keyboard.shift  # one-shot
    keyboard.press("layout", 0)
    assert "".join(keyboard.rows()[1]) == LAYOUTS["cyrillic"][1]
    with pytest.raises(ValueError, match="not on the cyrillic keyboard"):
        keyboard.press("q", 0)
    with pytest.raises(ValueError, match="unknown layout"):
        VirtualKeyboard(layout="greek")


def test_typed_text_replaces_the_selection_on_enter(setup):
    controller, panel, _, _ = setup
    panel.selection = (4, 6)
    for char in " Adam":
        controller.handle(Letter(char, 0.9, 0.0))
    controller.handle(Letter("\b", 0.9, 0.1))
    controller.handle(KeyPress("m", 0.2))
    controller.handle(Letter("\n", 0.9, 0.4))
    assert panel.text.text == "In the beginning Adam the heaven and the earth."
    assert controller.typed == "" and [r.action for r in controller.editor.history(panel).revisions][-1] == "replace"


def test_two_hand_grab_moves_and_scales_the_selected_panel(setup):
    controller, panel, _, _ = setup
    x0, y0, z0 = panel.position
    width, em = panel.width, panel.em
    controller.handle(TwoHandGrab("start", 0.5, 0.5, 1.0, 0.0))
    controller.handle(TwoHandGrab("hold", 0.6, 0.5, 1.5, 0.1))
    controller.handle(TwoHandGrab("end", 0.6, 0.5, 1.5, 0.2))
    assert math.isclose(panel.width, width * 1.5) and math.isclose(panel.em, em * 1.5)
    assert math.isclose(panel.position[0], x0 + 0.1 * width) and math.isclose(panel.position[1], y0)
    controller.handle(TwoHandGrab("start", 0.5, 0.5, 1.0, 1.0))
    controller.handle(TwoHandGrab("hold", 0.5, 0.5, 100.0, 1.1))  # clamped
    assert panel.width <= 3.0 + 1e-9


def test_refusals_and_missing_devices_become_messages(setup):
    controller, panel, _, _ = setup
    controller.handle(VoiceCommand("rewrite", "", "en", 0.0))  # nothing selected
    controller.handle(InputUnavailable("hands", "no webcam found"))
    controller.handle(OpenPalm("right", 0.1))
    controller.handle(Utterance("and the", False, 0.2))
    assert controller.listening == "and the"
    controller.handle(Utterance("and the light", True, 0.3))
    assert controller.listening == "" and controller.typed == "and the light"
    assert any("select a span" in m for m in controller.messages)
    assert any("no webcam" in m for m in controller.messages)
    with pytest.raises(TypeError):
        controller.handle(object())


def test_new_panel_and_next_chapter(setup):
    controller, panel, keys, _ = setup
    controller.handle(VoiceCommand("new_panel", "", "en", 0.0))
    second = controller.selected()
    assert second is not panel and second is not keys and len(controller.scene.panels) == 3
    controller.handle(VoiceCommand("next_chapter", "", "ru", 0.1))
    assert controller.selected() is panel
    events = queue.Queue()
    events.put(VoiceCommand("next_chapter", "", "en", 0.2))
    assert controller.drain(events) == 1 and controller.selected() is second


def test_length_slider_pinch_and_drag_sets_the_prompt_lines_length(setup):
    """Pinch a stop of the keyboard's length slider, drag along it, release: the prompt line's `=N` mark follows
    the stop under the hand, and a length set by voice moves the slider (its caps show the stop in brackets)."""
    controller, _, keys, layouts = setup
    controller.typed = "And it came to pass"
    controller.locate(keys, 0, 0)
    aim_at_key(controller, layouts, keys, "length:40", 0.0)
    controller.handle(Pinch("start", "right", 0.5, 0.5, 0.01))
    assert controller.typed == "And it came to pass =40" and "[40]" in keys.text.text
    for i, stop in enumerate(("length:60", "length:100")):  # the caps are the same width: the layout stays
        aim_at_key(controller, layouts, keys, stop, 0.1 * (i + 1))
        controller.handle(Pinch("hold", "right", 0.5, 0.5, 0.1 * (i + 1) + 0.01))
    controller.handle(Pinch("end", "right", 0.5, 0.5, 0.5))
    assert controller.typed == "And it came to pass =100" and "[100]" in keys.text.text
    assert "[40]" not in keys.text.text and controller.keyboard.length_words == 100
    aim_at_key(controller, layouts, keys, "length:60", 0.6)  # a hold after the release drags nothing
    controller.handle(Pinch("hold", "right", 0.5, 0.5, 0.61))
    assert controller.typed == "And it came to pass =100"

    controller.handle(VoiceCommand("length", "twenty words", "en", 0.7))
    assert controller.typed == "And it came to pass =20" and controller.keyboard.length_words == 20
    assert "[20]" in keys.text.text
    controller.handle(VoiceCommand("length", "off", "en", 0.8))
    assert controller.typed == "And it came to pass" and "[off]" in keys.text.text


def test_spoken_controls_build_the_prompt_and_bad_ones_are_told(setup):
    controller, _, _, _ = setup
    controller.typed = "And the king said"
    for name, argument in (("keyword", "Moses"), ("keyword", "burning bush"), ("length", "one hundred and twenty"),
                           ("style", "question"), ("style", "вопроса"), ("length", "сто")):
        controller.handle(VoiceCommand(name, argument, "en", 0.0))
    assert controller.typed == 'And the king said +Moses +"burning bush" ?question =100'
    for name, argument, told in (("length", "many", "number of words"), ("keyword", "", "keyword"),
                                 ("style", "poem", "question")):
        controller.handle(VoiceCommand(name, argument, "en", 0.1))
        assert told in controller.messages[-1], (name, argument, controller.messages[-1])
    assert controller.typed == 'And the king said +Moses +"burning bush" ?question =100'  # nothing lost
