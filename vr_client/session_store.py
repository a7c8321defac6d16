"""The client session on disk: panels (place, size, prompt) and their full histories, autosaved.

The frame loop calls `Autosave.tick(now)` every frame; at most every `interval` seconds, and only when
something changed, the session is written atomically (temporary file, fsync, rename), so a crash or kill -9
loses at most the last `interval` seconds and never leaves a half-written file. A failed write (full disk) is
reported and retried; the last good file stays. `open_session` rebuilds the scene from the file.
"""
from __future__ import annotations

import json
from pathlib import Path

from airquill.shared.book import write_atomic
from airquill.vr_client.document import PanelHistory, show
from airquill.vr_client.scene import Panel, Scene

SESSION_VERSION = 1
DEFAULT_SESSION = Path("~/.local/share/airquill/session.json")


def session_json(scene: Scene, histories: dict[str, PanelHistory]) -> str:
    panels = []
    for panel in (p for p in scene.panels if p.persist):
        history = histories.get(panel.panel_id, PanelHistory())
        panels.append({"panel_id": panel.panel_id, "title": panel.title, "prompt": panel.prompt,
                       "position": list(panel.position), "yaw": panel.yaw, "pitch": panel.pitch,
                       "width": panel.width, "height": panel.height, "history": history.to_json()})
    return json.dumps({"version": SESSION_VERSION, "panels": panels}, ensure_ascii=False, indent=1)


def open_session(path: Path) -> tuple[Scene, dict[str, PanelHistory]]:
    """The saved scene, each panel showing its current revision. A damaged file is a clear ValueError."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not a session file: {err}") from None
    if not isinstance(data, dict) or data.get("version") != SESSION_VERSION:
        raise ValueError(f"{path}: unsupported session version {data.get('version') if isinstance(data, dict) else None!r}")
    scene, histories = Scene(), {}
    try:
        for entry in data["panels"]:
            panel = scene.add(Panel(entry["panel_id"], title=entry.get("title", ""), prompt=entry.get("prompt", ""),
                                    position=tuple(float(v) for v in entry["position"]), yaw=float(entry["yaw"]),
                                    pitch=float(entry.get("pitch", 0.0)), width=float(entry["width"]),
                                    height=float(entry["height"])))
            history = histories[panel.panel_id] = PanelHistory.from_json(entry["history"])
            if history.current is not None:
                show(panel.text, history.current.tokens)
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path}: malformed session ({err!r})") from None
    return scene, histories


class Autosave:
    def __init__(self, path: Path, scene: Scene, histories: dict[str, PanelHistory], *, interval: float = 2.0):
        self.path, self.scene, self.histories, self.interval = Path(path), scene, histories, interval
        self.last_written: str | None = None
        self.last_time = float("-inf")
        self.writes = 0
        self.error: str | None = None  # the last failed write, shown to the user until a write succeeds

    def tick(self, now: float) -> bool:
        """Write the session if `interval` passed since the last write and it changed; True if written."""
        if now - self.last_time < self.interval:
            return False
        self.last_time = now
        return self.save()

    def save(self) -> bool:
        text = session_json(self.scene, self.histories)
        if text == self.last_written:
            return False
        try:
            write_atomic(self.path, text)
        except OSError as err:  # full disk, read-only folder: keep the last good file, try again next time
            self.error = f"autosave to {self.path} failed: {err.strerror or err}"
            return False
        self.last_written, self.error = text, None
        self.writes += 1
        return True
