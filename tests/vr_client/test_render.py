"""Rendering with real Mesa OpenGL through EGL (llvmpipe): what a person would see, checked in pixels."""
from __future__ import annotations

import numpy as np
import pytest

from airquill.shared.step import Step, TokenChange
from airquill.vr_client.render.math3d import look_at
from airquill.vr_client.render.panel_text import MOVE_S, current_position as _current
from airquill.vr_client.scene import EYE_HEIGHT, Panel, Scene


@pytest.fixture(scope="module")
def host():
    from airquill.vr_client.hosts.headless import HeadlessHost

    h = HeadlessHost((640, 400), fov_y=40.0)
    yield h
    h.release()


def panel_with(words: list[str], *, noise: float = 0.0, confidence: float = 1.0, random_tokens: bool = False,
               **options) -> tuple[Scene, Panel]:
    """A panel showing `words`; at noise 1 they are masks (no text), or with `random_tokens` uniform noise's random
    tokens (their text is sent along)."""
    scene = Scene()
    panel = scene.add(Panel("p", **options))
    changes = tuple(TokenChange(i, 10 + i, w if noise < 1 or random_tokens else "", confidence, noise)
                    for i, w in enumerate(words))
    panel.text.apply(Step(1, 1, len(words), changes))
    panel.touch()
    return scene, panel


def ink(image: np.ndarray) -> np.ndarray:
    """Pixels clearly brighter than the panel background."""
    return image.max(axis=-1) > 120


def test_no_gl_errors_and_known_text_lands_where_expected(host):
    assert host.gl_error() is None
    scene, panel = panel_with(["IIII"])
    image = host.frame(scene, 10.0)
    assert host.gl_error() is None
    # project the text's first em (top-left of the text area) to pixels and look for ink around it
    corner = panel.model_matrix() @ np.array([0.0, 1.0, 0.0, 1.0])
    clip = host.projection @ host.view @ corner
    x = int((clip[0] / clip[3] + 1) / 2 * 640)
    y = int((1 - (clip[1] / clip[3] + 1) / 2) * 400)
    region = ink(image)[y - 14 : y + 4, x - 2 : x + 30]
    assert region.sum() > 20, "the glyphs are not where the layout puts them"
    assert ink(image)[:, :x - 40].sum() == 0  # nothing left of the panel's text column


def test_noise_and_settled_text_look_different(host):
    settled = host.frame(panel_with(["And God said"])[0], 10.0)
    noisy = host.frame(panel_with(["And God said"], noise=1.0)[0], 10.0)
    assert (np.abs(settled.astype(int) - noisy.astype(int)).max(axis=-1) > 30).sum() > 50
    assert ink(settled).sum() > ink(noisy).sum()  # noise is dim


def test_noise_flickers_over_time(host):
    scene, _ = panel_with(["abcdef"] * 4, noise=1.0)
    a, b = host.frame(scene, 1.0), host.frame(scene, 1.5)
    assert not np.array_equal(a, b)


def test_random_tokens_show_their_own_letters_dimmed(host):
    """Uniform noise: a random token is drawn as its own letters (dim, trembling), not as mask noise glyphs."""
    wide = host.frame(panel_with(["MMMM"] * 6, noise=1.0, random_tokens=True)[0], 10.0)
    thin = host.frame(panel_with(["IIII"] * 6, noise=1.0, random_tokens=True)[0], 10.0)
    masks = [host.frame(panel_with([w] * 6, noise=1.0)[0], 10.0) for w in ("MMMM", "IIII")]
    assert np.array_equal(*masks)  # a mask shows no text: what it hides cannot change the picture
    faint = [(image.max(axis=-1) > 40).sum() for image in (wide, thin)]  # dim glyphs: a lower threshold
    assert faint[0] > faint[1] + 300  # an M has much more ink than an I
    settled = host.frame(panel_with(["MMMM"] * 6)[0], 10.0)
    assert settled.astype(int).sum() > wide.astype(int).sum()  # still noise: dimmer than settled text


def test_blurred_tokens_sharpen_as_their_noise_falls(host):
    """Continuous diffusion: a token shown at noise 0.9 is blurrier and dimmer than at 0.2, and at 0.2 than
    settled; less ink as the noise rises."""
    frames = [host.frame(panel_with(["MMMM"] * 6, noise=n)[0], 10.0) for n in (0.0, 0.2, 0.9)]
    crisp = [int((f.max(axis=-1) > 120).sum()) for f in frames]
    assert crisp[0] > crisp[1] > crisp[2]


def test_cyrillic_renders_real_glyphs(host):
    from airquill.vr_client.text.atlas import FALLBACK

    atlas = host.renderer.atlas
    assert not atlas.get("Ж").fallback and atlas.get("日").fallback  # DejaVu Sans has no CJK
    cyrillic = host.frame(panel_with(["ЖЖЖ"])[0], 10.0)
    boxes = host.frame(panel_with([FALLBACK * 3])[0], 10.0)
    assert ink(cyrillic).sum() > 50 and not np.array_equal(cyrillic, boxes)


