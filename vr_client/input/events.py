"""The plain events that input producers put on the frame loop's queue.

Producers (webcam hands, OpenXR hand joints, voice, the virtual keyboard) run in their own threads; the frame
loop drains one `queue.Queue` per frame and turns events into actions. Events are small frozen dataclasses with
no references to devices, models or GL. Pointer coordinates `x, y` are in *pointer space*: the unit square of
the calibrated target (a panel: 0,0 top-left, 1,1 bottom-right) once calibration exists, the camera's
normalised image coordinates before. `t` is the producer's clock in seconds (monotonic).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Hand = Literal["left", "right"]
Phase = Literal["start", "hold", "end"]


@dataclass(frozen=True)
class Pinch:
    """Thumb and index tip together: start, hold (every frame while held, with the current point), end."""

    phase: Phase
    hand: Hand
    x: float
    y: float
    t: float


@dataclass(frozen=True)
class TwoHandGrab:
    """Both hands pinching: move (centre) and resize (`scale`, hand distance over the distance at start)."""

    phase: Phase
    x: float
    y: float
    scale: float
    t: float


@dataclass(frozen=True)
class OpenPalm:
    """All fingers extended and held for a moment: cancel."""

    hand: Hand
    t: float


@dataclass(frozen=True)
class PointingRay:
    """Index finger extended, the others curled: a ray from the knuckle through the fingertip."""

    hand: Hand
    origin: tuple[float, float, float]
    direction: tuple[float, float, float]  # unit length
    t: float


@dataclass(frozen=True)
class Letter:
    """An air-written stroke recognised as a character (or an edit mark: '\\b' backspace, ' ' space, '\\n' enter)."""

    char: str
    score: float  # recogniser's match score in [0, 1]
    t: float


@dataclass(frozen=True)
class Utterance:
    """Speech recognised so far (`final=False`, shown live) or the final result of one utterance."""

    text: str
    final: bool
    t: float


@dataclass(frozen=True)
class VoiceCommand:
    """A spoken command from the grammar (generate, regenerate, rewrite, delete, undo, redo, save, new_panel,
    next_chapter, cancel), with the words that followed it (e.g. the prompt after "generate")."""

    name: str
    argument: str
    language: str
    t: float


@dataclass(frozen=True)
class Command:
    """An editing command from a shortcut or a button (spoken commands arrive as `VoiceCommand`): generate,
    regenerate, rewrite, delete, undo, redo, save, new_panel, next_chapter, cancel."""

    name: str
    argument: str = ""
    t: float = 0.0


@dataclass(frozen=True)
class KeyPress:
    """A key of the virtual keyboard: a character, or one of 'backspace', 'enter', 'shift', 'layout'."""

    key: str
    t: float


@dataclass(frozen=True)
class InputUnavailable:
    """A producer could not start (no webcam, no microphone, no model); the client keeps the other inputs."""

    source: str
    message: str


InputEvent = (Pinch | TwoHandGrab | OpenPalm | PointingRay | Letter | Utterance | VoiceCommand | Command | KeyPress
              | InputUnavailable)
