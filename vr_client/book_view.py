"""The book view: up to 100 chapter panels on a shelf around the reader, all condensing at once; picking one
brings it to reading distance in front of the reader."""
from __future__ import annotations

import math

from airquill.shared.book import chapter_markdown, pending_chapters, split_front_matter, write_atomic
from airquill.vr_client.document import Revision, show
from airquill.vr_client.editor import DocumentFile
from airquill.vr_client.scene import EYE_HEIGHT, READING_DISTANCE, Panel, Scene

SHELF_RADIUS = 2.6  # metres: the shelf stands a little behind reading distance
PANEL_WIDTH, PANEL_HEIGHT = 0.42, 0.3
MAX_PANELS = 100


def shelf_placement(count: int, *, per_row: int = 20, arc_deg: float = 300.0,
                    row_gap: float = 0.36) -> list[tuple[tuple[float, float, float], float]]:
    """Panels in rows on a cylinder around the reader (facing inwards), rows centred on eye height."""
    if not 0 < count <= MAX_PANELS:
        raise ValueError(f"the book view shows 1 to {MAX_PANELS} chapters, got {count}")
    rows = math.ceil(count / per_row)
    out = []
    for index in range(count):
        row, col = divmod(index, per_row)
        in_row = min(per_row, count - row * per_row)
        step = arc_deg / per_row
        angle = math.radians(-step * (in_row - 1) / 2 + step * col)
        height = EYE_HEIGHT + (rows - 1) / 2 * row_gap - row * row_gap
        out.append(((SHELF_RADIUS * math.sin(angle), height, -SHELF_RADIUS * math.cos(angle)), -angle))
    return out


def book_scene(titles: list[str]) -> Scene:
    scene = Scene()
    for i, (title, (position, yaw)) in enumerate(zip(titles, shelf_placement(len(titles)))):
        scene.add(Panel(f"chapter-{i + 1}", title=title, position=position, yaw=yaw, width=PANEL_WIDTH,
                        height=PANEL_HEIGHT, em=0.016))
    return scene


def open_chapter(scene: Scene, panel: Panel, *, facing_yaw: float = 0.0) -> None:
    """Bring a chapter to reading distance in the direction the reader faces, larger; the others stay."""
    panel.position = (READING_DISTANCE * -math.sin(facing_yaw), EYE_HEIGHT, -READING_DISTANCE * math.cos(facing_yaw))
    panel.yaw, panel.width, panel.height, panel.em = facing_yaw, 1.1, 0.7, 0.032
    for other in scene.panels:
        if other.selected != (other is panel):
            other.selected = other is panel
            other.touch()
    panel.touch()


class BookRun:
    """A book condensing live in the book view: pending chapters are generated through the client app (at most
    `parallel` in flight, the server batches them), each written to `book/output/chapter-NNN.md` atomically as
    it finishes, with the same front matter as `airquill book generate`. Finished chapters are shown from their
    files. Picking a chapter (pinch, click, "next chapter") brings it to reading distance for editing; `save`
    writes it back to its chapter file, front matter kept, and never over a file changed by someone else."""

    def __init__(self, workspace, book, outline, *, parallel: int, length: int, seed: int = 0,
                 limit: int | None = None):
        self.workspace, self.book, self.parallel, self.length, self.seed = workspace, book, parallel, length, seed
        chapters = outline.chapters[:limit] if limit else outline.chapters
        self.chapters = {f"chapter-{c.number}": c for c in chapters}
        self.todo = pending_chapters(book, outline, limit)
        self.in_flight: set[str] = set()
        self.written = 0
        self.opened: tuple[Panel, tuple] | None = None  # the chapter at reading distance and its shelf place
        editor = workspace.editor
        editor.listeners.append(self._chapter_done)
        workspace.controller.select(None)  # the shelf starts closed: a chapter opens when the reader picks it
        for panel_id, chapter in self.chapters.items():
            path = book.chapter_path(chapter.number)
            if path.exists():
                self._show_file(workspace.scene.panel(panel_id), path)

    def _show_file(self, panel: Panel, path) -> None:
        markdown = path.read_text(encoding="utf-8")
        header, body = split_front_matter(markdown)
        editor = self.workspace.editor
        editor.documents[panel.panel_id] = DocumentFile(path, header)
        editor.remember(path, markdown)
        history = editor.history(panel)
        if history.current is None:  # a session's history wins over the file's text
            show(panel.text, [(-1, body.strip())])
            history.record(Revision.of(panel.text, "opened", panel.title))
        panel.touch()

    @property
    def done(self) -> bool:
        return not self.todo and not self.in_flight

    def tick(self) -> None:
        """Start chapters while fewer than `parallel` are in flight; open a newly picked chapter."""
        while self.todo and len(self.in_flight) < self.parallel:
            chapter = self.todo.pop(0)
            panel = self.workspace.scene.panel(f"chapter-{chapter.number}")
            self.in_flight.add(panel.panel_id)
            self.workspace.editor.generate(panel, chapter.entry, length=self.length, seed=self.seed + chapter.number)
        picked = self.workspace.controller.selected()
        if picked is not None and picked.panel_id in self.chapters and (self.opened is None or self.opened[0] is not picked):
            self._open(picked)

    def _open(self, panel: Panel) -> None:
        if self.opened is not None:
            previous, (position, yaw, width, height, em) = self.opened
            previous.position, previous.yaw, previous.width, previous.height, previous.em = position, yaw, width, height, em
            previous.touch()
        self.opened = (panel, (panel.position, panel.yaw, panel.width, panel.height, panel.em))
        open_chapter(self.workspace.scene, panel)

    def _chapter_done(self, panel: Panel, event) -> None:
        if panel.panel_id not in self.in_flight or event.action != "generate":
            return
        self.in_flight.discard(panel.panel_id)
        chapter = self.chapters[panel.panel_id]
        done = event.done
        meta = {"model": self.workspace.app.model, "seed": self.seed + chapter.number, "steps": done.stats.steps,
                "ms": done.stats.ms, "tokens": done.stats.tokens, "server": self.workspace.app.url}
        path = self.book.chapter_path(chapter.number)
        markdown = chapter_markdown(chapter, done.text, meta)
        write_atomic(path, markdown)
        self.written += 1
        self.workspace.editor.documents[panel.panel_id] = DocumentFile(path, split_front_matter(markdown)[0])
        self.workspace.editor.remember(path, markdown)
