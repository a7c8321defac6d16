"""What a panel shows: per output position a display string, a noise level and a confidence."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from airquill.shared.step import Step, TokenChange


def noise_width(position: int) -> int:
    """How many noise glyphs a masked position shows: 2–5, fixed per position, so that views keep their
    layout calm while the content flickers."""
    return 2 + (position * 2654435761 >> 7) % 4


def random_token_glyphs(text: str, position: int) -> str:
    """What a position holding a random token (uniform noise) shows: the token's own visible characters, cut or
    repeated to the position's fixed noise width, so random word pieces flicker into words without moving the
    layout. Empty for a mask (no text) or a token of only spaces: such a position shows plain noise glyphs."""
    visible = "".join(c for c in text if not c.isspace() and c.isprintable())
    if not visible:
        return ""
    width = noise_width(position)
    return (visible * width)[:width]


@dataclass(slots=True)
class Cell:
    token_id: int = -1
    text: str = ""
    confidence: float = 0.0
    noise: float = 1.0


@dataclass
class TextState:
    cells: list[Cell] = field(default_factory=list)
    step: int = 0
    total: int = 0
    finished: bool = False
    changed: set[int] = field(default_factory=set)  # positions changed since a view last took them
    settled: int = 0  # positions showing a settled token (noise 0), kept up to date by `apply`

    def take_changes(self) -> set[int]:
        """Positions changed since the last call (a view uses this to redo only what changed)."""
        changed, self.changed = self.changed, set()
        return changed

    def apply(self, step: Step) -> list[int]:
        """Apply one step's changes; return the positions that changed."""
        if step.length != len(self.cells):
            self.changed.add(min(step.length, len(self.cells)))
        if step.length > len(self.cells):
            self.cells.extend(Cell() for _ in range(step.length - len(self.cells)))
        self.settled -= sum(1 for cell in self.cells[step.length :] if cell.noise == 0.0)
        del self.cells[step.length :]
        self.apply_changes(step.changes)
        self.step, self.total, self.finished = step.index, step.total, step.is_final
        return [c.position for c in step.changes]

    def apply_changes(self, changes: Iterable[TokenChange]) -> None:
        for change in changes:
            self.changed.add(change.position)
            cell = self.cells[change.position]
            self.settled += (change.noise == 0.0) - (cell.noise == 0.0)
            cell.token_id, cell.text = change.token_id, change.text
            cell.confidence, cell.noise = change.confidence, change.noise

    @property
    def text(self) -> str:
        return "".join(cell.text for cell in self.cells)
