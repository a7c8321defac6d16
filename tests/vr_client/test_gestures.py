"""Gesture recognition, the One Euro filter and pointer calibration on synthetic hands.

A small parametric hand stands in for the tracker: 21 MediaPipe landmarks built from bone lengths of an adult
hand, with a chosen thumb-index gap, finger curl, position, size and in-plane rotation, plus seeded noise.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from airquill.vr_client.input.calibration import (
    Calibration, CalibrationSession, default_calibration_path)
from airquill.vr_client.input.events import OpenPalm, Pinch, PointingRay, TwoHandGrab
from airquill.vr_client.input.filters import OneEuroFilter
from airquill.vr_client.input.gestures import (
    XR_JOINT_FOR_LANDMARK, GestureConfig, GestureRecognizer, HandFrame, frame_from_xr_joints)

FPS = 30.0
MCP = {"index": (-0.32, 0.95), "middle": (0.0, 1.0), "ring": (0.27, 0.95), "pinky": (0.5, 0.85)}
BONES = {"index": (0.45, 0.27, 0.22), "middle": (0.5, 0.3, 0.24), "ring": (0.46, 0.28, 0.23), "pinky": (0.36, 0.2, 0.2)}
FLEX = (90.0, 110.0, 70.0)  # degrees at MCP, PIP, DIP for curl = 1
THUMB_OPEN_TIP = np.array([-0.95, 0.85, 0.0])


def make_hand(*, gap: float | None = None, curl: float | tuple[float, float, float, float] = 0.0,
              thumb: str = "open", center: tuple[float, float] = (0.5, 0.6), size: float = 0.15,
              angle: float = 0.0, hand: str = "right") -> np.ndarray:
    """A (21, 3) hand in normalised image coordinates (y down). In hand units the wrist is at the origin, the
    middle knuckle at (0, 1): `size` is the wrist-to-knuckle length in the image. `curl` per finger (index,
    middle, ring, pinky) in [0, 1]; `gap` places the thumb tip that far (hand units) from the index tip;
    `thumb='tucked'` folds it over the palm; `angle` rotates in the image plane (degrees); a left hand is the
    mirror image."""
    curls = (curl,) * 4 if isinstance(curl, (int, float)) else curl
    p = np.zeros((21, 3))
    for k, (name, c) in enumerate(zip(BONES, curls)):
        base = 5 + 4 * k
        pos = np.array([*MCP[name], 0.0])
        p[base], theta = pos, 0.0
        for j, (length, flex) in enumerate(zip(BONES[name], FLEX)):
            theta += math.radians(flex * c)  # flex toward the camera (MediaPipe z < 0 is nearer)
            pos = pos + length * np.array([0.0, math.cos(theta), -math.sin(theta)])
            p[base + 1 + j] = pos
    p[1], p[2] = (-0.25, 0.25, 0.0), (-0.5, 0.45, 0.0)
    if thumb == "tucked":
        p[3], p[4] = (-0.3, 0.62, -0.08), (0.1, 0.7, -0.15)
    else:
        tip = THUMB_OPEN_TIP.copy()
        if gap is not None:
            away = THUMB_OPEN_TIP - p[8]
            tip = p[8] + gap * away / np.linalg.norm(away)
        p[4], p[3] = tip, p[2] + 0.55 * (tip - p[2])
    if hand == "left":
        p[:, 0] *= -1
    a = math.radians(angle)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    p[:, :2] = p[:, :2] @ rot.T
    p[:, 1] *= -1  # y up → image y down
    return p * size + np.array([center[0], center[1], 0.0])


def pinch_point(p: np.ndarray) -> np.ndarray:
    return (p[4, :2] + p[8, :2]) / 2


def run(frames_per_step: list[list[np.ndarray | tuple[str, np.ndarray]]], *, recognizer: GestureRecognizer | None = None,
        aspect: float = 1.0) -> list[list]:
    """Feed a sequence (each step: list of landmarks or (hand, landmarks)); return the events of each step."""
    rec = recognizer or GestureRecognizer()
    out = []
    for i, step in enumerate(frames_per_step):
        t = i / FPS
        hands = [HandFrame(*(h if isinstance(h, tuple) else ("right", h)), t, aspect) for h in step]
        out.append(rec.update(hands, t))
    return out


def of(events: list[list], kind: type, phase: str | None = None) -> list:
    flat = [e for step in events for e in step if isinstance(e, kind)]
    return [e for e in flat if phase is None or e.phase == phase]


def jitter(rng: np.random.Generator, p: np.ndarray, size: float = 0.15, sigma: float = 0.01) -> np.ndarray:
    """Tracker-like noise: sigma in hand sizes on every coordinate."""
    return p + rng.normal(0.0, sigma * size, p.shape)


# --- pinch -------------------------------------------------------------------------------------------------

def gap_profile() -> list[float]:
    return [0.8] * 10 + list(np.linspace(0.8, 0.1, 5)) + [0.1] * 15 + list(np.linspace(0.1, 0.8, 5)) + [0.8] * 15


def test_clean_pinch_gives_one_start_holds_and_one_end():
    rng = np.random.default_rng(1)
    events = run([[jitter(rng, make_hand(gap=g, curl=0.3))] for g in gap_profile()])
    phases = [e.phase for e in of(events, Pinch)]
    assert phases.count("start") == 1 and phases.count("end") == 1
    assert phases[0] == "start" and phases[-1] == "end" and set(phases[1:-1]) == {"hold"}
    assert len(phases) >= 15
    start_step = next(i for i, s in enumerate(events) if any(isinstance(e, Pinch) for e in s))
    assert 10 <= start_step <= 18  # confirmed after the gap crossed 0.25, not before


@pytest.mark.parametrize("mean, amplitude, pinch_first", [
    (0.26, 0.05, False),  # hovering at the close threshold
    (0.325, 0.04, False),  # in the band between the thresholds
    (0.36, 0.02, True),  # pinched, hovering just inside the open threshold
])
def test_jitter_near_the_threshold_does_not_toggle(mean, amplitude, pinch_first):
    rng = np.random.default_rng(7)
    gaps = ([0.8] * 5 + [0.1] * 10 if pinch_first else [0.8] * 5)
    gaps += [mean + amplitude * math.sin(2 * math.pi * 3 * i / FPS) + rng.normal(0, 0.02) for i in range(240)]
    events = run([[jitter(rng, make_hand(gap=g, curl=0.3))] for g in gaps])
    starts, ends = of(events, Pinch, "start"), of(events, Pinch, "end")
    assert len(starts) <= 1 and ends == []
    if pinch_first:
        assert len(starts) == 1
    if mean == 0.325:
        assert starts == []
        # ... where a single threshold halfway would have flickered on the same signal.
        assert sum(1 for a, b in zip(gaps, gaps[1:]) if (a < 0.325) != (b < 0.325)) > 10


def test_drag_holds_follow_the_hand():
    xs = list(np.linspace(0.3, 0.7, 30))
    centers = [0.3] * 10 + xs + [0.7] * 20
    hands = [make_hand(gap=0.1, curl=0.3, center=(cx, 0.6)) for cx in centers]
    events = run([[h] for h in hands])
    holds = of(events, Pinch, "hold")
    assert len(of(events, Pinch, "start")) == 1 and len(holds) == len(hands) - 2
    hx = [e.x for e in holds]
    assert all(b >= a - 1e-12 for a, b in zip(hx, hx[1:]))  # moves with the hand, never back
    assert hx[-1] - hx[0] == pytest.approx(0.4, abs=0.01)
    truth = [pinch_point(h) for h in hands[2:]]
    lag = max(abs(e.x - p[0]) for e, p in zip(holds, truth))
    assert lag < 0.4 / 30 * 4  # never more than ~4 frames of motion behind
    assert holds[-1].x == pytest.approx(truth[-1][0], abs=1e-3)
    assert holds[-1].y == pytest.approx(truth[-1][1], abs=1e-3)


def test_hand_disappearing_ends_its_pinch():
    h = make_hand(gap=0.1)
    events = run([[h]] * 6 + [[]] * 3)
    assert [e.phase for e in of(events, Pinch)] == ["start"] + ["hold"] * 4 + ["end"]
    end = of(events, Pinch, "end")[0]
    assert events[6] == [end]
    assert (end.x, end.y) == pytest.approx(tuple(pinch_point(h)))


# --- two hands ---------------------------------------------------------------------------------------------

def test_two_hand_pinch_is_a_grab_with_scale():
    def both(dx: float, left_gap: float = 0.1, right_gap: float = 0.1):
        return [("left", make_hand(gap=left_gap, hand="left", center=(0.35 - dx, 0.6))),
                ("right", make_hand(gap=right_gap, center=(0.65 + dx, 0.6)))]
    steps = [[("right", make_hand(gap=0.1, center=(0.65, 0.6))), ("left", make_hand(gap=0.9, hand="left", center=(0.35, 0.6)))]] * 6
    steps += [both(0.0)] * 6
    steps += [both(d) for d in np.linspace(0.0, 0.1, 10)] + [both(0.1)] * 25
    steps += [both(0.1, left_gap=0.9)] * 6  # left opens: grab ends, right still pinched stays silent
    steps += [both(0.1, left_gap=0.9, right_gap=0.9)] * 8 + [both(0.1, left_gap=0.9)] * 8  # right re-pinches
    events = run(steps)

    grabs = of(events, TwoHandGrab)
    assert [g.phase for g in grabs].count("start") == 1 and [g.phase for g in grabs].count("end") == 1
    start_step = next(i for i, s in enumerate(events) if any(isinstance(e, TwoHandGrab) for e in s))
    # The right hand's single pinch ends in the same update, just before the grab starts.
    assert [type(e).__name__ + ":" + e.phase for e in events[start_step]] == ["Pinch:end", "TwoHandGrab:start"]
    grab_steps = [i for i, s in enumerate(events) if any(isinstance(e, TwoHandGrab) for e in s)]
    assert not any(isinstance(e, Pinch) for i in grab_steps[1:] for e in events[i])

    d0 = np.linalg.norm(pinch_point(both(0.0)[0][1]) - pinch_point(both(0.0)[1][1]))
    d1 = np.linalg.norm(pinch_point(both(0.1)[0][1]) - pinch_point(both(0.1)[1][1]))
    last_hold = [g for g in grabs if g.phase == "hold"][-1]
    # d0 is taken on the frame the second pinch is confirmed, while the closing thumb still settles in the
    # filter: a percent or two of slack.
    assert last_hold.scale == pytest.approx(d1 / d0, rel=0.02)
    assert d1 / d0 > 1.5
    assert last_hold.x == pytest.approx(0.5, abs=1e-3)  # centre between the hands
    assert grabs[0].scale == pytest.approx(1.0)

    pinches_after = [e for s in events[grab_steps[-1]:] for e in s if isinstance(e, Pinch)]
    assert [(e.hand, e.phase) for e in pinches_after][:1] == [("right", "start")]  # only after opening again
    end_step = grab_steps[-1]
    assert not any(isinstance(e, Pinch) for s in events[end_step:end_step + 6] for e in s)


# --- open palm and pointing --------------------------------------------------------------------------------

def test_open_palm_fires_once_per_opening():
    rng = np.random.default_rng(3)
    palm = lambda: jitter(rng, make_hand(curl=0.0))  # noqa: E731
    fist = lambda: jitter(rng, make_hand(curl=1.0, thumb="tucked"))  # noqa: E731
    events = run([[palm()] for _ in range(40)])
    assert len(of(events, OpenPalm)) == 1
    fired = next(i for i, s in enumerate(events) if s)
    assert 8 <= fired <= 14
    rec = GestureRecognizer()
    events = run([[palm()] for _ in range(30)] + [[fist()] for _ in range(8)] + [[palm()] for _ in range(30)], recognizer=rec)
    assert len(of(events, OpenPalm)) == 2
    assert of(run([[fist()] for _ in range(40)]), OpenPalm) == []


def test_pointing_gives_a_unit_ray_along_the_finger():
    angle = 30.0
    hand = make_hand(curl=(0.0, 1.0, 1.0, 1.0), thumb="tucked", angle=angle)
    events = run([[hand]] * 10)
    rays = of(events, PointingRay)
    assert len(rays) >= 8
    ray = rays[-1]
    assert np.linalg.norm(ray.direction) == pytest.approx(1.0)
    a = math.radians(angle)
    assert ray.direction == pytest.approx((-math.sin(a), -math.cos(a), 0.0), abs=1e-9)  # index axis, y down
    assert ray.origin == pytest.approx(tuple(hand[5]))
    assert not of(events, OpenPalm) and not of(events, Pinch)
    assert of(run([[make_hand(curl=0.0)]] * 10), PointingRay) == []  # all fingers out: not pointing
    # In a 4:3 image the ray is still the line through knuckle and tip, in the frame's coordinates.
    wide = hand.copy()
    wide[:, 0] /= 4 / 3
    ray = of(run([[wide]] * 10, aspect=4 / 3), PointingRay)[-1]
    expected = (wide[8] - wide[5]) / np.linalg.norm(wide[8] - wide[5])
    assert ray.direction == pytest.approx(tuple(expected), abs=1e-9)


# --- invariances -------------------------------------------------------------------------------------------

def gesture_script(rng: np.random.Generator, size: float, center=(0.5, 0.6)) -> list[list]:
    """Pinch, drag, release, point, open palm — with noise proportional to the hand."""
    steps = []
    for i, g in enumerate(gap_profile()):
        steps.append([jitter(rng, make_hand(gap=g, curl=0.3, size=size, center=(center[0] + 0.002 * i * size / 0.15, center[1])), size)])
    steps += [[jitter(rng, make_hand(curl=(0, 1, 1, 1), thumb="tucked", size=size, center=center), size)] for _ in range(10)]
    steps += [[jitter(rng, make_hand(curl=0.0, size=size, center=center), size)] for _ in range(15)]
    return steps


def signature(events: list[list]) -> list[tuple]:
    return [(i, type(e).__name__, getattr(e, "phase", "")) for i, s in enumerate(events) for e in s]


def test_half_size_hand_gives_the_same_events():
    full = run(gesture_script(np.random.default_rng(5), 0.15))
    half = run(gesture_script(np.random.default_rng(5), 0.075))
    assert signature(full) == signature(half)
    assert {"Pinch", "PointingRay", "OpenPalm"} <= {name for _, name, _ in signature(full)}
    for a, b in zip(of(full, Pinch), of(half, Pinch)):  # points scale about the wrist's start
        assert (b.x - 0.5, b.y - 0.6) == pytest.approx(((a.x - 0.5) / 2, (a.y - 0.6) / 2), abs=1e-9)


def to_xr_joints(p: np.ndarray, *, metres: float = 0.6, offset=(0.1, 1.2, -0.4)) -> np.ndarray:
    """The same hand as OpenXR would report it: metres, y up, z toward the viewer, 26 joints."""
    world = p * metres * np.array([1.0, -1.0, -1.0]) + np.array(offset)
    joints = np.zeros((26, 3))
    joints[list(XR_JOINT_FOR_LANDMARK)] = world
    for metacarpal, knuckle in ((6, 5), (11, 9), (16, 13), (21, 17)):
        joints[metacarpal] = world[0] + 0.3 * (world[knuckle] - world[0])
    joints[0] = (world[0] + world[9]) / 2  # palm centre
    return joints


def test_xr_joints_give_the_same_events_as_mediapipe_landmarks():
    steps = gesture_script(np.random.default_rng(11), 0.15)
    image = run(steps)
    rec, xr = GestureRecognizer(), []
    for i, step in enumerate(steps):
        xr.append(rec.update([frame_from_xr_joints("right", to_xr_joints(p), i / FPS) for p in step], i / FPS))
    assert signature(xr) == signature(image)
    for a, b in zip(of(image, Pinch), of(xr, Pinch)):
        assert (b.x, b.y) == pytest.approx((a.x * 0.6 + 0.1, -a.y * 0.6 + 1.2), abs=1e-9)
    ray_img, ray_xr = of(image, PointingRay)[-1], of(xr, PointingRay)[-1]
    assert ray_xr.direction == pytest.approx((ray_img.direction[0], -ray_img.direction[1], -ray_img.direction[2]), abs=1e-9)


def test_xr_joint_layout():
    joints = np.arange(26 * 3, dtype=float).reshape(26, 3)
    frame = frame_from_xr_joints("left", joints, 0.0)
    assert frame.landmarks[0].tolist() == joints[1].tolist()  # wrist
    assert frame.landmarks[4].tolist() == joints[5].tolist()  # thumb tip
    assert frame.landmarks[5].tolist() == joints[7].tolist()  # index knuckle = INDEX_PROXIMAL
    assert frame.landmarks[8].tolist() == joints[10].tolist()  # index tip
    assert frame.landmarks[20].tolist() == joints[25].tolist()  # little tip
    with pytest.raises(ValueError):
        frame_from_xr_joints("left", joints[:21], 0.0)


def test_config_rejects_inverted_thresholds():
    with pytest.raises(ValueError):
        GestureConfig(pinch_enter=0.4, pinch_exit=0.3)


# --- One Euro filter ---------------------------------------------------------------------------------------

def test_one_euro_passes_a_constant_unchanged():
    value = np.random.default_rng(0).random((21, 3))
    f = OneEuroFilter(min_cutoff=1.0, beta=0.5)
    t = 0.0
    for dt in (0.01, 0.033, 0.02, 0.05, 0.016):
        t += dt
        assert np.array_equal(f(value, t), value)


def test_one_euro_reduces_noise_on_a_still_signal():
    rng = np.random.default_rng(2)
    raw = 0.5 + rng.normal(0.0, 0.02, (300, 21, 3))
    f = OneEuroFilter(min_cutoff=1.5, beta=1.0)
    out = np.array([f(x, i / FPS) for i, x in enumerate(raw)])
    assert out[30:].var() < 0.2 * raw[30:].var()


def test_one_euro_follows_a_fast_step_within_a_few_frames():
    f = OneEuroFilter(min_cutoff=1.5, beta=1.0)
    slow = OneEuroFilter(min_cutoff=1.5, beta=0.0)  # the same filter without adaptation
    xs = [np.zeros(3)] * 10 + [np.array([1.0, 0.0, 0.0])] * 20
    out = [f(x, i / FPS)[0] for i, x in enumerate(xs)]
    plain = [slow(x, i / FPS)[0] for i, x in enumerate(xs)]
    within = next(i for i in range(10, 30) if out[i] > 0.9) - 10
    assert within <= 5
    assert next(i for i in range(10, 30) if plain[i] > 0.9) - 10 > within


def test_one_euro_ignores_a_repeated_timestamp():
    f = OneEuroFilter(beta=1.0)
    f(np.zeros(3), 0.0)
    first = f(np.ones(3), 0.1)
    assert np.array_equal(f(np.full(3, 5.0), 0.1), first)


# --- calibration -------------------------------------------------------------------------------------------

QUAD = [(0.22, 0.15), (0.81, 0.2), (0.76, 0.86), (0.27, 0.8)]


def test_corners_map_to_the_unit_square():
    cal = Calibration.fit(QUAD)
    for corner, expected in zip(QUAD, [(0, 0), (1, 0), (1, 1), (0, 1)]):
        assert cal.map(*corner) == pytest.approx(expected, abs=1e-9)
    u, v = cal.map(*np.mean(QUAD, axis=0))
    assert 0.2 < u < 0.8 and 0.2 < v < 0.8
    u, v = cal.map(0.05, 0.5)
    assert u < 0


def test_calibration_save_load_round_trip(tmp_path, monkeypatch):
    path = tmp_path / "sub" / "hand-calibration.json"
    cal = Calibration.fit(QUAD)
    assert cal.save(path) == path
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind
    loaded = Calibration.load(path)
    assert loaded.corners == cal.corners
    assert loaded.map(0.5, 0.5) == pytest.approx(cal.map(0.5, 0.5))
    assert json.loads(path.read_text())["version"] == 1
    monkeypatch.setenv("AIRQUILL_HAND_CALIBRATION", str(tmp_path / "x.json"))
    assert default_calibration_path() == tmp_path / "x.json"
    monkeypatch.delenv("AIRQUILL_HAND_CALIBRATION")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_calibration_path() == tmp_path / "airquill" / "hand-calibration.json"
    path.write_text("{not json")
    with pytest.raises(ValueError):
        Calibration.load(path)


@pytest.mark.parametrize("corners, message", [
    ([(0.2, 0.2)] * 4, "same point"),
    ([(0.2, 0.2), (0.8, 0.2), (0.8, 0.2), (0.2, 0.8)], "one line or the same point"),
    ([(0.1, 0.1), (0.5, 0.5), (0.9, 0.9), (0.1, 0.9)], "one line"),
    ([(0.2, 0.2), (0.8, 0.2), (0.2, 0.8), (0.8, 0.8)], "convex"),  # BR and BL swapped: a bow tie
])
def test_degenerate_corners_are_rejected(corners, message):
    with pytest.raises(ValueError, match=message):
        Calibration.fit(corners)


def test_calibration_session_with_the_recogniser():
    rec = GestureRecognizer()  # no calibration yet: the session sees camera points
    session = CalibrationSession()
    prompts = [session.prompt]
    reference = pinch_point(make_hand(gap=0.1)) - np.array([0.5, 0.6])  # pinch point relative to the centre
    t = 0.0
    for corner in QUAD[:3] + [QUAD[2]] + QUAD[3:]:  # the fourth pinch is a slip onto the third corner again
        center = tuple(np.array(corner) - reference)
        for g in [0.8] * 5 + [0.1] * 10 + [0.8] * 5 + [None] * 3:  # None: hand out of view while moving
            t += 1 / FPS
            hands = [] if g is None else [HandFrame("right", make_hand(gap=g, center=center), t)]
            for event in rec.update(hands, t):
                session.feed(event)
        prompts.append(session.prompt)
    assert prompts[:4] == [f"Pinch the {name} corner of the panel ({n}/4)." for n, name in
                           enumerate(("top-left", "top-right", "bottom-right", "bottom-left"), start=1)]
    assert prompts[4] == ("That is where you pinched the bottom-right corner. "
                          "Pinch the bottom-left corner of the panel (4/4).")
    assert prompts[5] == "Calibration done." and session.done and session.corner is None
    for corner, expected in zip(QUAD, [(0, 0), (1, 0), (1, 1), (0, 1)]):
        assert session.calibration.map(*corner) == pytest.approx(expected, abs=0.005)  # filter residue only
    rec.calibration = session.calibration  # from now on pinches arrive in panel coordinates
    middle = tuple(np.mean(QUAD, axis=0) - reference)
    start = of(run([[make_hand(gap=0.1, center=middle)]] * 4, recognizer=rec), Pinch, "start")[0]
    assert 0.3 < start.x < 0.7 and 0.3 < start.y < 0.7


def test_calibration_session_reasks_a_repeated_corner_and_restarts_on_a_bad_fit():
    session = CalibrationSession()
    session.feed(Pinch("end", "right", 0.2, 0.2, 0.0))
    session.feed(Pinch("start", "right", 0.8, 0.2, 0.1))  # only ends count
    session.feed(Pinch("end", "right", 0.205, 0.2, 0.2))
    assert "top-left" in session.prompt and session.corner == "top-right"
    for x, y in [(0.8, 0.2), (0.2, 0.8), (0.8, 0.8)]:  # out of order: a bow tie
        session.feed(Pinch("end", "right", x, y, 1.0))
    assert not session.done and session.corner == "top-left" and "Start again" in session.prompt


def test_xr_hand_frames_become_a_head_ray_and_a_pinch_on_the_panel_it_points_at():
    """The OpenXR host's per-frame step without a headset (none can exist here): synthetic joints in a LOCAL
    space (origin at the head) go through `xr_logic.hand_events`; every frame gives a head-to-pinch ray in
    scene coordinates, and the pinch lands on the panel that ray hits."""
    from airquill.vr_client.hosts.xr_logic import hand_events
    from airquill.vr_client.scene import EYE_HEIGHT, Panel, Scene, pick

    floor_to_space = np.eye(4)
    floor_to_space[1, 3] = -EYE_HEIGHT  # a LOCAL reference space: scene y = space y + eye height
    space_to_scene = np.linalg.inv(floor_to_space)
    head = np.array([0.0, EYE_HEIGHT, 0.0])
    recognizer, events = GestureRecognizer(), []
    for i, gap in enumerate(gap_profile()):  # hand 40 cm ahead of the eyes, slightly right and low
        joints = to_xr_joints(make_hand(gap=gap), metres=0.6, offset=(-0.2, 0.2, -0.4))
        events += hand_events({"right": joints, "left": None}, head, i / FPS, recognizer, space_to_scene)
    rays = [e for e in events if isinstance(e, PointingRay)]
    assert len(rays) == len(gap_profile())  # one per frame for the tracked hand
    assert all(abs(np.linalg.norm(r.direction) - 1) < 1e-9 and r.origin == tuple(head) for r in rays)
    starts = [e for e in events if isinstance(e, Pinch) and e.phase == "start"]
    ends = [e for e in events if isinstance(e, Pinch) and e.phase == "end"]
    assert len(starts) == 1 and len(ends) == 1
    ray = [r for r in rays if r.t <= starts[0].t][-1]  # the ray the controller holds when the pinch starts
    scene = Scene()
    panel = scene.add(Panel("p"))
    hit = pick(scene, np.array(ray.origin), np.array(ray.direction))
    assert hit is not None and hit[0] is panel and 0 <= hit[1] <= panel.width_em
