"""`airquill demo`: start `airquill serve` with the shipped model as a child process on a free loopback port,
then show a session on the best host available; the server is stopped on exit, Ctrl-C included."""
from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def child_server(*, model: str | None = None, device: str | None = None,
                 timeout: float = 180.0) -> Iterator[tuple[str, str]]:
    """Yield (url, token) of a freshly started server; SIGTERM it (then SIGKILL) when done."""
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        args = [sys.executable, "-m", "airquill", "serve", "--port", "0", "--port-file", str(port_file)]
        if model:
            args += ["--model", model]
        if device:
            args += ["--device", device]
        log = open(Path(tmp) / "server.log", "w+")
        proc = subprocess.Popen(args, env={**os.environ, "AIRQUILL_TOKEN": token}, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + timeout
            while not (port_file.exists() and port_file.read_text()):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"the server did not start:\n{log.read()[-2000:]}")
                time.sleep(0.05)
            yield f"ws://127.0.0.1:{port_file.read_text()}", token
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()


def best_host() -> str:
    from airquill.vr_client.hosts.detect import detect_host

    return detect_host()


def run_demo(*, model: str | None, out: Path, host: str | None, server: str | None = None,
             token: str = "", workspace=None) -> int:
    """Show the demo session on `host` (default: the best available), against `server` or a child one.
    The host is opened first, so a missing headset or display is reported before any server starts."""
    chosen = host or best_host()
    window = _open_host(chosen)
    if server:
        return _show(window, server, token, out, workspace)
    with child_server(model=model) as (url, child_token):
        return _show(window, url, child_token, out, workspace)


def _open_host(host: str):
    if host == "desktop":
        from airquill.vr_client.hosts.desktop import DesktopHost

        return DesktopHost()
    if host == "openxr":
        from airquill.vr_client.hosts.openxr_host import OpenXRHost

        return OpenXRHost()
    return None  # headless: its EGL context is made when rendering starts


def _show(window, url: str, token: str, out: Path, workspace_config=None) -> int:
    from airquill.vr_client.app import ClientApp
    from airquill.vr_client.demo import PROMPTS, run_headless
    from airquill.vr_client.workspace import Workspace, WorkspaceConfig

    app = ClientApp(url, token=token).start()
    try:
        if window is None:
            gif, _, _ = run_headless(app, out)
            print(f"wrote {gif} ({gif.stat().st_size // 1024} KiB): three panels condensing from noise")
            return 0
        workspace = Workspace(app, workspace_config or WorkspaceConfig())
        try:
            if not workspace.editor.histories:  # a new session: the demo prompts condense on the first panels
                workspace.seed(PROMPTS)
            workspace.attach(lambda panel, x, y: window.renderer.token_at(panel, x, y) if window.renderer else None)
            window.inputs = workspace.inputs  # the host's own input (keys, XR hands) goes to the same queue
            workspace.start_inputs()
            window.run(workspace.scene, before_frame=workspace.before_frame)
        finally:
            workspace.close()
        return 0
    finally:
        app.close()


def run_book_view(*, book_dir: Path, host: str | None, server: str | None, token: str, model: str | None,
                  parallel: int, length: int, steps: int, seed: int, limit: int | None, out: Path) -> int:
    """`airquill book view`: the book's chapters on a shelf, pending ones condensing live and written to
    book/output/ as they finish; pick one to read and edit it. Headless, it renders the run into a GIF."""
    from airquill.shared.book import Book

    book = Book(book_dir)
    outline = book.outline()  # a bad outline fails here, before any server starts
    chosen = host or best_host()
    window = _open_host(chosen)
    if server:
        return _show_book(window, server, token, book, outline, parallel, length, steps, seed, limit, out)
    with child_server(model=model or book.config().get("model")) as (url, child_token):
        return _show_book(window, url, child_token, book, outline, parallel, length, steps, seed, limit, out)


def _show_book(window, url, token, book, outline, parallel, length, steps, seed, limit, out) -> int:
    from airquill.vr_client.app import ClientApp
    from airquill.vr_client.book_view import BookRun, book_scene
    from airquill.vr_client.workspace import Workspace, WorkspaceConfig

    chapters = outline.chapters[:limit] if limit else outline.chapters
    app = ClientApp(url, token=token).start()
    try:
        config = WorkspaceConfig(session=book.root / ".session.json", output=book.output_dir, length=length,
                                 steps=steps, keyboard=window is not None)
        workspace = Workspace(app, config, scene=book_scene([f"{c.number}. {c.entry}" for c in chapters]))
        run = BookRun(workspace, book, outline, parallel=parallel, length=length, seed=seed, limit=limit)
        try:
            if window is None:
                gif = _book_headless(workspace, run, out)
                print(f"wrote {gif}: {run.written} chapters condensed and saved to {book.output_dir}")
                return 0
            workspace.attach(lambda panel, x, y: window.renderer.token_at(panel, x, y) if window.renderer else None)
            window.inputs = workspace.inputs
            window.run(workspace.scene, before_frame=lambda t: (run.tick(), workspace.before_frame(t)))
            return 0
        finally:
            workspace.close()
    finally:
        app.close()


def _book_headless(workspace, run, out: Path, *, fps: float = 8.0, max_frames: int = 400) -> Path:
    """Frames from above the reader looking down at the shelf's front, until every chapter is written."""
    from airquill.vr_client.hosts.headless import HeadlessHost, write_gif
    from airquill.vr_client.render.math3d import look_at
    from airquill.vr_client.scene import EYE_HEIGHT

    host = HeadlessHost((960, 540), fov_y=90.0)
    view = look_at((0.0, EYE_HEIGHT + 0.3, 0.4), (0.0, EYE_HEIGHT - 0.1, -2.6))
    frames, start = [], time.perf_counter()
    try:
        while len(frames) < max_frames:
            now = time.perf_counter() - start
            run.tick()
            workspace.before_frame(now)
            frames.append(host.frame(workspace.scene, now, view=view))
            if run.done:
                break
            time.sleep(max(0.0, len(frames) / fps - (time.perf_counter() - start)))
        frames.append(host.frame(workspace.scene, time.perf_counter() - start + 60.0, view=view))
    finally:
        host.release()
    return write_gif(frames, out, fps=fps)
