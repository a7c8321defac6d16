"""The book view: 100 chapter panels rendered headless (real Mesa EGL), each visible."""
from __future__ import annotations

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
