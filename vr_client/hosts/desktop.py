"""Desktop host: the same scene in a glfw window. Right-drag looks around (WASD moves while it is held), a
left click selects the panel under the pointer and dragging selects a span; typing, Enter, Backspace and the
shortcuts (Ctrl+Z undo, Ctrl+Y redo, Ctrl+R rewrite the span, Delete, Ctrl+S save, Ctrl+N new panel,
Ctrl+G regenerate, Tab next panel, Esc cancel, Ctrl+Q quit) become input events on `inputs`, like any
other input producer's."""
from __future__ import annotations

import math
import queue
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from airquill.vr_client.input.events import Command, KeyPress
from airquill.vr_client.render.math3d import look_at, perspective
from airquill.vr_client.scene import EYE_HEIGHT, Panel, Scene, pick

MOVE_SPEED = 1.2  # metres per second
LOOK_SPEED = 0.004  # radians per pixel


@dataclass
class Camera:
    position: np.ndarray = field(default_factory=lambda: np.array([0.0, EYE_HEIGHT, 0.0]))
    yaw: float = 0.0  # 0 looks down -z
    pitch: float = 0.0

    @property
    def forward(self) -> np.ndarray:
        return np.array([-math.sin(self.yaw) * math.cos(self.pitch), math.sin(self.pitch),
                         -math.cos(self.yaw) * math.cos(self.pitch)])

    def view(self) -> np.ndarray:
        return look_at(self.position, self.position + self.forward)


