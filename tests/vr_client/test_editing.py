"""Editing end to end against a real `airquill serve` child process with the shipped model: select a span,
rewrite it (only the span dissolves and re-condenses), undo and redo byte for byte, delete, replace, save
without overwriting, and an autosaved session that survives kill -9 of the client."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airquill.demo import child_server
from airquill.shared.protocol import Sampling
from airquill.vr_client.app import ClientApp
from airquill.vr_client.document import PanelHistory, Revision, char_span
from airquill.vr_client.editor import EditorConfig, Editor, EditRefused
from airquill.vr_client.scene import Panel, Scene
from airquill.vr_client.session_store import Autosave, open_session

CHILD = Path(__file__).with_name("session_child.py")


@pytest.fixture(scope="module")
def server():
    with child_server() as (url, token):
        yield url, token


@pytest.fixture
def editor(server, tmp_path):
    app = ClientApp(server[0], token=server[1]).start()
    scene = Scene()
    scene.add(Panel("p1"))
    editor = Editor(scene, app, EditorConfig(length=48, sampling=Sampling(steps=12), output=tmp_path / "out"))
    yield editor
    app.close()


def pump(editor: Editor, panel: Panel, *, on_step=None, limit: float = 120.0) -> None:
    """The frame loop, reduced: apply events one by one until the panel's request has ended (the deadline is
    a guard against hanging, not a timing)."""
    deadline = time.monotonic() + limit
    while editor.app.busy(panel):
        assert time.monotonic() < deadline, "the request never ended"
        steps = panel.text.step
        if not editor.app.drain(editor.scene, limit=1):
            time.sleep(0.01)
        elif on_step is not None and panel.text.step != steps:  # a step frame was applied
            on_step(panel)


def test_rewrite_changes_only_the_span_and_undo_restores_it_byte_for_byte(editor):
    panel = editor.scene.panel("p1")
    editor.generate(panel, "And God said", seed=3)
    pump(editor, panel)
    original = panel.text.text
    assert panel.text.finished and original.strip() and len(editor.history(panel).revisions) == 1

    tokens = len(panel.text.cells)  # the model may end the text itself before the asked-for length
    assert tokens >= 8, "too short a text to edit a span in its middle"
    panel.selection = (tokens // 4, 3 * tokens // 4)
    start, end = char_span(panel.text, panel.selection)
    prefix, suffix = original[:start], original[end:]
    frames = []
    editor.rewrite(panel, seed=11)
    pump(editor, panel, on_step=lambda p: frames.append([(c.text, c.noise) for c in p.text.cells]))
    assert frames, "the edit streamed no steps"
    first = frames[0]
    noisy = [i for i, (_, noise) in enumerate(first) if noise > 0]
    assert noisy and set(noisy) == set(range(min(noisy), max(noisy) + 1))  # one contiguous dissolved span
    assert "".join(t for t, _ in first[: min(noisy)]) == prefix  # before the span: untouched from frame one
    assert "".join(t for t, _ in first[max(noisy) + 1 :]) == suffix
    rewritten = panel.text.text
    assert rewritten.startswith(prefix) and rewritten.endswith(suffix)
    assert all(noise == 0 for _, noise in frames[-1])
    assert [r.action for r in editor.history(panel).revisions] == ["generate", "rewrite"]

    assert editor.undo(panel) and panel.text.text == original  # byte for byte
    assert panel.text.text.encode() == original.encode()
    assert editor.redo(panel) and panel.text.text == rewritten
    assert not editor.redo(panel)


def test_controls_typed_into_the_prompt_reach_the_server_and_stick_to_the_panel(editor):
    """`+keyword` and `=N` words in a typed prompt become the request's controls (protocol version 2 with the
    real server); the panel keeps them, so regenerating asks for them again."""
    panel = editor.scene.panel("p1")
    editor.generate(panel, "And God said +Moses =20", seed=1)
    pump(editor, panel)
    text = panel.text.text
    assert panel.prompt == "And God said" and "Moses" in text and 19 <= len(text.split()) <= 21
    assert panel.title == "And God said +Moses =20 words"
    editor.regenerate(panel)
    pump(editor, panel)
    assert "Moses" in panel.text.text and 19 <= len(panel.text.text.split()) <= 21
    with pytest.raises(EditRefused, match="at most one =length"):
        editor.generate(panel, "And God said =20 =30")


def test_delete_replace_and_a_new_edit_after_undo_drops_the_undone_branch(editor):
    panel = editor.scene.panel("p1")
    with pytest.raises(EditRefused, match="select a span"):
        editor.rewrite(panel)
    editor.generate(panel, "In the beginning", seed=5)
    with pytest.raises(EditRefused, match="still condensing"):
        editor.delete(panel)
    pump(editor, panel)
    original = panel.text.text
    panel.selection = (2, 6)
    start, end = char_span(panel.text, panel.selection)
    editor.delete(panel)
    assert panel.text.text == original[:start] + original[end:]
    panel.selection = (0, 1)
    first = panel.text.cells[0].text
    editor.replace(panel, "Лето ")
    assert panel.text.text == "Лето " + original[:start][len(first):] + original[end:]
    assert editor.undo(panel) and editor.undo(panel) and panel.text.text == original
    panel.cursor = 0
    editor.replace(panel, "X")  # a new edit after undo: the redo branch is gone
    assert not editor.history(panel).can_redo
    assert [r.action for r in editor.history(panel).revisions] == ["generate", "replace"]


def test_save_is_atomic_and_never_overwrites_a_different_file(editor, tmp_path):
    panel = editor.scene.panel("p1")
    panel.title = "Psalm one"
    with pytest.raises(EditRefused, match="empty"):
        editor.save(panel)
    editor.generate(panel, "Psalm one", seed=1)
    pump(editor, panel)
    path = editor.save(panel)
    assert path == tmp_path / "out" / "psalm-one.md" and path.read_text().rstrip("\n") == panel.text.text.rstrip("\n")
    panel.cursor = 0
    editor.replace(panel, "Amen. ")
    assert editor.save(panel) == path  # our own file: updated in place
    path.write_text("the author's own words\n")  # someone else's text now
    second = editor.save(panel)
    assert second == tmp_path / "out" / "psalm-one-2.md"
    assert path.read_text() == "the author's own words\n"
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_cancel_puts_back_the_last_revision(editor):
    panel = editor.scene.panel("p1")
    editor.generate(panel, "The LORD is my shepherd", seed=2)
    pump(editor, panel)
    kept = panel.text.text
    panel.selection = (0, len(panel.text.cells))
    editor.rewrite(panel, seed=4)
    assert editor.cancel(panel)
    pump(editor, panel)
    assert panel.text.text == kept and len(editor.history(panel).revisions) == 1


def test_history_json_round_trip_and_damaged_sessions():
    history = PanelHistory()
    history.record(Revision(((5, "Hel"), (6, "lo")), "generate", "p"))
    history.record(Revision(((-1, "Привет"),), "replace", "p"))
    history.undo()
    again = PanelHistory.from_json(json.loads(json.dumps(history.to_json())))
    assert again == history and again.current.text == "Hello" and again.can_redo
    with pytest.raises(ValueError, match="does not fit"):
        PanelHistory.from_json({"index": 5, "revisions": []})


def test_open_session_rejects_garbage(tmp_path):
    bad = tmp_path / "s.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not a session file"):
        open_session(bad)
    bad.write_text('{"version": 99, "panels": []}')
    with pytest.raises(ValueError, match="unsupported session version"):
        open_session(bad)


def test_autosave_survives_a_full_disk(tmp_path):
    scene, histories = Scene(), {}
    scene.add(Panel("p"))
    blocked = tmp_path / "file"
    blocked.write_text("")
    autosave = Autosave(blocked / "session.json", scene, histories, interval=1.0)  # parent is a file
    assert not autosave.tick(0.0) and "autosave" in autosave.error
    good = Autosave(tmp_path / "session.json", scene, histories, interval=1.0)
    assert good.tick(0.0) and not good.tick(0.5) and not good.tick(2.0)  # nothing changed since
    scene.panels[0].title = "moved"
    assert good.tick(3.0) and good.writes == 2


def test_client_killed_mid_session_loses_nothing_it_saved(server, tmp_path):
    """A client process edits and autosaves; kill -9 it mid-request; reopening the session shows every
    revision it reported as saved, byte for byte."""
    session = tmp_path / "session.json"
    env = {**os.environ, "AIRQUILL_URL": server[0], "AIRQUILL_TOKEN": server[1]}
    child = subprocess.Popen([sys.executable, str(CHILD), str(session)], env=env, stdout=subprocess.PIPE, text=True)
    saved = []
    try:
        for line in child.stdout:  # the child prints each revision's text once its autosave wrote it
            saved.append(json.loads(line))
            if len(saved) == 3:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert len(saved) == 3 and child.returncode == -signal.SIGKILL
    scene, histories = open_session(session)
    history = histories["p1"]
    texts = [r.text for r in history.revisions]
    assert texts[: len(saved)] == [s["text"] for s in saved]
    assert scene.panel("p1").text.text == texts[history.index]
