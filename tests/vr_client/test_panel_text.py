"""The incremental panel layout gives exactly what a layout from scratch gives, after any sequence of steps."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from airquill.shared.step import Step, TokenChange
from airquill.shared.text_state import Cell, TextState, noise_width
from airquill.vr_client.render.panel_text import RANDOM_TOKEN, SOFT_FILL, PanelText, _glyphs
from airquill.vr_client.text.atlas import GlyphAtlas

WORDS = [" and", " the", "LORD", " said", "un", "to", " Moses", ".", "\n", " Привет", " light", "ing", " "]


@pytest.fixture(scope="module")
def atlas():
    return GlyphAtlas()


change = st.tuples(st.integers(0, 39), st.sampled_from(WORDS), st.booleans())


@settings(max_examples=120, deadline=None, derandomize=True)
@given(length=st.integers(1, 40), steps=st.lists(st.lists(change, max_size=6), max_size=12),
       shrink=st.one_of(st.none(), st.integers(1, 40)), width=st.sampled_from([6.0, 12.0, 30.0]))
def test_incremental_layout_stays_consistent(atlas, length, steps, shrink, width):
    """After any sequence of steps: every token shows its own glyphs, tokens stay in reading order, no line
    overflows (but for a word wider than the panel), and the rows agree with the recorded positions."""
    state = TextState()
    state.apply(Step(0, 1, length, tuple(TokenChange(i, 1, "", 0.0, 1.0) for i in range(length))))
    text = PanelText(atlas, width, top=0.0)
    text.update(state.cells, state.take_changes(), 0.0, animate=False)
    for n, changes in enumerate(steps):
        valid = tuple(TokenChange(p, 5, w if settled else "", 0.9, 0.0 if settled else 1.0)
                      for p, w, settled in changes if p < length)
        state.apply(Step(n + 1, 1, length, valid))
        text.update(state.cells, state.take_changes(), 0.1 * n, animate=True)
    if shrink is not None and shrink < length:
        state.apply(Step(99, 1, shrink, ()))
        text.update(state.cells, state.take_changes(), 5.0, animate=True)
    cells = state.cells
    assert len(text.starts) == len(text.slots) == len(cells)
    order = [(line, x) for x, line in text.starts]
    assert order == sorted(order)
    for k, cell in enumerate(cells):
        expected = [c for c, _ in _glyphs(cell, atlas, k) if c not in (" ", "\n")]
        rows = text.token_rows(k)
        assert len(rows) == len(expected)
        x, line = text.starts[k]
        if rows.size and "\n" not in cell.text:
            assert abs(rows[0][2] - x) < 1e-4 or cell.text.startswith(" ")  # first glyph at the token's start
        end_x, _ = text.ends[k]
        ink = sum(a for c, a in _glyphs(cell, atlas, k) if c not in (" ", "\n"))
        assert x == 0.0 or end_x - (end_x - x - ink) <= width + 1e-6 or ink > width
    used = {r for first, capacity, _ in text.slots for r in range(first, first + capacity)}
    assert not text.rows[[r for r in range(text.used) if r not in used]].any()  # freed rows are empty


def test_first_layout_wraps_greedily(atlas):
    state = TextState()
    words = [" alpha"] * 12
    state.apply(Step(1, 1, len(words), tuple(TokenChange(i, 5, w, 1.0, 0.0) for i, w in enumerate(words))))
    text = PanelText(atlas, 10.0, top=0.0)
    text.update(state.cells, state.take_changes(), 0.0, animate=False)
    advance = sum(atlas.get(c).advance for c in " alpha")
    lines = [line for _, line in text.starts]
    assert max(lines) >= 1
    for k in range(1, len(words)):  # a line breaks only where the next word would not fit in its first fill
        if text.starts[k][1] > text.starts[k - 1][1]:
            assert text.ends[k - 1][0] + advance - atlas.get(" ").advance > 10.0 * SOFT_FILL - 1e-6


def test_a_change_re_lays_only_its_line(atlas):
    state = TextState()
    n = 400
    state.apply(Step(0, 1, n, tuple(TokenChange(i, 1, "", 0.0, 1.0) for i in range(n))))
    text = PanelText(atlas, 30.0, top=0.0)
    text.update(state.cells, state.take_changes(), 0.0, animate=False)
    text.take_dirty()
    for position in (3, 150, 390):  # committing a token changes its width: its line re-wraps, the rest stays
        before = list(text.starts)
        state.apply(Step(1, 1, n, (TokenChange(position, 2, " light", 0.9, 0.0),)))
        text.update(state.cells, state.take_changes(), 0.1, animate=True)
        rewritten = sum(b - a for a, b in text.take_dirty())
        assert 0 < rewritten < 0.1 * text.used
        moved = [k for k in range(n) if text.starts[k] != before[k]]
        assert all(abs(k - position) < 40 for k in moved)


def test_a_step_near_the_end_redoes_only_the_end(atlas):  # noqa: D103
    state = TextState()
    n = 400
    state.apply(Step(0, 1, n, tuple(TokenChange(i, 1, " word", 0.9, 0.0) for i in range(n - 10))
                     + tuple(TokenChange(i, 1, "", 0.0, 1.0) for i in range(n - 10, n))))
    text = PanelText(atlas, 30.0, top=0.0)
    text.update(state.cells, state.take_changes(), 0.0, animate=False)
    text.take_dirty()
    state.apply(Step(1, 1, n, (TokenChange(n - 5, 2, " light", 0.9, 0.0),)))
    text.update(state.cells, state.take_changes(), 0.1, animate=True)
    rewritten = sum(b - a for a, b in text.take_dirty())
    assert 0 < rewritten < 0.1 * text.used  # only the slots of the lines around the change are rewritten


def test_token_at_finds_the_token_under_a_point(atlas):
    state = TextState()
    words = [" In", " the", " beginning", " God"]
    state.apply(Step(1, 1, 4, tuple(TokenChange(i, 5, w, 1.0, 0.0) for i, w in enumerate(words))))
    text = PanelText(atlas, 30.0, top=0.0)
    text.update(state.cells, state.take_changes(), 0.0, animate=False)
    for k in range(4):
        x, y, width = text.token_box(k)
        assert text.token_at(x + width / 2, y - 0.5) == k
    assert text.token_at(1.0, 10 * 1.3) is None  # below the text


def test_a_random_token_takes_the_place_of_its_noise_glyphs(atlas):
    """Uniform noise shows a random token's own letters in exactly the room mask noise takes: the layout is the
    same whichever random token a position holds, and only the glyphs' kind differs."""
    for position in range(8):
        mask = _glyphs(Cell(text="", noise=1.0), atlas, position)
        for text in (" Lord", "x", "\n", " ", "Привет"):
            shown = _glyphs(Cell(text=text, noise=1.0), atlas, position)
            assert len(shown) == noise_width(position) and [a for _, a in shown] == [a for _, a in mask]
            letters = "".join(c for c, _ in shown)
            if text.strip():  # its own letters, repeated or cut to the width
                assert len(letters) == noise_width(position) and set(letters) <= set(text.strip())
            else:  # nothing visible to show: plain noise glyphs, as for a mask
                assert letters == ""
    panel = PanelText(atlas, width_em=30.0, top=0.0)
    state = TextState()
    state.apply(Step(1, 4, 2, (TokenChange(0, 7, " Lord", 0.0, 1.0), TokenChange(1, 8, "", 0.0, 1.0))))
    panel.update(state.cells, {0, 1}, 0.0, animate=True)
    kinds = {float(row[-1]) for row in panel.token_rows(0)}, {float(row[-1]) for row in panel.token_rows(1)}
    assert kinds == ({RANDOM_TOKEN}, {0.0})
