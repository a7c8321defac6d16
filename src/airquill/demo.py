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
def child_server(*, model: str | None = None, timeout: float = 180.0) -> Iterator[tuple[str, str]]:
    """Yield (url, token) of a freshly started server; SIGTERM it (then SIGKILL) when done."""
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        args = [sys.executable, "-m", "airquill", "serve", "--port", "0", "--port-file", str(port_file)]
        if model:
            args += ["--model", model]
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