def test_low_confidence_looks_less_solid(host):
    sure = host.frame(panel_with(["MMMM"], confidence=1.0)[0], 10.0)
    unsure = host.frame(panel_with(["MMMM"], confidence=0.1)[0], 10.0)
    assert sure.astype(int).sum() > unsure.astype(int).sum()


def test_two_eyes_differ_by_the_eye_offset(host):
    scene, _ = panel_with(["III"])
    ipd = 0.064
    left = look_at((-ipd / 2, EYE_HEIGHT, 0), (-ipd / 2, EYE_HEIGHT, -1))
    right = look_at((ipd / 2, EYE_HEIGHT, 0), (ipd / 2, EYE_HEIGHT, -1))
    a = host.frame(scene, 10.0, view=left).astype(float).sum(axis=-1).sum(axis=0)
    b = host.frame(scene, 10.0, view=right).astype(float).sum(axis=-1).sum(axis=0)
    assert not np.array_equal(a, b)
    shift = max(range(40), key=lambda s: float(np.dot(a[s:], b[: len(b) - s])))  # best column alignment
    focal = 400 / 2 / np.tan(np.radians(40) / 2)
    expected = focal * ipd / 1.75  # disparity of a panel 1.75 m away
    assert shift == pytest.approx(expected, abs=1.5)


def test_easing_is_the_same_at_60_and_90_hz(host):
    def run(hz: float) -> np.ndarray:
        scene, panel = panel_with(["And God said"], noise=1.0)
        frame = 0
        for frame in range(int(0.1 * hz) + 1):  # commit at t=0.05, look at t=0.1
            t = frame / hz
            if abs(t - 0.05) < 1e-9 or (t > 0.05 and not panel.text.settled):
                panel.text.apply(Step(2, 2, 1, (TokenChange(0, 10, "And God said", 1.0, 0.0),)))
                panel.touch()
            image = host.frame(scene, 0.05 if t >= 0.05 and panel.version == 2 and frame == 0 else t)
        return image

    # both clocks reach t = 0.1 exactly (6/60 and 9/90) with the token committed at t = 0.05 (3/60, 4.5/90 is
    # not a 90 Hz frame: the commit lands on the next frame, t = 5/90, so use the commit time, not the frame)
    images = []
    for hz in (60, 90):
        scene, panel = panel_with(["And God said"], noise=1.0)
        host.frame(scene, 0.0)
        panel.text.apply(Step(2, 2, 1, (TokenChange(0, 10, "And God said", 1.0, 0.0),)))
        panel.touch()
        host.frame(scene, 0.05)  # the commit is seen by a frame at t = 0.05 in both runs
        for i in range(1, int(0.1 * hz) + 1):
            t = i / hz
            if t > 0.05:
                last = host.frame(scene, t)
        images.append(last)
    assert np.array_equal(images[0], images[1])


def test_committed_glyphs_glide_without_jumps(host):
    scene, panel = panel_with([" one", " two", " three", " four"], noise=1.0)
    host.frame(scene, 0.0)
    panel.text.apply(Step(2, 4, 4, (TokenChange(2, 12, " three", 1.0, 0.0),)))  # commit "three" first
    panel.touch()
    host.frame(scene, 0.1)
    motion = host.renderer.meshes["p"].motion[(2, 1)]
    before = _current(motion, 0.2)
    # neighbours condense (their widths change), so "three" has to move
    panel.text.apply(Step(3, 4, 4, (TokenChange(0, 10, " one", 1.0, 0.0), TokenChange(1, 11, " two", 1.0, 0.0))))
    panel.touch()
    host.frame(scene, 0.2)
    path = [_current(motion, 0.2 + i / 90) for i in range(int(MOVE_S * 90) + 3)]
    start, end = path[0], path[-1]
    assert start == before  # the glide starts where the glyph was: no jump at the re-target
    assert end != start  # it did move
    distance = np.hypot(end[0] - start[0], end[1] - start[1])
    steps = [np.hypot(b[0] - a[0], b[1] - a[1]) for a, b in zip(path, path[1:])]
    assert max(steps) <= distance * 1.5 / (MOVE_S * 90) + 1e-9  # smoothstep's steepest slope is 1.5


def test_default_placement_follows_reading_comfort():
    import math

    from airquill.vr_client.scene import arc_placement

    panel = Panel("p")
    distance = math.dist(panel.position, (0.0, EYE_HEIGHT, 0.0))
    assert 1.5 <= distance <= 2.0
    from airquill.vr_client.text.atlas import GlyphAtlas

    atlas = GlyphAtlas()
    atlas.face.load_char("H")
    cap_height = atlas.face.glyph.metrics.horiBearingY / 64 / (atlas.em_px * atlas.oversample)  # in em
    assert 0.6 < cap_height < 0.8
    angle = math.degrees(2 * math.atan(cap_height * panel.em / 2 / distance))
    assert angle >= 0.65
    for position, _ in arc_placement(5):
        assert 1.5 <= math.dist(position, (0.0, EYE_HEIGHT, 0.0)) <= 2.0
