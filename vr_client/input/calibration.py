"""Pointer calibration: camera pinch points → the unit square of a panel (0,0 top-left, 1,1 bottom-right).

The webcam sees the hand from wherever it stands, so a pinch point in image coordinates says nothing about
where on the panel the user meant. The user pinches the panel's four corners once (top-left, top-right,
bottom-right, bottom-left); a homography through those four points maps every later pinch point onto the panel,
including the perspective of a camera that looks at the hand at an angle. The result is kept in a small JSON file.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Sequence

import numpy as np

from airquill.shared.book import write_atomic
from airquill.vr_client.input.events import Pinch

CORNER_NAMES = ("top-left", "top-right", "bottom-right", "bottom-left")
UNIT_SQUARE = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))
CALIBRATION_ENV = "AIRQUILL_HAND_CALIBRATION"
FORMAT_VERSION = 1


def default_calibration_path() -> Path:
    """$AIRQUILL_HAND_CALIBRATION, else $XDG_CONFIG_HOME (or ~/.config)/airquill/hand-calibration.json."""
    if os.environ.get(CALIBRATION_ENV):
        return Path(os.environ[CALIBRATION_ENV]).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "airquill" / "hand-calibration.json"


def _cross(a: np.ndarray, b: np.ndarray) -> float:
    return float(a[0] * b[1] - a[1] * b[0])


def check_corners(corners: np.ndarray, *, min_area_ratio: float = 1e-2) -> None:
    """Raise ValueError unless the four corners form a proper convex quadrilateral in the given order.

    Duplicates or three points on a line leave the homography undetermined (or wildly unstable), and corners
    pinched out of order give a self-intersecting quadrilateral that no homography of a square can produce.
    """
    corners = np.asarray(corners, dtype=float)
    if corners.shape != (4, 2) or not np.all(np.isfinite(corners)):
        raise ValueError(f"calibration needs 4 finite (x, y) corners, got shape {corners.shape}")
    span = max(float(np.linalg.norm(a - b)) for a, b in combinations(corners, 2))
    if span < 1e-9:
        raise ValueError("calibration corners are all the same point; pinch the four corners of the panel")
    for i, j, k in combinations(range(4), 3):
        if abs(_cross(corners[j] - corners[i], corners[k] - corners[i])) < min_area_ratio * span * span:
            names = ", ".join(CORNER_NAMES[n] for n in (i, j, k))
            raise ValueError(f"calibration corners {names} are (nearly) on one line or the same point; "
                             "pinch four distinct corners of the panel")
    turns = [_cross(corners[(n + 1) % 4] - corners[n], corners[(n + 2) % 4] - corners[(n + 1) % 4]) for n in range(4)]
    if not (all(v > 0 for v in turns) or all(v < 0 for v in turns)):
        raise ValueError("calibration corners do not form a convex quadrilateral in the order "
                         f"{', '.join(CORNER_NAMES)}; pinch them in that order")


def homography(src: Sequence[Sequence[float]], dst: Sequence[Sequence[float]]) -> np.ndarray:
    """The 3×3 homography H (H[2,2] = 1) with H·src_i ∝ dst_i for four point pairs: direct linear transform."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst):
        rows.append([x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y])
        rows.append([0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y])
        rhs += [u, v]
    try:
        h = np.linalg.solve(np.array(rows, dtype=float), np.array(rhs, dtype=float))
    except np.linalg.LinAlgError as exc:
        raise ValueError(f"calibration corners are degenerate: {exc}") from exc
    return np.append(h, 1.0).reshape(3, 3)


@dataclass(frozen=True)
class Calibration:
    """A fitted camera → panel mapping. `corners` are the camera points pinched at TL, TR, BR, BL."""

    corners: tuple[tuple[float, float], ...]
    matrix: np.ndarray

    @classmethod
    def fit(cls, corners: Sequence[Sequence[float]]) -> Calibration:
        """Fit from four camera points (TL, TR, BR, BL); ValueError if they are degenerate."""
        pts = np.asarray(corners, dtype=float)
        check_corners(pts)
        return cls(tuple((float(x), float(y)) for x, y in pts), homography(pts, UNIT_SQUARE))

    def map(self, x: float, y: float) -> tuple[float, float]:
        """Camera point → pointer space (unit square of the panel; outside the panel maps outside [0, 1])."""
        u, v, w = self.matrix @ np.array([x, y, 1.0])
        if abs(w) < 1e-12:  # on the horizon of the mapping: infinitely far, keep the direction
            w = 1e-12 if w >= 0 else -1e-12
        return float(u / w), float(v / w)

    def to_json(self) -> dict:
        return {"version": FORMAT_VERSION, "corners": [list(c) for c in self.corners],
                "homography": self.matrix.tolist()}

    @classmethod
    def from_json(cls, data: dict) -> Calibration:
        """Rebuild from `to_json` output; the corners are the truth (the matrix is refitted and so re-checked)."""
        if data.get("version") != FORMAT_VERSION or "corners" not in data:
            raise ValueError(f"not an airquill hand calibration (version {data.get('version')!r})")
        return cls.fit(data["corners"])

    def save(self, path: Path | None = None) -> Path:
        """Write atomically (temp file, fsync, rename), so a crash never leaves half a file; returns the path."""
        path = Path(path) if path is not None else default_calibration_path()
        write_atomic(path, json.dumps(self.to_json(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: Path | None = None) -> Calibration:
        """Read a saved calibration (FileNotFoundError if none, ValueError if it is malformed)."""
        path = Path(path) if path is not None else default_calibration_path()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
        return cls.from_json(data)


class CalibrationSession:
    """Guided calibration: show `prompt`, feed the recogniser's events to `feed`; after the fourth corner
    `calibration` is set (and returned by `feed`). Feed it events from a recogniser without a calibration,
    so the points are camera points. A corner pinched too close to an earlier one is asked for again, and
    four corners that fit no quadrilateral restart the session with the reason in the prompt."""

    def __init__(self, *, min_separation: float = 0.02) -> None:
        self.min_separation = min_separation
        self.points: list[tuple[float, float]] = []
        self.calibration: Calibration | None = None
        self.problem = ""

    @property
    def done(self) -> bool:
        return self.calibration is not None

    @property
    def corner(self) -> str | None:
        """The corner being asked for, None when done."""
        return None if self.done else CORNER_NAMES[len(self.points)]

    @property
    def prompt(self) -> str:
        """The line to show the user now."""
        if self.done:
            return "Calibration done."
        ask = f"Pinch the {self.corner} corner of the panel ({len(self.points) + 1}/4)."
        return f"{self.problem} {ask}" if self.problem else ask

    def feed(self, event: object) -> Calibration | None:
        """Take one event; only a Pinch `end` counts (the point where the fingers were last closed)."""
        if self.done or not isinstance(event, Pinch) or event.phase != "end":
            return self.calibration
        point = (float(event.x), float(event.y))
        for name, earlier in zip(CORNER_NAMES, self.points):
            if np.hypot(point[0] - earlier[0], point[1] - earlier[1]) < self.min_separation:
                self.problem = f"That is where you pinched the {name} corner."
                return None
        self.points.append(point)
        self.problem = ""
        if len(self.points) == 4:
            try:
                self.calibration = Calibration.fit(self.points)
            except ValueError as exc:
                self.points.clear()
                self.problem = f"Those corners don't work ({exc}). Start again."
        return self.calibration
