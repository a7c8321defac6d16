"""Panel layout: a TextState's tokens become positioned glyphs, word-wrapped to the panel width.

Units are em; x grows right, y grows down from the panel's top-left text origin. Glyphs are keyed by
(position, index within the token's display string) so the renderer can tell a glyph that moved from one
that appeared. A position still showing noise gets `noise_width(position)` noise glyphs; its width is fixed
so the layout stays calm while the text condenses.
"""
from __future__ import annotations

from dataclasses import dataclass

from airquill.shared.text_state import TextState
from airquill.vr_client.text.atlas import GlyphAtlas

NOISE_ADVANCE = 0.55  # em per noise glyph


def noise_width(position: int) -> int:
    """A stable width per masked position (2–5 glyphs)."""
    return 2 + (position * 2654435761 >> 7) % 4


@dataclass(frozen=True, slots=True)
class PlacedGlyph:
    key: tuple[int, int]  # (token position, glyph index within the token)
    char: str  # "" for a noise glyph
    x: float
    y: float  # baseline
    noise: float
    confidence: float


def _words(state: TextState, atlas: GlyphAtlas):
    """Units that wrap together: a run of glyphs up to and including trailing spaces."""
    word: list[tuple[tuple[int, int], str, float, float, float]] = []
    for position, cell in enumerate(state.cells):
        if cell.noise >= 1.0:
            for k in range(noise_width(position)):
                word.append(((position, k), "", NOISE_ADVANCE, cell.noise, cell.confidence))
            yield word, False
            word = []
            continue
        for k, char in enumerate(cell.text):
            if char == "\n":
                yield word, True
                word = []
                continue
            word.append(((position, k), char, atlas.get(char).advance, cell.noise, cell.confidence))
            if char == " ":
                yield word, False
                word = []
    if word:
        yield word, False


def layout(state: TextState, atlas: GlyphAtlas, *, width_em: float, line_height: float = 1.3) -> tuple[list[PlacedGlyph], int]:
    """Glyphs with their positions, and the number of lines used."""
    placed: list[PlacedGlyph] = []
    x, line = 0.0, 0
    for word, newline_after in _words(state, atlas):
        visible = sum(advance for _, char, advance, _, _ in word if char != " ")  # trailing spaces may overhang
        if x > 0 and x + visible > width_em:
            x, line = 0.0, line + 1
        for key, char, advance, noise, confidence in word:
            placed.append(PlacedGlyph(key, char, x, (line + 1) * line_height, noise, confidence))
            x += advance
        if newline_after:
            x, line = 0.0, line + 1
    return placed, line + 1
