"""The scene: panels of condensing text floating in 3D. It knows nothing about hosts, clocks or sockets:
`Scene.render(view, projection, time)` draws into whatever framebuffer is bound."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from airquill.shared.text_state import TextState

EYE_HEIGHT = 1.6  # metres, standing
READING_DISTANCE = 1.75  # metres: VR reading comfort is 1.5–2 m
EM = 0.032  # metres per em at 1.75 m: 1.05° per em, glyph cap height ≈ 0.76° (comfortable ≥ 0.65°)


@dataclass
class Panel:
    panel_id: str
    title: str = ""
    position: tuple[float, float, float] = (0.0, EYE_HEIGHT, -READING_DISTANCE)  # centre, metres
    yaw: float = 0.0  # radians about +y; 0 faces +z (towards a viewer at the origin looking down -z)
    pitch: float = 0.0
    width: float = 1.1  # metres
    height: float = 0.7
    em: float = EM
    text: TextState = field(default_factory=TextState)
    prompt: str = ""
    controls: object = None  # the protocol Controls its text was asked for (keywords, length, style), if any
    model: str = ""
    tokens_per_s: float = 0.0
    selection: tuple[int, int] | None = None  # token positions [start, end)
    cursor: int | None = None  # token position the cursor stands before
    selected: bool = False
    persist: bool = True  # saved with the session (the keyboard and prompt panels are not)
    version: int = 0  # bump whenever anything above changes; the renderer re-uploads then

    def touch(self) -> None:
        self.version += 1

    def select_span(self, anchor: int, token: int) -> None:
        """Select the tokens from the one a drag started on to the one under the pointer, both included."""
        span = (min(anchor, token), max(anchor, token) + 1)
        if self.selection != span:
            self.selection, self.cursor = span, span[1]
            self.touch()

    @property
    def status(self) -> str:
        t = self.text
        return (f"step {t.step}/{t.total} · {t.settled}/{len(t.cells)} tokens · {self.tokens_per_s:,.0f} tok/s"
                + (f" · {self.model}" if self.model else ""))

    @property
    def width_em(self) -> float:
        return self.width / self.em

    def model_matrix(self) -> np.ndarray:
        """Panel em space (x right, y down from the top-left corner) to world space (metres)."""
        cy, sy, cp, sp = math.cos(self.yaw), math.sin(self.yaw), math.cos(self.pitch), math.sin(self.pitch)
        yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        pitch = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
        rotation = yaw @ pitch
        right, up = rotation[:, 0], rotation[:, 1]
        m = np.eye(4)
        m[:3, 0] = right * self.em
        m[:3, 1] = -up * self.em
        m[:3, 2] = rotation[:, 2]
        m[:3, 3] = np.array(self.position) - right * self.width / 2 + up * self.height / 2
        return m


def arc_placement(count: int, *, radius: float = READING_DISTANCE, spread_deg: float = 50.0,
                  height: float = EYE_HEIGHT) -> list[tuple[tuple[float, float, float], float]]:
    """Positions and yaws for panels on an arc facing a viewer at the origin."""
    if count == 1:
        return [((0.0, height, -radius), 0.0)]
    out = []
    for i in range(count):
        angle = math.radians(-spread_deg / 2 + spread_deg * i / (count - 1))
        out.append(((radius * math.sin(angle), height, -radius * math.cos(angle)), -angle))
    return out


@dataclass
class Scene:
    panels: list[Panel] = field(default_factory=list)

    def add(self, panel: Panel) -> Panel:
        self.panels.append(panel)
        return panel

    def panel(self, panel_id: str) -> Panel:
        return next(p for p in self.panels if p.panel_id == panel_id)


def pick_panel(scene: Scene, origin: np.ndarray, direction: np.ndarray) -> Panel | None:
    """The nearest panel hit by a ray (the pointer), if any."""
    hit = pick(scene, origin, direction)
    return hit[0] if hit else None


def pick(scene: Scene, origin: np.ndarray, direction: np.ndarray) -> tuple[Panel, float, float] | None:
    """The nearest panel hit by a ray and the hit point in its em space (x right, y down)."""
    best, hit = math.inf, None
    for panel in scene.panels:
        model = panel.model_matrix()
        normal = model[:3, 2]
        denom = float(np.dot(normal, direction))
        if abs(denom) < 1e-9:
            continue
        t = float(np.dot(normal, model[:3, 3] - origin)) / denom
        if not 0 < t < best:
            continue
        local = np.linalg.solve(model, np.append(origin + t * direction, 1.0))  # to em space
        if -1 <= local[0] <= panel.width_em + 1 and -1 <= local[1] <= panel.height / panel.em:
            best, hit = t, (panel, float(local[0]), float(local[1]))
    return hit
