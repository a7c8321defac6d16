"""A panel's text as instance rows, kept up to date incrementally.

A step changes a few tokens. Layout restarts at the line holding the first changed token and stops as soon
as an unchanged token lands where it was before. Lines keep their breaks (a line is re-wrapped only when it
overflows; words are never pulled up to an earlier line), so a change usually re-lays one line: calm to
watch, and cheap. Each token owns a slot of rows in the instance buffer (unused rows
are empty quads), so a re-laid token rewrites only its own slot; a token that outgrows its slot moves to a new
one at the end. Only the rows of re-laid tokens go to the GPU. Words wrap whole (a word may span several
tokens); a position still showing noise has a fixed width, so the layout stays calm.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from airquill.shared.text_state import Cell, random_token_glyphs
from airquill.vr_client.text.atlas import GlyphAtlas
from airquill.vr_client.text.layout import NOISE_ADVANCE, noise_width

FLOATS = 22  # per instance: from(2) to(2) move_t(1) quad(4) uv(4) color(4) noise conf commit seed(4) solid(1)
RANDOM_TOKEN = -1.0  # the `solid` value of a random token's own glyph (uniform noise): drawn as itself, dimmed
LINE_HEIGHT = 1.3
SOFT_FILL = 0.9  # lines are first filled to this share of the width
MOVE_S = 0.25  # a glyph whose place changes glides there over this many seconds
NEVER = -1e9
TEXT_COLOR = (0.95, 0.96, 1.0, 1.0)
FALLBACK_COLOR = (1.0, 0.45, 0.35, 1.0)


@dataclass
class _Motion:
    to: tuple[float, float]
    from_: tuple[float, float]
    move_t: float
    commit_t: float
    noise: float


def current_position(motion: _Motion, time: float) -> tuple[float, float]:
    m = min(1.0, max(0.0, (time - motion.move_t) / MOVE_S))
    m = m * m * (3 - 2 * m)
    return (motion.from_[0] + (motion.to[0] - motion.from_[0]) * m,
            motion.from_[1] + (motion.to[1] - motion.from_[1]) * m)


def _glyphs(cell: Cell, atlas: GlyphAtlas, position: int) -> list[tuple[str, float]]:
    """(char, advance) of what a position shows: its text; or, while it is noise, a fixed count of glyphs: the
    random token's own characters (uniform noise) or flickering noise glyphs ("", a mask)."""
    if cell.noise >= 1.0:
        shown = random_token_glyphs(cell.text, position)
        return [(c, NOISE_ADVANCE) for c in shown] or [("", NOISE_ADVANCE)] * noise_width(position)
    return [(c, atlas.get(c).advance if c != "\n" else 0.0) for c in cell.text]


def _starts_word(cell: Cell, previous: Cell | None) -> bool:
    if previous is None or cell.noise >= 1.0 or previous.noise >= 1.0:
        return True
    return not cell.text or cell.text[0] in " \n" or not previous.text or previous.text[-1] in " \n"