class DesktopHost:
    def __init__(self, size: tuple[int, int] = (1280, 800), *, title: str = "airquill"):
        import glfw
        import moderngl

        if not glfw.init():
            raise RuntimeError("no display for a desktop window (set DISPLAY, or use `airquill demo`, which "
                               "falls back to headless rendering)")
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
        glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
        glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)
        self.glfw = glfw
        self.window = glfw.create_window(size[0], size[1], title, None, None)
        if not self.window:
            glfw.terminate()
            raise RuntimeError("could not open a window with OpenGL 3.3")
        glfw.make_context_current(self.window)
        glfw.swap_interval(1)
        self.ctx = moderngl.create_context()
        from airquill.vr_client.render.text_renderer import TextRenderer

        self.renderer = TextRenderer(self.ctx)
        self.camera = Camera()
        self.inputs: queue.Queue = queue.Queue()  # KeyPress and Command events for the controller
        self._drag: tuple[float, float] | None = None
        self._span: int | None = None  # token where a left-drag started
        self.scene: Scene | None = None
        glfw.set_char_callback(self.window, lambda w, codepoint: self.type_char(chr(codepoint)))
        glfw.set_key_callback(self.window, lambda w, key, sc, action, mods: self.key(key, action, mods))
        glfw.set_mouse_button_callback(self.window, lambda w, button, action, mods: self.mouse(button, action))
        glfw.set_cursor_pos_callback(self.window, lambda w, x, y: self.cursor(x, y))

    # --- input (glfw callbacks; tests call them directly) -------------------------------------------------

    def selected(self) -> Panel | None:
        return next((p for p in self.scene.panels if p.selected), None) if self.scene else None

    def type_char(self, char: str) -> None:
        self.inputs.put(KeyPress(char, self.glfw.get_time()))

    def key(self, key: int, action: int, mods: int = 0) -> None:
        glfw = self.glfw
        if action not in (glfw.PRESS, glfw.REPEAT):
            return
        t = glfw.get_time()
        ctrl = bool(mods & glfw.MOD_CONTROL)
        shortcuts = {glfw.KEY_Z: "undo", glfw.KEY_Y: "redo", glfw.KEY_R: "rewrite", glfw.KEY_S: "save",
                     glfw.KEY_N: "new_panel", glfw.KEY_G: "regenerate"}
        if ctrl and key == glfw.KEY_Q:
            glfw.set_window_should_close(self.window, True)
        elif ctrl and key in shortcuts:
            self.inputs.put(Command(shortcuts[key], t=t))
        elif key == glfw.KEY_BACKSPACE:
            self.inputs.put(KeyPress("backspace", t))
        elif key in (glfw.KEY_ENTER, glfw.KEY_KP_ENTER):
            self.inputs.put(KeyPress("enter", t))
        elif key == glfw.KEY_DELETE:
            self.inputs.put(Command("delete", t=t))
        elif key == glfw.KEY_TAB:
            self.inputs.put(Command("next_chapter", t=t))
        elif key == glfw.KEY_ESCAPE:
            self.inputs.put(Command("cancel", t=t))

    def select(self, panel: Panel | None) -> None:
        for p in self.scene.panels:
            if p.selected != (p is panel):
                p.selected = p is panel
                p.touch()

    def mouse(self, button: int, action: int) -> None:
        """Right button: look around. Left button: the pointer — press selects the panel under it and starts
        a span at the token there, dragging extends the span."""
        glfw = self.glfw
        x, y = glfw.get_cursor_pos(self.window)
        if button == glfw.MOUSE_BUTTON_RIGHT:
            self._drag = (x, y) if action == glfw.PRESS else None
        elif button == glfw.MOUSE_BUTTON_LEFT and self.scene:
            if action == glfw.PRESS:
                hit = pick(self.scene, self.camera.position, self.pointer_ray(x, y))
                self.select(hit[0] if hit else None)
                self._span = self._token_at(hit) if hit else None
                if hit and self._span is not None:
                    hit[0].select_span(self._span, self._span)
            else:
                self._span = None

    def cursor(self, x: float, y: float) -> None:
        if self._drag is not None:
            dx, dy = x - self._drag[0], y - self._drag[1]
            self.camera.yaw -= dx * LOOK_SPEED
            self.camera.pitch = max(-1.4, min(1.4, self.camera.pitch - dy * LOOK_SPEED))
            self._drag = (x, y)
        elif self._span is not None and self.scene:
            hit = pick(self.scene, self.camera.position, self.pointer_ray(x, y))
            token = self._token_at(hit) if hit and hit[0] is self.selected() else None
            if token is not None:
                hit[0].select_span(self._span, token)

    def _token_at(self, hit: tuple[Panel, float, float]) -> int | None:
        return self.renderer.token_at(*hit)

    def pointer_ray(self, x: float, y: float) -> np.ndarray:
        width, height = self.glfw.get_framebuffer_size(self.window)
        inverse = np.linalg.inv(self.projection((width, height)) @ self.camera.view())
        ndc = np.array([2 * x / max(1, width) - 1, 1 - 2 * y / max(1, height), 1.0, 1.0])
        far = inverse @ ndc
        direction = far[:3] / far[3] - self.camera.position
        return direction / np.linalg.norm(direction)

    @staticmethod
    def projection(size: tuple[int, int]) -> np.ndarray:
        return perspective(60.0, size[0] / max(1, size[1]))

    # --- the loop ------------------------------------------------------------------------------------------

    def frame(self, scene: Scene, time: float, dt: float) -> None:
        glfw = self.glfw
        keys = {glfw.KEY_W: (0, 1), glfw.KEY_S: (0, -1), glfw.KEY_A: (-1, 0), glfw.KEY_D: (1, 0)}
        if self._drag is not None:  # while looking around (right button held), WASD moves; otherwise it types
            for key, (side, ahead) in keys.items():
                if glfw.get_key(self.window, key) == glfw.PRESS:
                    forward = self.camera.forward * np.array([1, 0, 1])
                    right = np.cross(forward, [0, 1, 0])
                    self.camera.position += (ahead * forward + side * right) * MOVE_SPEED * dt
        width, height = glfw.get_framebuffer_size(self.window)
        self.ctx.viewport = (0, 0, width, height)
        self.ctx.screen.use()
        self.ctx.clear(0.015, 0.02, 0.035, 1.0)
        self.renderer.render(scene, self.camera.view(), self.projection((width, height)), time)

    def run(self, scene: Scene, *, before_frame: Callable[[float], None] = lambda t: None,
            max_frames: int | None = None) -> None:
        glfw = self.glfw
        self.scene = scene
        last, frames = glfw.get_time(), 0
        while not glfw.window_should_close(self.window) and (max_frames is None or frames < max_frames):
            glfw.poll_events()
            now = glfw.get_time()
            before_frame(now)
            self.frame(scene, now, now - last)
            glfw.swap_buffers(self.window)
            last, frames = now, frames + 1

    def close(self) -> None:
        self.glfw.destroy_window(self.window)
        self.glfw.terminate()
