"""The headless demo end to end: a real `airquill serve` child process, the client library, the scene, EGL."""
from __future__ import annotations

import imageio.v3 as iio
import numpy as np

from airquill.demo import child_server
from airquill.vr_client.app import ClientApp
from airquill.vr_client.demo import run_headless


def test_headless_demo_gif_goes_from_noise_to_the_final_text(tmp_path):
    with child_server() as (url, token):
        app = ClientApp(url, token=token).start()
        try:
            gif, scene, final = run_headless(app, tmp_path / "demo.gif", size=(480, 270))
        finally:
            app.close()
    frames = iio.imread(gif, index=None)
    assert len(frames) >= 3
    pngs = sorted((tmp_path / "demo").glob("frame-*.png"))
    assert len(pngs) >= len(frames) and iio.imread(pngs[-1]).shape == frames[-1].shape  # GIF merges repeats
    for panel in scene.panels:
        assert panel.text.finished and panel.text.settled == len(panel.text.cells) > 0
        assert panel.text.text.strip()
    # the last frame shows the final text: it matches the final scene rendered after all easing (up to GIF
    # colours); the first frame is noise
    def differing(frame):  # pixels clearly different from the final render
        return int((np.abs(frame.astype(int) - final.astype(int)).max(axis=-1) > 48).sum())

    assert differing(frames[0]) > 300  # noise, not the text
    assert differing(frames[-1]) < differing(frames[0]) / 10
