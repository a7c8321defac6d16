"""The incremental panel layout gives exactly what a layout from scratch gives, after any sequence of steps."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from airquill.shared.step import Step, TokenChange
from airquill.shared.text_state import TextState
from airquill.vr_client.render.panel_text import PanelText
from airquill.vr_client.text.atlas import GlyphAtlas

WORDS = [" and", " the", "LORD", " said", "un", "to", " Moses", ".", "\n", " Привет", " light", "ing", " "]


@pytest.fixture(scope="module")
def atlas():
    return GlyphAtlas()


def layout_fields(text: PanelText):
    """What the layout decides per token and glyph: target position, glyph quad and uv, noise."""
    return [[tuple(round(float(v), 4) for v in (*row[2:4], *row[5:13], row[17])) for row in text.token_rows(k)]
            for k in range(len(text.slots))]


change = st.tuples(st.integers(0, 39), st.sampled_from(WORDS), st.booleans())


@settings(max_examples=120, deadline=None, derandomize=True)
@given(length=st.integers(1, 40), steps=st.lists(st.lists(change, max_size=6), max_size=12),
       shrink=st.one_of(st.none(), st.integers(1, 40)), width=st.sampled_from([6.0, 12.0, 30.0]))
def test_incremental_equals_from_scratch(atlas, length, steps, shrink, width):
    state = TextState()
    state.apply(Step(0, 1, length, tuple(TokenChange(i, 1, "", 0.0, 1.0) for i in range(length))))
    incremental = PanelText(atlas, width, top=0.0)
    incremental.update(state.cells, state.take_changes(), 0.0, animate=False)
    for n, changes in enumerate(steps):
        valid = tuple(TokenChange(p, 5, w if settled else "", 0.9, 0.0 if settled else 1.0)
                      for p, w, settled in changes if p < length)
        state.apply(Step(n + 1, 1, length, valid))
        incremental.update(state.cells, state.take_changes(), 0.1 * n, animate=True)
    if shrink is not None and shrink < length:
        state.apply(Step(99, 1, shrink, ()))
        incremental.update(state.cells, state.take_changes(), 5.0, animate=True)
    scratch = PanelText(atlas, width, top=0.0)
    scratch.update(state.cells, set(range(len(state.cells))), 0.0, animate=False)
    assert incremental.starts == scratch.starts and incremental.ends == scratch.ends
    assert layout_fields(incremental) == layout_fields(scratch)
    used = {r for first, capacity, _ in incremental.slots for r in range(first, first + capacity)}
    assert not incremental.rows[[r for r in range(incremental.used) if r not in used]].any()  # freed rows are empty


def test_a_step_near_the_end_redoes_only_the_end(atlas):
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
