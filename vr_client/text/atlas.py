"""A signed-distance-field glyph atlas built at run time from the shipped TTF (freetype).

Each glyph is rasterised large, and its distance field is sampled into a small cell, so text stays sharp at
any distance and angle. Glyphs are added on demand, for any character the font has; a character it lacks
gets a visible fallback box. The atlas is plain numpy: the renderer uploads the texels that changed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import freetype
import numpy as np

from airquill.assets import ROOT

FONT = ROOT / "fonts" / "DejaVuSans.ttf"
FALLBACK = "\u25a1"  # WHITE SQUARE, drawn for characters the font lacks


@dataclass(frozen=True)
class Glyph:
    char: str
    uv: tuple[float, float, float, float]  # u0, v0, u1, v1 in the atlas texture
    size: tuple[float, float]  # quad size in em
    offset: tuple[float, float]  # quad's top-left relative to the pen position on the baseline, in em (y up)
    advance: float  # in em
    fallback: bool = False


class GlyphAtlas:
    def __init__(self, font: Path = FONT, *, cell: int = 48, spread: int = 6, oversample: int = 4,
                 texture_size: int = 1024):
        self.face = freetype.Face(str(font))
        self.cell, self.spread, self.oversample = cell, spread, oversample
        self.em_px = cell - 2 * spread  # the em square inside a cell, in SDF texels
        self.face.set_pixel_sizes(0, self.em_px * oversample)
        self.size = texture_size
        self.per_row = texture_size // cell
        self.texels = np.zeros((texture_size, texture_size), dtype=np.uint8)
        self.glyphs: dict[str, Glyph] = {}
        self.dirty: list[tuple[int, int]] = []  # cells written since the renderer last uploaded
        self.ascender = self.face.size.ascender / 64 / (self.em_px * oversample)
        self.line_height = self.face.size.height / 64 / (self.em_px * oversample)
        self.solid = self._solid()
        self.get(FALLBACK)
        self.get(" ")

    def _solid(self) -> tuple[float, float, float, float]:
        """A cell that is inside everywhere: uv of its centre, for panels, highlights and cursors."""
        self.texels[: self.cell, : self.cell] = 255
        self.glyphs["\0solid"] = Glyph("", (0, 0, 0, 0), (0, 0), (0, 0), 0)
        self.dirty.append((0, 0))
        c = self.cell / 2 / self.size
        return (c, c, c, c)

    def has(self, char: str) -> bool:
        return self.face.get_char_index(char) != 0

    def get(self, char: str) -> Glyph:
        glyph = self.glyphs.get(char)
        if glyph is None:
            glyph = self.glyphs[char] = self._add(char)
        return glyph

    def _add(self, char: str) -> Glyph:
        if not self.has(char) and char != FALLBACK:
            box = self.get(FALLBACK)
            return Glyph(char, box.uv, box.size, box.offset, box.advance, fallback=True)
        index = len(self.glyphs)
        if index >= self.per_row * self.per_row:
            raise RuntimeError("glyph atlas is full")
        self.face.load_char(char, freetype.FT_LOAD_RENDER | freetype.FT_LOAD_TARGET_NORMAL)
        slot = self.face.glyph
        scale = self.em_px * self.oversample
        bitmap = np.array(slot.bitmap.buffer, dtype=np.uint8).reshape(slot.bitmap.rows, slot.bitmap.width)
        field = sdf(bitmap, cell=self.cell, spread=self.spread, oversample=self.oversample)
        row, col = divmod(index, self.per_row)
        self.texels[row * self.cell : (row + 1) * self.cell, col * self.cell : (col + 1) * self.cell] = field
        self.dirty.append((row, col))
        u0, v0 = col * self.cell / self.size, row * self.cell / self.size
        uv = (u0, v0, u0 + self.cell / self.size, v0 + self.cell / self.size)
        em = self.cell / self.em_px  # a cell spans this many em
        pad = self.spread / self.em_px
        # the bitmap is centred in its cell; place the cell so the bitmap lands at the glyph's bearing
        bw, bh = bitmap.shape[1] / scale, bitmap.shape[0] / scale
        left, top = slot.bitmap_left / scale, slot.bitmap_top / scale
        inner = (em - 2 * pad)
        offset = (left - pad - (inner - bw) / 2, top + pad + (inner - bh) / 2)
        return Glyph(char, uv, (em, em), offset, slot.advance.x / 64 / scale)


def sdf(bitmap: np.ndarray, *, cell: int, spread: int, oversample: int) -> np.ndarray:
    """Distance field of a coverage bitmap, sampled into a `cell` x `cell` texel square (bitmap centred).

    128 means on the outline; each texel of distance inward adds 128/spread, outward subtracts it.
    """
    out = np.zeros((cell, cell), dtype=np.uint8)
    if bitmap.size == 0 or bitmap.max() < 128:
        return out
    inner = (cell - 2 * spread) * oversample
    canvas = np.zeros((cell * oversample, cell * oversample), dtype=bool)
    h, w = min(bitmap.shape[0], inner), min(bitmap.shape[1], inner)
    y0 = spread * oversample + (inner - h) // 2
    x0 = spread * oversample + (inner - w) // 2
    canvas[y0 : y0 + h, x0 : x0 + w] = bitmap[:h, :w] >= 128
    # edge pixels: inside pixels with an outside 4-neighbour
    padded = np.pad(canvas, 1)
    edge = canvas & ~(padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:])
    ey, ex = np.nonzero(edge)
    centers = (np.arange(cell) + 0.5) * oversample - 0.5
    cy, cx = np.meshgrid(centers, centers, indexing="ij")
    best = np.full(cy.shape, np.inf)
    for start in range(0, len(ey), 2048):  # bounded memory for large glyphs
        dy = cy[..., None] - ey[start : start + 2048]
        dx = cx[..., None] - ex[start : start + 2048]
        best = np.minimum(best, np.sqrt(dy * dy + dx * dx).min(axis=-1))
    inside = canvas[np.clip(np.round(cy).astype(int), 0, canvas.shape[0] - 1),
                    np.clip(np.round(cx).astype(int), 0, canvas.shape[1] - 1)]
    signed = np.where(inside, best, -best) / oversample  # in cell texels
    return np.clip(128 + signed * (127 / spread), 0, 255).astype(np.uint8)