@dataclass
class PanelText:
    atlas: GlyphAtlas
    width_em: float
    top: float  # em below the panel's text origin where the first line starts
    base: int = 0  # where the text's rows start in the panel's instance buffer
    starts: list[tuple[float, int]] = field(default_factory=list)  # (x, line) where each token begins
    ends: list[tuple[float, int]] = field(default_factory=list)  # (x, line) after each token
    slots: list[tuple[int, int, int]] = field(default_factory=list)  # (first row, capacity, rows used) per token
    rows: np.ndarray = field(default_factory=lambda: np.zeros((256, FLOATS), dtype="f4"))
    used: int = 0  # rows handed out so far (the instance count)
    garbage: int = 0  # rows in abandoned slots
    dirty: list[tuple[int, int]] = field(default_factory=list)  # row ranges to upload
    motion: dict = field(default_factory=dict)  # (position, glyph index) -> _Motion
    lines: int = 0

    def update(self, cells: list[Cell], changed: set[int], time: float, *, animate: bool) -> bool:
        """Redo the rows that `changed` positions affect (recorded in `dirty`); False when nothing changed."""
        old_count = len(self.starts)
        if not changed and old_count == len(cells):
            return False
        first = min(changed) if changed else min(old_count, len(cells))
        first = min(first, old_count, len(cells))
        last_changed = max(changed) if changed else -1
        # restart at the beginning of the line holding the first change
        start = min(first, old_count)
        if 0 < start:
            line_of_first = self.starts[min(start, old_count - 1)][1]
            while start > 0 and self.starts[start - 1][1] >= line_of_first:
                start -= 1
        while 0 < start < len(cells) and not _starts_word(cells[start], cells[start - 1]):
            start -= 1
        x, line = self.starts[start] if start < old_count else (self.ends[start - 1] if start > 0 else (0.0, 0))
        new_starts, new_ends, new_rows = [], [], []
        stop = len(cells)
        i = start
        while i < len(cells):
            if i > last_changed and i < old_count and (x, line) == self.starts[i] and old_count == len(cells):
                stop = i  # everything from here on is where it was: reuse it
                break
            j = i + 1  # the word: tokens that continue it
            while j < len(cells) and not _starts_word(cells[j], cells[j - 1]):
                j += 1
            glyph_runs = [_glyphs(cells[k], self.atlas, k) for k in range(i, j)]
            visible = sum(adv for run in glyph_runs for c, adv in run if c not in (" ", "\n"))
            kept_break = i < old_count and i > 0 and self.starts[i][0] == 0.0 and self.starts[i][1] > 0
            # new text fills lines to SOFT_FILL of the width; the slack absorbs later width changes
            limit = self.width_em if i < old_count else self.width_em * SOFT_FILL
            if x > 0 and (x + visible > limit or kept_break):
                x, line = 0.0, line + 1
            for k, run in zip(range(i, j), glyph_runs):
                for stale in [key for key in ((k, g) for g in range(len(run), len(run) + 8)) if key in self.motion]:
                    del self.motion[stale]
                new_starts.append((x, line))
                token_rows = []
                for g, (char, advance) in enumerate(run):
                    if char == "\n":
                        x, line = 0.0, line + 1
                        continue
                    if char != " ":
                        token_rows.append(self._row(cells[k], k, g, char, (x, (line + 1) * LINE_HEIGHT + self.top),
                                                    time, animate))
                    x += advance
                new_ends.append((x, line))
                new_rows.append(np.array(token_rows, dtype="f4").reshape(-1, FLOATS))
            i = j
        self._store(start, stop, new_starts, new_ends, new_rows, len(cells))
        self.lines = (self.ends[-1][1] + 1) if self.ends else 0
        return True

    def _row(self, cell: Cell, position: int, index: int, char: str, target, time: float, animate: bool) -> list:
        key = (position, index)
        motion = self.motion.get(key)
        if motion is None:
            appears = time if cell.noise < 1 and animate else NEVER
            motion = self.motion[key] = _Motion(target, target, NEVER, appears, cell.noise)
        if motion.to != target:  # glide from wherever it is now
            motion.from_, motion.to, motion.move_t = current_position(motion, time), target, time
        if motion.noise >= 1.0 and cell.noise < 1.0:
            motion.commit_t = time
        motion.noise = cell.noise
        glyph = self.atlas.get(char) if char else self.atlas.get("x")
        color = FALLBACK_COLOR if glyph.fallback else TEXT_COLOR
        seed = float((position * 131 + index * 17) % 9973)
        kind = RANDOM_TOKEN if char and cell.noise >= 1.0 else 0.0
        return [*motion.from_, *motion.to, motion.move_t, *glyph.offset, *glyph.size, *glyph.uv, *color,
                cell.noise, cell.confidence, motion.commit_t, seed, kind]

    def _store(self, start: int, stop: int, starts, ends, rows, count: int) -> None:
        """Put the re-laid tokens [start, stop) in their slots; tokens from `stop` on are untouched."""
        end = len(self.starts) if stop >= count else stop
        self.starts[start:end] = starts
        self.ends[start:end] = ends
        for k, token_rows in zip(range(start, stop), rows):
            self._put(k, token_rows)
        if count < len(self.slots):  # the text got shorter
            for k in range(count, len(self.slots)):
                self._free(k)
            del self.slots[count:]
            for key in [key for key in self.motion if key[0] >= count]:
                del self.motion[key]
        if self.garbage > max(1024, self.used // 2):
            self._compact()

    def _put(self, k: int, token_rows: np.ndarray) -> None:
        n = len(token_rows)
        if k < len(self.slots) and n <= self.slots[k][1]:
            first, capacity, _ = self.slots[k]
        else:
            if k < len(self.slots):
                self._free(k)
            first, capacity = self._allocate(max(n, 6))
            if k < len(self.slots):
                self.slots[k] = (first, capacity, 0)
            else:
                self.slots.append((first, capacity, 0))
        self.rows[first : first + n] = token_rows
        self.rows[first + n : first + capacity] = 0.0  # empty quads
        self.slots[k] = (first, capacity, n)
        self.dirty.append((first, first + capacity))

    def _allocate(self, capacity: int) -> tuple[int, int]:
        if self.used + capacity > len(self.rows):
            grown = np.zeros((max(2 * len(self.rows), self.used + capacity), FLOATS), dtype="f4")
            grown[: self.used] = self.rows[: self.used]
            self.rows = grown
        first = self.used
        self.used += capacity
        return first, capacity

    def _free(self, k: int) -> None:
        first, capacity, _ = self.slots[k]
        self.rows[first : first + capacity] = 0.0
        self.dirty.append((first, first + capacity))
        self.garbage += capacity

    def _compact(self) -> None:
        """Repack the slots when abandoned ones take too much room (rewrites everything, rarely)."""
        old, slots = self.rows, self.slots
        self.rows = np.zeros_like(old)
        self.used = self.garbage = 0
        self.slots = []
        for first, _, n in slots:
            new_first, capacity = self._allocate(max(n, 6))
            self.rows[new_first : new_first + n] = old[first : first + n]
            self.slots.append((new_first, capacity, n))
        self.dirty = [(0, max(self.used, len(old)))]

    def take_dirty(self) -> list[tuple[int, int]]:
        """Row ranges changed since the last call, merged where they touch."""
        merged: list[list[int]] = []
        for a, b in sorted(self.dirty):
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        self.dirty = []
        return [(a, min(b, len(self.rows))) for a, b in merged]

    def token_rows(self, k: int) -> np.ndarray:
        first, _, n = self.slots[k]
        return self.rows[first : first + n]

    def token_at(self, x: float, y: float) -> int | None:
        """The token under a point in em space (nearest on its line), or None off the text."""
        line = int((y - self.top) // LINE_HEIGHT)
        on_line = [k for k, (sx, sl) in enumerate(self.starts) if sl == line]
        if not on_line:
            return None
        for k in on_line:
            if x < self.ends[k][0] or self.ends[k][1] != line:
                return k
        return on_line[-1]

    def token_box(self, position: int) -> tuple[float, float, float] | None:
        """(x, baseline y, width) of a token, for selection highlights and the cursor."""
        if position >= len(self.starts):
            return None
        (x0, line), (x1, line1) = self.starts[position], self.ends[position]
        width = x1 - x0 if line1 == line else self.width_em - x0
        return x0, (line + 1) * LINE_HEIGHT + self.top, width
