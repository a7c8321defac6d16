"""Hand landmarks → input events: pinch (and drag), two-hand grab, open palm, pointing ray.

The recogniser sees 21 landmarks per hand in MediaPipe's order, whether they come from the webcam
(`hands.HandLandmarkerPipeline`) or from an OpenXR runtime's XR_EXT_hand_tracking joints
(`frame_from_xr_joints`). Every threshold is a length divided by the hand's size (wrist to middle-finger
knuckle), so the same numbers work for normalised image coordinates and for metres, near or far from the camera.

Noise: landmarks are smoothed per hand with the One Euro filter, and every pose is a latch with hysteresis
(enter past one threshold, leave past a looser one) and a number of frames to confirm, so a hand hovering at a
threshold gives no flurry of events.

Rules the consumers can rely on:
- Pinch events of one hand are balanced: one `start`, `hold` on every later frame while pinched (the point moves
  with the hand: that is the drag), one `end` (also when the hand vanishes). The `end` carries the last point
  where the fingers were still closed, because the midpoint drifts while they open.
- Two hands pinching is a `TwoHandGrab`, not two pinches. When the second hand closes, the first hand's open
  pinch ends (its `end` comes right before the grab's `start`, same `t`); during the grab no Pinch events are
  sent; when either hand opens or vanishes the grab ends, and a hand that is still pinching stays silent until it
  opens (a new single pinch needs a new close), so a resize never turns into an accidental drag.
- `OpenPalm` fires once per opening of the hand; the palm has to close again before it can fire again.
- `PointingRay` is sent every frame while the hand points, from the index knuckle through the index tip.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from airquill.vr_client.input.events import Hand, OpenPalm, Pinch, PointingRay, TwoHandGrab
from airquill.vr_client.input.filters import OneEuroFilter

GestureEvent = Pinch | TwoHandGrab | OpenPalm | PointingRay

# MediaPipe hand landmark indices.
WRIST = 0
THUMB_CMC, THUMB_MCP, THUMB_IP, THUMB_TIP = 1, 2, 3, 4
INDEX_MCP, INDEX_PIP, INDEX_DIP, INDEX_TIP = 5, 6, 7, 8
MIDDLE_MCP, MIDDLE_PIP, MIDDLE_DIP, MIDDLE_TIP = 9, 10, 11, 12
RING_MCP, RING_PIP, RING_DIP, RING_TIP = 13, 14, 15, 16
PINKY_MCP, PINKY_PIP, PINKY_DIP, PINKY_TIP = 17, 18, 19, 20
FINGER_PIP_TIP = {"index": (INDEX_PIP, INDEX_TIP), "middle": (MIDDLE_PIP, MIDDLE_TIP),
                  "ring": (RING_PIP, RING_TIP), "pinky": (PINKY_PIP, PINKY_TIP)}

# XR_EXT_hand_tracking's XrHandJointEXT for each MediaPipe landmark. OpenXR has 26 joints: PALM=0, WRIST=1,
# THUMB_METACARPAL=2, THUMB_PROXIMAL=3, THUMB_DISTAL=4, THUMB_TIP=5, then for index (6-10), middle (11-15),
# ring (16-20) and little (21-25): METACARPAL, PROXIMAL, INTERMEDIATE, DISTAL, TIP. A joint sits at the base of
# the bone it is named after, so the finger's PROXIMAL joint is the knuckle (MediaPipe MCP), INTERMEDIATE the
# PIP, DISTAL the DIP; the thumb's METACARPAL joint is the CMC. PALM and the four finger METACARPAL joints
# (at the base of the palm) have no MediaPipe counterpart and are dropped.
XR_JOINT_FOR_LANDMARK: tuple[int, ...] = (
    1,               # wrist
    2, 3, 4, 5,      # thumb: CMC, MCP, IP, tip
    7, 8, 9, 10,     # index: MCP, PIP, DIP, tip
    12, 13, 14, 15,  # middle
    17, 18, 19, 20,  # ring
    22, 23, 24, 25,  # pinky (OpenXR: little)
)


@dataclass(frozen=True)
class HandFrame:
    """One hand in one frame: `landmarks` (21, 3) in MediaPipe's order.

    From the webcam the coordinates are normalised image coordinates (x, y in [0, 1], y down, z relative depth
    in x's scale) and `aspect` is the image's width / height, so geometry can undo the non-square normalisation;
    from OpenXR they are metres in the runtime's space and `aspect` is 1.
    """

    hand: Hand
    landmarks: np.ndarray
    t: float
    aspect: float = 1.0

    def __post_init__(self) -> None:
        if self.hand not in ("left", "right"):
            raise ValueError(f"hand must be 'left' or 'right', got {self.hand!r}")
        if np.shape(self.landmarks) != (21, 3):
            raise ValueError(f"landmarks must have shape (21, 3), got {np.shape(self.landmarks)}")


def frame_from_xr_joints(hand: Hand, joints: np.ndarray, t: float) -> HandFrame:
    """Map OpenXR XR_EXT_hand_tracking joint positions (26, 3), metres, to a HandFrame for the same recogniser."""
    joints = np.asarray(joints, dtype=float)
    if joints.shape != (26, 3):
        raise ValueError(f"OpenXR hand joints must have shape (26, 3), got {joints.shape}")
    return HandFrame(hand, joints[list(XR_JOINT_FOR_LANDMARK)].copy(), t, 1.0)


class PointMapper(Protocol):
    """What the recogniser needs of a calibration: camera point → pointer space."""

    def map(self, x: float, y: float) -> tuple[float, float]: ...


@dataclass(frozen=True)
class GestureConfig:
    """Thresholds in hand sizes (wrist to middle knuckle, ~9-10 cm on an adult hand), frame counts at ~30 fps."""

    pinch_enter: float = 0.25  # thumb-index tip gap that closes a pinch (~2.5 cm; touching tips read 0.1-0.2)
    pinch_exit: float = 0.40  # gap that opens it again (~4 cm): the band between absorbs jitter
    pinch_enter_frames: int = 2
    pinch_exit_frames: int = 2
    extend_margin: float = 0.20  # finger extended: tip farther from the wrist than its PIP by this much
    curl_margin: float = 0.0  # finger curled: tip no farther from the wrist than its PIP
    release_margin: float = 0.05  # open palm is over once some finger drops below this
    thumb_margin: float = 0.10  # thumb extended: tip farther from the little knuckle than the thumb IP by this
    palm_frames: int = 10  # ~1/3 s held before OpenPalm
    palm_release_frames: int = 3
    point_hysteresis: float = 0.10  # pointing ends once index/other fingers move this far back past their margins
    point_frames: int = 2
    min_cutoff: float = 1.5  # One Euro: Hz when still
    beta: float = 1.0  # One Euro: cutoff rise per hand size per second
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.pinch_enter < self.pinch_exit:
            raise ValueError(f"need 0 < pinch_enter < pinch_exit, got {self.pinch_enter}, {self.pinch_exit}")
        if self.release_margin >= self.extend_margin:
            raise ValueError("release_margin must be below extend_margin (hysteresis)")
        if min(self.pinch_enter_frames, self.pinch_exit_frames, self.palm_frames, self.palm_release_frames, self.point_frames) < 1:
            raise ValueError("frame counts must be >= 1")


class Latch:
    """A debounced boolean: turns on after `on_frames` consecutive `on` frames, off after `off_frames`
    consecutive `off` frames. Frames that are neither (between the two thresholds) reset both counts."""

    def __init__(self, *, on_frames: int, off_frames: int) -> None:
        self.on_frames, self.off_frames = on_frames, off_frames
        self.state, self._count = False, 0

    def step(self, *, on: bool, off: bool) -> bool:
        wanted = off if self.state else on
        self._count = self._count + 1 if wanted else 0
        if self._count >= (self.off_frames if self.state else self.on_frames):
            self.state, self._count = not self.state, 0
        return self.state

    def reset(self) -> None:
        self.state, self._count = False, 0


def hand_size(points: np.ndarray) -> float:
    """Wrist to middle-finger knuckle: the unit of every threshold (floored so a degenerate hand can't divide by 0)."""
    return max(float(np.linalg.norm(points[MIDDLE_MCP] - points[WRIST])), 1e-9)


def finger_extension(points: np.ndarray, size: float) -> dict[str, float]:
    """Per finger, (|tip - wrist| - |PIP - wrist|) / size: about +0.5 straight, below 0 curled into the palm."""
    wrist = points[WRIST]
    return {name: float(np.linalg.norm(points[tip] - wrist) - np.linalg.norm(points[pip] - wrist)) / size
            for name, (pip, tip) in FINGER_PIP_TIP.items()}


def thumb_extension(points: np.ndarray, size: float) -> float:
    """(|thumb tip - little knuckle| - |thumb IP - little knuckle|) / size: negative when tucked across the palm."""
    ref = points[PINKY_MCP]
    return float(np.linalg.norm(points[THUMB_TIP] - ref) - np.linalg.norm(points[THUMB_IP] - ref)) / size


@dataclass
class _HandState:
    filter: OneEuroFilter
    pinch: Latch
    palm: Latch
    point: Latch
    pinching: bool = False  # a single-hand Pinch is open (start sent, end not yet)
    silent: bool = False  # still pinched after a grab: no Pinch events until the fingers open
    palm_armed: bool = True
    last_point: tuple[float, float] = (0.0, 0.0)  # pointer-space pinch point at the last closed frame
    last_raw: np.ndarray = field(default_factory=lambda: np.zeros(2))  # same, isotropic camera space


class GestureRecognizer:
    """Feed it every frame's hands (`update`); it returns that frame's events. Not thread-safe: one producer."""

    def __init__(self, *, config: GestureConfig | None = None, calibration: PointMapper | None = None) -> None:
        self.config = config or GestureConfig()
        self.calibration = calibration  # None during calibration itself: points stay in camera space
        self._hands: dict[str, _HandState] = {}
        self._grab: dict | None = None  # {'d0': start distance, 'x', 'y', 'scale'} while grabbing

    def reset(self) -> None:
        """Forget all hands without sending events (e.g. after the producer restarts)."""
        self._hands.clear()
        self._grab = None

    def _new_state(self) -> _HandState:
        c = self.config
        return _HandState(
            filter=OneEuroFilter(min_cutoff=c.min_cutoff, beta=c.beta, d_cutoff=c.d_cutoff),
            pinch=Latch(on_frames=c.pinch_enter_frames, off_frames=c.pinch_exit_frames),
            palm=Latch(on_frames=c.palm_frames, off_frames=c.palm_release_frames),
            point=Latch(on_frames=c.point_frames, off_frames=c.point_frames),
        )

    def _map(self, x: float, y: float) -> tuple[float, float]:
        return self.calibration.map(x, y) if self.calibration is not None else (float(x), float(y))

    def update(self, hands: list[HandFrame], t: float) -> list[GestureEvent]:
        """One frame: the hands seen now (a hand missing from the list has vanished). Each hand's landmarks are
        filtered at its own `HandFrame.t` (capture time); the events carry `t`. Returns the events in the order:
        pinch ends, grab, pinch starts/holds, open palms, pointing rays."""
        c = self.config
        ends: list[GestureEvent] = []
        pinches: list[GestureEvent] = []
        others: list[GestureEvent] = []
        seen: dict[str, tuple[HandFrame, np.ndarray, np.ndarray, float]] = {}
        for frame in hands:
            if frame.hand in seen:  # a second hand with the same label: keep the first (the tracker's best)
                continue
            scale = np.array([frame.aspect, 1.0, frame.aspect])
            raw = np.asarray(frame.landmarks, dtype=float) * scale  # isotropic: x, y, z in one unit
            if frame.hand not in self._hands:
                self._hands[frame.hand] = self._new_state()
            state = self._hands[frame.hand]
            pts = state.filter(raw, frame.t, speed_scale=hand_size(raw))
            seen[frame.hand] = (frame, pts, scale, hand_size(pts))

        for name in list(self._hands):  # vanished hands: close what they had open, forget their history
            if name not in seen:
                state = self._hands.pop(name)
                if state.pinching:
                    ends.append(Pinch("end", name, *state.last_point, t))

        pinched: dict[str, bool] = {}
        for name, (frame, pts, scale, size) in seen.items():
            state = self._hands[name]
            gap = float(np.linalg.norm(pts[THUMB_TIP] - pts[INDEX_TIP])) / size
            pinched[name] = state.pinch.step(on=gap < c.pinch_enter, off=gap > c.pinch_exit)
            if gap <= c.pinch_exit:
                mid = (pts[THUMB_TIP] + pts[INDEX_TIP]) / 2.0
                state.last_raw = mid[:2].copy()
                state.last_point = self._map(mid[0] / scale[0], mid[1])
            if not pinched[name]:
                state.silent = False

        grab_events = self._update_grab(pinched, ends, t)

        for name, (frame, pts, scale, size) in seen.items():
            state = self._hands[name]
            if self._grab is not None or state.silent:
                pass
            elif pinched[name]:
                pinches.append(Pinch("hold" if state.pinching else "start", name, *state.last_point, t))
                state.pinching = True
            elif state.pinching:
                ends.append(Pinch("end", name, *state.last_point, t))
                state.pinching = False
            others.extend(self._palm_and_point(name, state, pts, scale, size, pinched[name], t))
        return ends + grab_events + pinches + others

    def _update_grab(self, pinched: dict[str, bool], ends: list[GestureEvent], t: float) -> list[GestureEvent]:
        both = len(pinched) == 2 and all(pinched.values())
        if self._grab is not None:
            if not both:
                g, self._grab = self._grab, None
                for name, on in pinched.items():
                    self._hands[name].silent = on
                return [TwoHandGrab("end", g["x"], g["y"], g["scale"], t)]
            phase = "hold"
        elif both:
            for name in ("left", "right"):
                state = self._hands[name]
                if state.pinching:
                    ends.append(Pinch("end", name, *state.last_point, t))
                    state.pinching = False
            phase = "start"
        else:
            return []
        left, right = self._hands["left"], self._hands["right"]
        distance = float(np.linalg.norm(left.last_raw - right.last_raw))
        if phase == "start":
            self._grab = {"d0": max(distance, 1e-9)}
        assert self._grab is not None
        (lx, ly), (rx, ry) = left.last_point, right.last_point
        self._grab.update(x=(lx + rx) / 2.0, y=(ly + ry) / 2.0, scale=distance / self._grab["d0"])
        return [TwoHandGrab(phase, self._grab["x"], self._grab["y"], self._grab["scale"], t)]

    def _palm_and_point(self, name: str, state: _HandState, pts: np.ndarray, scale: np.ndarray, size: float,
                        pinched: bool, t: float) -> list[GestureEvent]:
        c = self.config
        ext = finger_extension(pts, size)
        # The thumb's own margin, shifted onto the fingers' scale, so one number decides "every digit extended".
        least = min(min(ext.values()), thumb_extension(pts, size) - c.thumb_margin + c.extend_margin)
        palm = state.palm.step(on=least > c.extend_margin and not pinched, off=least < c.release_margin or pinched)
        events: list[GestureEvent] = []
        if palm and state.palm_armed:
            events.append(OpenPalm(name, t))
            state.palm_armed = False
        elif not palm:
            state.palm_armed = True

        others = max(ext["middle"], ext["ring"], ext["pinky"])
        pointing = state.point.step(
            on=ext["index"] > c.extend_margin and others < c.curl_margin and not pinched,
            off=ext["index"] < c.extend_margin - c.point_hysteresis or others > c.curl_margin + c.point_hysteresis or pinched,
        )
        if pointing and self._grab is None:
            origin = pts[INDEX_MCP] / scale
            direction = (pts[INDEX_TIP] - pts[INDEX_MCP]) / scale  # back in the frame's own coordinates
            norm = float(np.linalg.norm(direction))
            if norm > 0:
                events.append(PointingRay(name, tuple(float(v) for v in origin),
                                          tuple(float(v) for v in direction / norm), t))
        return events
