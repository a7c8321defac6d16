"""The book view: up to 100 chapter panels on a shelf around the reader, all condensing at once; picking one
brings it to reading distance in front of the reader."""
from __future__ import annotations

import math

from airquill.vr_client.scene import EYE_HEIGHT, READING_DISTANCE, Panel, Scene

SHELF_RADIUS = 2.6  # metres: the shelf stands a little behind reading distance
PANEL_WIDTH, PANEL_HEIGHT = 0.42, 0.3
MAX_PANELS = 100


def shelf_placement(count: int, *, per_row: int = 20, arc_deg: float = 300.0,
                    row_gap: float = 0.36) -> list[tuple[tuple[float, float, float], float]]:
    """Panels in rows on a cylinder around the reader (facing inwards), rows centred on eye height."""
    if not 0 < count <= MAX_PANELS:
        raise ValueError(f"the book view shows 1 to {MAX_PANELS} chapters, got {count}")
    rows = math.ceil(count / per_row)
    out = []
    for index in range(count):
        row, col = divmod(index, per_row)
        in_row = min(per_row, count - row * per_row)
        step = arc_deg / per_row
        angle = math.radians(-step * (in_row - 1) / 2 + step * col)
        height = EYE_HEIGHT + (rows - 1) / 2 * row_gap - row * row_gap
        out.append(((SHELF_RADIUS * math.sin(angle), height, -SHELF_RADIUS * math.cos(angle)), -angle))
    return out


def book_scene(titles: list[str]) -> Scene:
    scene = Scene()
    for i, (title, (position, yaw)) in enumerate(zip(titles, shelf_placement(len(titles)))):
        scene.add(Panel(f"chapter-{i + 1}", title=title, position=position, yaw=yaw, width=PANEL_WIDTH,
                        height=PANEL_HEIGHT, em=0.016))
    return scene


def open_chapter(scene: Scene, panel: Panel, *, facing_yaw: float = 0.0) -> None:
    """Bring a chapter to reading distance in the direction the reader faces, larger; the others stay."""
    panel.position = (READING_DISTANCE * -math.sin(facing_yaw), EYE_HEIGHT, -READING_DISTANCE * math.cos(facing_yaw))
    panel.yaw, panel.width, panel.height, panel.em = facing_yaw, 1.1, 0.7, 0.032
    for other in scene.panels:
        if other.selected != (other is panel):
            other.selected = other is panel
            other.touch()
    panel.touch()
