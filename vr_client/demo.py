"""The demo session: three panels on an arc, each condensing a different prompt, shown by the best host."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from airquill.shared.protocol import Sampling
from airquill.vr_client.app import ClientApp
from airquill.vr_client.scene import Panel, Scene, arc_placement

PROMPTS = ["And God said", "The LORD is my shepherd", "In the beginning was the Word"]


def demo_scene(app: ClientApp, *, length: int = 64, steps: int = 32) -> Scene:
    scene = Scene()
    for i, ((position, yaw), prompt) in enumerate(zip(arc_placement(len(PROMPTS), spread_deg=40), PROMPTS)):
        panel = scene.add(Panel(f"panel-{i}", title=prompt, position=position, yaw=yaw, width=0.62, height=0.5))
        app.generate(panel, prompt, length, Sampling(steps=steps, seed=i))
    return scene


def run_headless(app: ClientApp, out: Path, *, fps: float = 12.0, tail_s: float = 0.8, max_frames: int = 240,
                 size=(960, 540)) -> tuple[Path, Scene, np.ndarray]:
    """Render the session in real time into an animated GIF; returns its path, the final scene and a frame of
    that scene long after every animation ended (not part of the GIF)."""
    from airquill.vr_client.hosts.headless import HeadlessHost, write_gif

    host = HeadlessHost(size, fov_y=60.0)
    scene = demo_scene(app)
    frames, start, finished_at = [], time.perf_counter(), None
    while len(frames) < max_frames:
        now = time.perf_counter() - start
        app.drain(scene)
        frames.append(host.frame(scene, now))
        if app.pending == 0 and finished_at is None:
            finished_at = now
        if finished_at is not None and now - finished_at > tail_s:
            break
        time.sleep(max(0.0, (len(frames) / fps) - (time.perf_counter() - start)))
    settled = host.frame(scene, time.perf_counter() - start + 60.0)
    host.release()
    return write_gif(frames, out, fps=fps), scene, settled
