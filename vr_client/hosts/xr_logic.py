"""The parts of the OpenXR host that need no runtime, kept apart so they are tested directly:
the session lifecycle (spec §9.3, "Session Lifecycle"), the swapchain format choice and the hand-tracking
joints → input events step."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

# OpenGL internal formats a runtime may offer (values from the GL spec)
GL_SRGB8_ALPHA8 = 0x8C43
GL_SRGB8 = 0x8C41
GL_RGBA8 = 0x8058
GL_RGB10_A2 = 0x8059
GL_RGBA16F = 0x881A
PREFERRED_FORMATS = (GL_SRGB8_ALPHA8, GL_SRGB8, GL_RGBA8, GL_RGB10_A2, GL_RGBA16F)
SRGB_FORMATS = {GL_SRGB8_ALPHA8, GL_SRGB8}


def choose_swapchain_format(available: list[int]) -> tuple[int, bool]:
    """The first of our preferred colour formats the runtime offers, and whether it is sRGB.

    An sRGB format lets the compositor show our colours as authored: shaders write linear values and GL
    encodes them (GL_FRAMEBUFFER_SRGB). Runtimes list formats in their own order of preference; ours wins.
    """
    for fmt in PREFERRED_FORMATS:
        if fmt in available:
            return fmt, fmt in SRGB_FORMATS
    raise RuntimeError(f"the OpenXR runtime offers no colour format this client can render to: "
                       f"{[hex(f) for f in available]}")


class XrState(Enum):
    """XrSessionState values (OpenXR 1.0)."""

    UNKNOWN = 0
    IDLE = 1
    READY = 2
    SYNCHRONIZED = 3
    VISIBLE = 4
    FOCUSED = 5
    STOPPING = 6
    LOSS_PENDING = 7
    EXITING = 8


class Action(Enum):
    BEGIN_SESSION = "begin"  # call xrBeginSession
    END_SESSION = "end"  # call xrEndSession
    EXIT = "exit"  # leave the frame loop and destroy the session


@dataclass
class SessionLifecycle:
    state: XrState = XrState.UNKNOWN
    running: bool = False  # between xrBeginSession and xrEndSession: the frame loop runs
    exit_requested: bool = False
    history: list[XrState] = field(default_factory=list)

    @property
    def visible(self) -> bool:
        return self.running and self.state in (XrState.VISIBLE, XrState.FOCUSED)

    @property
    def focused(self) -> bool:
        return self.running and self.state is XrState.FOCUSED

    def on_state(self, state: XrState) -> list[Action]:
        """What the host must do after an XrEventDataSessionStateChanged."""
        self.state = state
        self.history.append(state)
        if state is XrState.READY and not self.running:
            self.running = True
            return [Action.BEGIN_SESSION]
        if state is XrState.STOPPING and self.running:
            self.running = False
            return [Action.END_SESSION]
        if state in (XrState.EXITING, XrState.LOSS_PENDING):
            self.exit_requested = True
            actions = [Action.END_SESSION] if self.running else []
            self.running = False
            return actions + [Action.EXIT]
        return []

    def on_instance_loss(self) -> list[Action]:
        self.exit_requested = True
        self.running = False
        return [Action.EXIT]


XR_THUMB_TIP, XR_INDEX_TIP = 5, 10  # XrHandJointEXT


def hand_events(joints: dict[str, np.ndarray | None], head: np.ndarray, t: float, recognizer,
                space_to_scene: np.ndarray) -> list:
    """Events from one frame of XR_EXT_hand_tracking: joints (26, 3) per tracked hand in the reference space.

    Joints are moved into scene coordinates first, so every point and ray the recogniser reports is in the
    scene. Each tracked hand also gets a head-to-pinch ray every frame (how headsets aim with bare hands):
    the controller uses it to find the panel a pinch lands on.
    """
    from airquill.vr_client.input.events import PointingRay
    from airquill.vr_client.input.gestures import frame_from_xr_joints

    events, frames = [], []
    for hand, points in joints.items():
        if points is None:
            continue
        scene = (space_to_scene[:3, :3] @ np.asarray(points, dtype=float).T).T + space_to_scene[:3, 3]
        frames.append(frame_from_xr_joints(hand, scene, t))
        aim = (scene[XR_THUMB_TIP] + scene[XR_INDEX_TIP]) / 2 - head
        length = float(np.linalg.norm(aim))
        if length > 1e-6:
            events.append(PointingRay(hand, tuple(float(v) for v in head), tuple(float(v) for v in aim / length), t))
    return events + recognizer.update(frames, t)
