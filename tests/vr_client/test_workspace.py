"""The interactive client headless, end to end: a real `airquill serve` child process, the workspace (editor,
controller, keyboard, autosave), real Mesa EGL rendering. Scripted input events stand in for the hands and
voice producers (their pipelines are tested on their own): pinch-drag selects a span, "rewrite" dissolves it
on screen, "undo" restores the text byte for byte, and the session reopens as it was left."""
from __future__ import annotations

import time

import numpy as np
import pytest

from airquill.demo import child_server
from airquill.vr_client.app import ClientApp
from airquill.vr_client.hosts.headless import HeadlessHost
from airquill.vr_client.input.events import Pinch, VoiceCommand
from airquill.vr_client.render.panel_text import LINE_HEIGHT
from airquill.vr_client.workspace import Workspace, WorkspaceConfig


@pytest.fixture(scope="module")
def server():
    with child_server() as (url, token):
        yield url, token


def frames_until(workspace: Workspace, host: HeadlessHost, done, *, clock: list, limit: float = 120.0) -> list:
    """Run frames (drain, input, autosave, render) until `done()`; the deadline only guards against hanging."""
    frames, deadline = [], time.monotonic() + limit
    while not done():
        assert time.monotonic() < deadline, "never finished"
        clock[0] += 1 / 30
        workspace.before_frame(clock[0])
        frames.append(host.frame(workspace.scene, clock[0]))
        time.sleep(0.005)
    return frames


def pointer_of(host: HeadlessHost, panel, token: int) -> tuple[float, float]:
    layout = host.renderer.meshes[panel.panel_id].text
    (x0, line), (x1, _) = layout.starts[token], layout.ends[token]
    return (x0 + x1) / 2 / panel.width_em, (layout.top + (line + 0.5) * LINE_HEIGHT) * panel.em / panel.height


def test_pinch_select_rewrite_undo_and_reopen(server, tmp_path):
    config = WorkspaceConfig(session=tmp_path / "session.json", output=tmp_path / "out", length=40, steps=10)
    app = ClientApp(server[0], token=server[1]).start()
    host = HeadlessHost((640, 400), fov_y=60.0)
    clock = [0.0]
    try:
        workspace = Workspace(app, config)
        workspace.attach(host.renderer.token_at)
        workspace.seed(["And God said"])
        panel = workspace.controller.selected()
        frames_until(workspace, host, lambda: not app.busy(panel), clock=clock)
        original = panel.text.text
        before = host.frame(workspace.scene, clock[0] + 5)

        a, b = pointer_of(host, panel, 3), pointer_of(host, panel, 8)
        for event in [Pinch("start", "right", *a, 1.0), Pinch("hold", "right", *b, 1.1), Pinch("end", "right", *b, 1.2),
                      VoiceCommand("rewrite", "", "en", 1.3)]:
            workspace.inputs.put(event)
        workspace.before_frame(clock[0])
        assert panel.selection is None or app.busy(panel)
        frames = frames_until(workspace, host, lambda: not app.busy(panel), clock=clock)
        changed = [int((np.abs(f.astype(int) - before.astype(int)).max(axis=-1) > 64).sum()) for f in frames]
        assert max(changed) > 50, "the span never visibly dissolved"
        rewritten = panel.text.text
        history = workspace.editor.history(panel)
        assert [r.action for r in history.revisions] == ["generate", "rewrite"]

        workspace.inputs.put(VoiceCommand("undo", "", "ru", 2.0))
        frames_until(workspace, host, lambda: panel.text.text == original, clock=clock, limit=5)
        assert panel.text.text.encode() == original.encode()
        workspace.inputs.put(VoiceCommand("redo", "", "en", 2.1))
        frames_until(workspace, host, lambda: panel.text.text == rewritten, clock=clock, limit=5)
        workspace.inputs.put(VoiceCommand("save", "chapter one", "en", 2.2))
        frames_until(workspace, host, lambda: (tmp_path / "out" / "chapter-one.md").exists(), clock=clock, limit=5)
        assert host.gl_error() is None
        workspace.close()

        reopened = Workspace(app, config)
        again = reopened.scene.panel(panel.panel_id)
        assert again.text.text == rewritten and reopened.editor.history(again).can_undo
        assert {p.panel_id for p in reopened.scene.panels} == {panel.panel_id, "keyboard", "prompt"}
    finally:
        host.release()
        app.close()


def test_missing_webcam_and_microphone_are_reported_and_the_rest_keeps_working(tmp_path, monkeypatch):
    """This machine has no webcam, no microphone and no English Vosk model: both producers say so on the
    prompt line, and typing still works. (The client app is not connected: nothing here needs the server.)"""
    monkeypatch.delenv("AIRQUILL_VOSK_MODEL", raising=False)
    monkeypatch.setenv("AIRQUILL_HAND_CALIBRATION", str(tmp_path / "calibration.json"))
    workspace = Workspace(ClientApp("ws://127.0.0.1:9"), WorkspaceConfig(session=tmp_path / "s.json", hands=True,
                                                                        camera=7, voice=True))
    workspace.start_inputs()
    deadline = time.monotonic() + 60
    while not any("hands" in m for m in workspace.editor.messages):
        assert time.monotonic() < deadline, workspace.editor.messages
        workspace.before_frame(time.monotonic())
        time.sleep(0.02)
    assert any(m.startswith("voice:") and "vosk-model-small-en-us" in m for m in workspace.editor.messages)
    assert workspace.controller.calibration is not None  # no saved calibration: the guided one is waiting
    workspace.controller.calibration = None
    from airquill.vr_client.input.events import KeyPress

    for key in "ok":
        workspace.inputs.put(KeyPress(key, 0.0))
    workspace.before_frame(time.monotonic())
    assert workspace.controller.typed == "ok" and workspace.prompt.text.text.startswith("› ok")
    workspace.close()
