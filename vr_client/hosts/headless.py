"""Headless host: EGL offscreen rendering (Mesa works without a display) into PNG frames and a GIF."""
from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import moderngl
import numpy as np

from airquill.vr_client.render.math3d import look_at, perspective
from airquill.vr_client.render.text_renderer import TextRenderer
from airquill.vr_client.scene import EYE_HEIGHT, Scene

BACKGROUND = (0.015, 0.02, 0.035, 1.0)


class HeadlessHost:
    def __init__(self, size: tuple[int, int] = (960, 600), *, fov_y: float = 50.0):
        try:
            self.ctx = moderngl.create_standalone_context(backend="egl")
        except Exception as err:  # no EGL, no GPU driver, no Mesa
            raise RuntimeError(f"cannot create an OpenGL context through EGL ({err}); install Mesa "
                               "(Debian: libegl1 libegl-mesa0 libgl1-mesa-dri)") from err
        self.size = size
        self.fbo = self.ctx.framebuffer(color_attachments=[self.ctx.texture(size, 4)],
                                        depth_attachment=self.ctx.depth_renderbuffer(size))
        self.renderer = TextRenderer(self.ctx)
        self.projection = perspective(fov_y, size[0] / size[1])
        self.view = look_at((0.0, EYE_HEIGHT, 0.0), (0.0, EYE_HEIGHT, -1.0))

    def frame(self, scene: Scene, time: float, *, view: np.ndarray | None = None,
              projection: np.ndarray | None = None) -> np.ndarray:
        """Render one frame and return it as an RGB array (rows top to bottom)."""
        self.fbo.use()
        self.fbo.clear(*BACKGROUND)
        self.renderer.render(scene, self.view if view is None else view,
                             self.projection if projection is None else projection, time)
        pixels = np.frombuffer(self.fbo.read(components=3), dtype=np.uint8)
        return pixels.reshape(self.size[1], self.size[0], 3)[::-1]

    def gl_error(self) -> str | None:
        error = self.ctx.error
        return None if error == "GL_NO_ERROR" else error

    def release(self) -> None:
        self.ctx.release()


def write_gif(frames: list[np.ndarray], path: Path, *, fps: float = 15.0) -> Path:
    """The frames as an animated GIF at `path` and as PNG files in a folder beside it (`demo/frame-000.png`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.stack(frames), duration=1000 / fps, loop=0)
    folder = path.with_suffix("")
    folder.mkdir(exist_ok=True)
    for index, frame in enumerate(frames):
        iio.imwrite(folder / f"frame-{index:03d}.png", frame)
    return path
