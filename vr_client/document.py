"""A panel's document: the revisions of its text, with undo and redo over the whole history.

A revision stores the panel's tokens as (token id, display string) pairs — exactly what the panel showed when
the revision was made — so undo restores the text byte for byte without a tokenizer on the client. Revisions
are recorded when a request ends (generate, rewrite, delete, replace) and never change afterwards; undoing and
then making a new edit drops the undone branch, as editors do.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from airquill.shared.text_state import Cell, TextState


@dataclass(frozen=True)
class Revision:
    tokens: tuple[tuple[int, str], ...]  # (token id, display string); id -1 where the client typed the text
    action: str  # generate | rewrite | delete | replace | regenerate | typed | opened
    prompt: str = ""

    @property
    def text(self) -> str:
        return "".join(text for _, text in self.tokens)

    @classmethod
    def of(cls, state: TextState, action: str, prompt: str = "") -> Revision:
        return cls(tuple((cell.token_id, cell.text) for cell in state.cells), action, prompt)

    def to_json(self) -> dict:
        return {"tokens": [list(t) for t in self.tokens], "action": self.action, "prompt": self.prompt}

    @classmethod
    def from_json(cls, data: dict) -> Revision:
        return cls(tuple((int(i), str(s)) for i, s in data["tokens"]), str(data["action"]), str(data.get("prompt", "")))


@dataclass
class PanelHistory:
    revisions: list[Revision] = field(default_factory=list)
    index: int = -1  # the revision the panel shows; -1 before the first

    @property
    def current(self) -> Revision | None:
        return self.revisions[self.index] if self.index >= 0 else None

    def record(self, revision: Revision) -> None:
        """A new revision after the current one (an undone branch is dropped)."""
        del self.revisions[self.index + 1 :]
        self.revisions.append(revision)
        self.index = len(self.revisions) - 1

    @property
    def can_undo(self) -> bool:
        return self.index > 0

    @property
    def can_redo(self) -> bool:
        return self.index < len(self.revisions) - 1

    def undo(self) -> Revision | None:
        """Step back one revision (the first revision is the floor: a panel never goes blank by undo)."""
        if not self.can_undo:
            return None
        self.index -= 1
        return self.revisions[self.index]

    def redo(self) -> Revision | None:
        if not self.can_redo:
            return None
        self.index += 1
        return self.revisions[self.index]

    def to_json(self) -> dict:
        return {"index": self.index, "revisions": [r.to_json() for r in self.revisions]}

    @classmethod
    def from_json(cls, data: dict) -> PanelHistory:
        revisions = [Revision.from_json(r) for r in data.get("revisions", [])]
        index = int(data.get("index", len(revisions) - 1))
        if not -1 <= index < len(revisions) or (revisions and index < 0):
            raise ValueError(f"history index {index} does not fit {len(revisions)} revisions")
        return cls(revisions, index)


def show(state: TextState, tokens: Sequence[tuple[int, str]]) -> None:
    """Make a panel's text state show these tokens, settled (undo, redo, reopening a session)."""
    state.cells = [Cell(token_id=i, text=s, confidence=1.0, noise=0.0) for i, s in tokens]
    state.settled = len(state.cells)
    state.finished = True
    state.changed.update(range(len(state.cells) + 1))


def char_span(state: TextState, token_span: tuple[int, int]) -> tuple[int, int]:
    """Character offsets in the panel's text of the tokens [start, end) (what the server's edit takes)."""
    start, end = token_span
    if not 0 <= start <= end <= len(state.cells):
        raise ValueError(f"token span {token_span} lies outside the panel's {len(state.cells)} tokens")
    before = sum(len(cell.text) for cell in state.cells[:start])
    return before, before + sum(len(cell.text) for cell in state.cells[start:end])
