"""The book view: 100 chapter panels rendered headless (real Mesa EGL), each visible."""
from __future__ import annotations

import re

import numpy as np
import pytest

from airquill.shared.step import Step, TokenChange
from airquill.vr_client.book_view import book_scene, open_chapter, shelf_placement
from airquill.vr_client.render.math3d import look_at
from airquill.vr_client.scene import EYE_HEIGHT


def test_100_panels_render_and_each_is_visible():
    from airquill.vr_client.hosts.headless import HeadlessHost

    scene = book_scene([f"Chapter {i}" for i in range(1, 101)])
    for i, panel in enumerate(scene.panels):  # all condensing at once: some settled, some noise
        panel.text.apply(Step(1, 2, 8, tuple(TokenChange(k, 5, " word" if (k + i) % 2 else "", 0.9,
                                                         0.0 if (k + i) % 2 else 1.0) for k in range(8))))
        panel.touch()
    host = HeadlessHost((240, 160), fov_y=60.0)
    try:
        eye = (0.0, EYE_HEIGHT, 0.0)
        clear = host.frame(scene, 1.0, view=look_at(eye, (0.0, EYE_HEIGHT + 1.0, -0.001)))[76:84, 116:124]
        assert (clear.astype(int) == clear[0, 0]).all()  # looking up: nothing but the clear colour
        for panel in scene.panels:  # look at each panel in turn: its background and text fill the centre
            image = host.frame(scene, 1.0, view=look_at(eye, panel.position))
            assert host.gl_error() is None
            centre = image[76:84, 116:124].astype(int)
            assert (np.abs(centre - clear[0, 0].astype(int)).max(axis=-1) > 3).mean() > 0.9, \
                f"{panel.panel_id} is not visible"
    finally:
        host.release()


def test_shelf_stays_within_reach_and_limits():
    spots = shelf_placement(100)
    assert len({p for p, _ in spots}) == 100
    for (x, y, z), _ in spots:
        assert 2.0 < (x * x + z * z) ** 0.5 < 3.0 and 0.5 < y < 2.8
    with pytest.raises(ValueError, match="1 to 100"):
        shelf_placement(101)


def test_opening_a_chapter_brings_it_to_reading_distance():
    scene = book_scene(["One", "Two", "Three"])
    panel = scene.panels[2]
    version = panel.version
    open_chapter(scene, panel)
    assert panel.selected and not scene.panels[0].selected and panel.version > version
    assert abs(np.hypot(panel.position[0], panel.position[2]) - 1.75) < 1e-9


def test_book_view_condenses_a_book_live_and_edits_a_chapter_back_into_its_file(tmp_path):
    """`airquill book view` headless against a real child server: 12 chapters condense at once and each is
    written complete; reopened, a picked chapter comes to reading distance, is edited and saved back into its
    chapter file (front matter kept); a chapter file changed by someone else is never overwritten."""
    from airquill.demo import run_book_view
    from airquill.shared.book import Book, parse_outline, split_front_matter
    from airquill.vr_client.app import ClientApp
    from airquill.vr_client.book_view import BookRun
    from airquill.vr_client.workspace import Workspace, WorkspaceConfig

    book = Book(tmp_path / "book")
    book.init("Psalms")
    entries = "\n".join(f"{i}. Psalm number {i}" for i in range(1, 13))
    book.outline_path.write_text(f"# Psalms\n\nKing James style.\n\n## Chapters\n\n{entries}\n")
    assert run_book_view(book_dir=book.root, host="headless", server=None, token="", model=None, parallel=12,
                         length=24, steps=6, seed=0, limit=None, out=tmp_path / "book.gif") == 0
    assert (tmp_path / "book.gif").exists() and sorted(book.finished()) == list(range(1, 13))
    for number in range(1, 13):
        header, body = split_front_matter(book.chapter_path(number).read_text())
        assert f"outline: \"Psalm number {number}\"" in header and body.strip()
        tokens = int(re.search(r"^tokens: (\d+)$", header, re.M).group(1))
        assert 0 < tokens <= 24  # the length asked for, or fewer when the model ended the chapter itself

    outline = parse_outline(book.outline_path.read_text())
    workspace = Workspace(ClientApp("ws://127.0.0.1:9"),  # not connected: every chapter is already written
                          WorkspaceConfig(session=book.root / ".session.json", output=book.output_dir),
                          scene=book_scene([f"{c.number}. {c.entry}" for c in outline.chapters]))
    run = BookRun(workspace, book, outline, parallel=4, length=24)
    assert run.done and run.written == 0
    second = workspace.scene.panel("chapter-2")
    header, body = split_front_matter(book.chapter_path(2).read_text())
    assert second.text.text.strip() == body.strip()  # from the session's history (it wins over the file)
    workspace.controller.select(second)
    run.tick()
    assert second.position[2] == pytest.approx(-1.75) and second.selected
    second.selection = (0, 1)
    workspace.editor.replace(second, "Amen. ")
    assert workspace.editor.save(second) == book.chapter_path(2)
    assert book.chapter_path(2).read_text() == header + second.text.text.strip() + "\n"
    assert second.text.text.startswith("Amen. ")
    third = workspace.scene.panel("chapter-3")
    book.chapter_path(3).write_text("the author rewrote this by hand\n")
    workspace.controller.select(third)
    run.tick()
    assert second.position[2] != pytest.approx(-1.75)  # back on the shelf
    third.cursor = 0
    workspace.editor.replace(third, "Selah. ")
    assert workspace.editor.save(third).name == "chapter-003-2.md"
    assert book.chapter_path(3).read_text() == "the author rewrote this by hand\n"
    workspace.close()
