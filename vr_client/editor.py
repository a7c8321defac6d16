"""Editing actions on panels: generate, rewrite a span, delete, replace, undo, redo, cancel, save.

Inputs (pinch, voice, keyboard, mouse) end up here as method calls; the editor turns them into requests
through the client app and records a revision in the panel's history when a request ends. Rewriting sends
the selected span as character offsets: only that span dissolves into noise and re-condenses, the rest stays
byte-identical. Delete and replace are done on the client (no model needed) and are revisions like any other.
A cancelled request puts back the revision the panel showed before it, so cancelling never loses text.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from msgspec.structs import replace

from airquill.shared.book import write_atomic
from airquill.shared.protocol import Controls, EditSpan, Sampling
from airquill.vr_client.app import ClientApp, RequestEnded
from airquill.vr_client.document import PanelHistory, Revision, char_span, show
from airquill.vr_client.prompt_controls import describe, parse_prompt
from airquill.vr_client.scene import Panel, Scene


@dataclass(frozen=True)
class DocumentFile:
    """The file a panel belongs to (a book chapter): `save` writes `header` + the text back to `path`."""

    path: Path
    header: str = ""


class EditRefused(ValueError):
    """An action that cannot apply now (no selection, panel busy, nothing to undo); the message says why."""


@dataclass(frozen=True)
class EditorConfig:
    length: int = 64  # tokens a new panel generates
    sampling: Sampling = Sampling(steps=32)
    output: Path = Path("book/output")  # where `save` writes panels


class Editor:
    def __init__(self, scene: Scene, app: ClientApp, config: EditorConfig = EditorConfig()):
        self.scene, self.app, self.config = scene, app, config
        self.histories: dict[str, PanelHistory] = {}
        self.saved: dict[Path, str] = {}  # files this editor wrote -> sha256 of what it wrote
        self.revision_count = 0  # bumps on every recorded revision (the autosave watches it)
        self.messages: list[str] = []  # what the user should be told (shown on a status line)
        self.documents: dict[str, DocumentFile] = {}  # panel id -> its file, for panels opened from files
        self.listeners: list = []  # called as f(panel, RequestEnded) after a request's revision is recorded
        app.on_end = self._ended

    def history(self, panel: Panel) -> PanelHistory:
        return self.histories.setdefault(panel.panel_id, PanelHistory())

    # --- requests -------------------------------------------------------------------------------------------

    def generate(self, panel: Panel, prompt: str, *, length: int | None = None, seed: int | None = None,
                 controls: Controls | None = None) -> None:
        """Generate into `panel`. Control marks in the prompt (`+keyword`, `=60` words, `?question`, see
        `prompt_controls`) become the request's controls."""
        try:
            prompt, marked = parse_prompt(prompt)
        except ValueError as err:
            raise EditRefused(str(err)) from None
        controls = marked or controls
        if not prompt.strip():
            raise EditRefused("say or type a prompt first")
        self._ready(panel)
        sampling = replace(self.config.sampling, seed=seed) if seed is not None else self.config.sampling
        panel.title = " ".join(filter(None, (prompt, describe(controls))))
        panel.selection = panel.cursor = None
        self.app.generate(panel, prompt, length or self.config.length, sampling, controls=controls)

    def regenerate(self, panel: Panel) -> None:
        """The panel's prompt again, with the controls it was asked for."""
        self.generate(panel, panel.prompt, length=max(1, len(panel.text.cells)) if panel.text.cells else None,
                      controls=panel.controls)

    def rewrite(self, panel: Panel, *, seed: int | None = None) -> tuple[int, int]:
        """Regenerate the selected tokens in place; returns the span's character offsets."""
        self._ready(panel)
        start, end = self._selected_chars(panel)
        sampling = replace(self.config.sampling, seed=seed) if seed is not None else self.config.sampling
        new_length = panel.selection[1] - panel.selection[0]
        self.app.edit(panel, [EditSpan(start=start, end=end, new_length=new_length)], sampling)
        return start, end

    def cancel(self, panel: Panel) -> bool:
        return self.app.cancel(panel)

    # --- edits on the client --------------------------------------------------------------------------------

    def delete(self, panel: Panel) -> None:
        self.replace(panel, "", action="delete")

    def replace(self, panel: Panel, text: str, *, action: str = "replace") -> None:
        """Put typed or dictated text in place of the selection (or at the cursor)."""
        self._ready(panel)
        if panel.selection is not None:
            start, end = panel.selection
        elif panel.cursor is not None:
            start = end = panel.cursor
        else:
            raise EditRefused("select a span (pinch and drag) or place the cursor first")
        cells = panel.text.cells
        inserted = [(-1, text)] if text else []
        show(panel.text, [(c.token_id, c.text) for c in cells[:start]] + inserted
             + [(c.token_id, c.text) for c in cells[end:]])
        panel.selection, panel.cursor = None, start + len(inserted)
        self._record(panel, action)

    def undo(self, panel: Panel) -> bool:
        return self._restore(panel, self.history(panel).undo())

    def redo(self, panel: Panel) -> bool:
        return self._restore(panel, self.history(panel).redo())

    def _restore(self, panel: Panel, revision: Revision | None) -> bool:
        if revision is None:
            return False
        self._ready(panel)
        show(panel.text, revision.tokens)
        panel.prompt = revision.prompt or panel.prompt
        panel.selection = panel.cursor = None
        panel.touch()
        self.revision_count += 1
        return True

    # --- saving ---------------------------------------------------------------------------------------------

    def save(self, panel: Panel, name: str | None = None) -> Path:
        """Write the panel to `<output>/<name>.md` (or back to its own file, header kept) atomically. A file
        this editor did not write or read (or that changed since) is never overwritten: the text goes to
        `<name>-2.md` (-3, …) instead, and the message says so."""
        text = panel.text.text
        if not text.strip():
            raise EditRefused("the panel is empty: nothing to save")
        document = self.documents.get(panel.panel_id) if name is None else None
        if document is not None:
            folder, stem, body = document.path.parent, document.path.stem, document.header + text.strip() + "\n"
        else:
            folder, stem = self.config.output, _slug(name or panel.title or panel.panel_id)
            body = text.rstrip("\n") + "\n"
        path, n = folder / f"{stem}.md", 1
        while path.exists() and not self._ours(path, body):
            n += 1
            path = folder / f"{stem}-{n}.md"
        write_atomic(path, body)
        self.remember(path, body)
        self.messages.append(f"saved {path}" + (f" ({stem}.md holds other text)" if n > 1 else ""))
        return path

    def remember(self, path: Path, body: str) -> None:
        """`path` holds `body` as this editor knows it (written or read here): saving may replace it."""
        self.saved[path] = hashlib.sha256(body.encode()).hexdigest()

    def _ours(self, path: Path, body: str) -> bool:
        """May `path` be overwritten? Yes if it already holds this text, or holds exactly what we last wrote."""
        current = hashlib.sha256(path.read_bytes()).hexdigest()
        return current == hashlib.sha256(body.encode()).hexdigest() or self.saved.get(path) == current

    # --- bookkeeping ----------------------------------------------------------------------------------------

    def _ready(self, panel: Panel) -> None:
        if self.app.busy(panel):
            raise EditRefused(f"{panel.title or panel.panel_id} is still condensing; wait or cancel it")

    def _selected_chars(self, panel: Panel) -> tuple[int, int]:
        if panel.selection is None or panel.selection[0] == panel.selection[1]:
            raise EditRefused("select a span first (pinch and drag across the text)")
        return char_span(panel.text, panel.selection)

    def _record(self, panel: Panel, action: str) -> None:
        self.history(panel).record(Revision.of(panel.text, action, panel.prompt))
        self.revision_count += 1
        panel.touch()

    def _ended(self, panel: Panel, event: RequestEnded) -> None:
        if event.done is not None and event.done.finish != "cancelled":
            self._record(panel, event.action)
            for listener in self.listeners:
                listener(panel, event)
            return
        current = self.history(panel).current
        if current is not None:  # cancelled or failed: the panel shows its last revision again
            show(panel.text, current.tokens)
        if event.error:
            self.messages.append(f"{panel.panel_id}: {event.error}")


def _slug(name: str) -> str:
    slug = re.sub(r"[^\w\-]+", "-", name.strip().lower(), flags=re.UNICODE).strip("-")
    return slug[:60] or "panel"
