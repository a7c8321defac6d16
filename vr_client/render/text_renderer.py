"""Instanced glyph quads: one draw call per panel, per-glyph attributes in a GPU buffer that is rewritten only
when the panel changes. Noise flicker, the easing of a committed glyph out of the noise and the glide of
glyphs to new places all run in the vertex shader from the frame time, so a frame costs no per-glyph Python.
"""
from __future__ import annotations

from time import perf_counter

import moderngl
import numpy as np

from airquill.vr_client.scene import Panel, Scene
from airquill.vr_client.text.atlas import GlyphAtlas
from airquill.vr_client.render.panel_text import FLOATS, MOVE_S, PanelText

ROW_BYTES = FLOATS * 4

EASE_S = 0.2  # a committed glyph condenses out of the noise over 200 ms
NOISE_GLYPHS = "abcdefghijklmnopqrstuvwxyzæøßþ#%&@§"

VERTEX = """
#version 330
in vec2 corner;
in vec2 from_xy; in vec2 to_xy; in float move_t;
in vec4 quad; in vec4 uv; in vec4 color; in vec4 params; in float solid;
uniform mat4 mvp; uniform float time; uniform float ease_s; uniform float move_s;
uniform vec4 noise_uv[32]; uniform int noise_count; uniform vec4 noise_quad;
out vec2 v_uv; out vec4 v_color; out float v_blur;
float hash(float n) { return fract(sin(n) * 43758.5453123); }
void main() {
    float m = clamp((time - move_t) / move_s, 0.0, 1.0);
    vec2 pen = mix(from_xy, to_xy, m * m * (3.0 - 2.0 * m));
    float noise = params.x, conf = params.y, commit = params.z, seed = params.w;
    float e = noise >= 1.0 ? 0.0 : clamp((time - commit) / ease_s, 0.0, 1.0);
    e = 1.0 - pow(1.0 - e, 3.0);
    vec4 q = quad; vec4 r = uv;
    bool random_token = solid < -0.5 && noise >= 1.0;  // uniform noise: the random token's own glyph
    if (solid < 0.5 && !random_token && (noise >= 1.0 || e < 0.35)) {  // a mask: a random glyph, ~12x/s
        int k = int(floor(hash(seed * 12.9898 + floor(time * 12.0 + seed) * 78.233) * float(noise_count)));
        r = noise_uv[k]; q = noise_quad;
    }
    if (random_token) {  // trembles in place until the denoiser replaces it
        float t = floor(time * 20.0);
        pen += 0.06 * vec2(hash(seed + t) - 0.5, hash(seed * 1.7 + t) - 0.5);
    }
    vec2 local = pen + vec2(q.x + corner.x * q.z, -q.y + corner.y * q.w);
    gl_Position = mvp * vec4(local, 0.0, 1.0);
    v_uv = mix(r.xy, r.zw, corner);
    vec3 dim = vec3(0.55, 0.6, 0.7);
    float provisional = noise < 1.0 ? noise : 0.0;  // 0.5: uniform proposal; (0, 1): continuous blur
    float solidity = mix(0.45, 1.0, conf) * (1.0 - 0.5 * provisional);  // unsure or provisional: less solid
    v_color = solid > 0.5 ? color : vec4(mix(dim, color.rgb, e), mix(0.45, color.a * solidity, e));
    v_blur = solid > 0.5 ? 0.0 : max(mix(random_token ? 0.08 : 0.16, 0.0, e), 0.25 * provisional);
}
"""

FRAGMENT = """
#version 330
uniform sampler2D atlas;
uniform bool linear_output;  // rendering into an sRGB framebuffer: write linear colour
in vec2 v_uv; in vec4 v_color; in float v_blur;
out vec4 frag;
void main() {
    float d = texture(atlas, v_uv).r;
    float w = max(fwidth(d) * 0.75, 1e-3) + v_blur;
    float a = smoothstep(0.5 - w, 0.5 + w, d);
    if (a * v_color.a < 0.003) discard;
    vec3 rgb = linear_output ? pow(v_color.rgb, vec3(2.2)) : v_color.rgb;
    frag = vec4(rgb, v_color.a * a);
}
"""


class PanelMesh:
    """One panel's instance buffer: [header: frame, title, selection, cursor | status line | text slots].
    The header and status regions have room to spare; the text's rows come from `PanelText`, and only the
    row ranges it marks dirty are written."""

    def __init__(self, ctx: moderngl.Context, program: moderngl.Program, quad: moderngl.Buffer, panel: Panel,
                 atlas: GlyphAtlas):
        self.ctx, self.panel = ctx, panel
        self.program, self.quad = program, quad
        self.header_rows, self.status_rows = 128, 96
        self.capacity = 1024
        self.instances = ctx.buffer(reserve=self.capacity * ROW_BYTES, dynamic=True)
        self.vao = self._vao()
        self.count = 0
        self.version = -1
        self.text = PanelText(atlas, panel.width_em, top=1.4 if panel.title else 0.0)
        self.header = np.zeros((0, FLOATS), dtype="f4")
        self.status = np.zeros((0, FLOATS), dtype="f4")
        self.writes = 0  # buffer writes in the last update

    @property
    def motion(self):
        return self.text.motion

    @property
    def base(self) -> int:
        return self.header_rows + self.status_rows

    def _vao(self) -> moderngl.VertexArray:
        return self.ctx.vertex_array(self.program, [
            (self.quad, "2f", "corner"),
            (self.instances, "2f 2f 1f 4f 4f 4f 4f 1f/i", "from_xy", "to_xy", "move_t", "quad", "uv", "color",
             "params", "solid"),
        ])

    def release(self) -> None:
        self.vao.release()
        self.instances.release()

    def upload(self, header: np.ndarray, status: np.ndarray) -> None:
        """Write what changed: the header and status regions when they differ, the text's dirty rows."""
        self.writes = 0
        everything = False
        if len(header) > self.header_rows or len(status) > self.status_rows:
            self.header_rows = max(self.header_rows, 2 * len(header))
            self.status_rows = max(self.status_rows, 2 * len(status))
            everything = True
        needed = self.base + self.text.used
        if needed > self.capacity:
            while self.capacity < needed:
                self.capacity *= 2
            self.instances.orphan(self.capacity * ROW_BYTES)
            self.vao.release()
            self.vao = self._vao()
            everything = True
        if everything or not np.array_equal(header, self.header):
            self._write(0, _padded(header, self.header_rows))
            self.header = header
        if everything or not np.array_equal(status, self.status):
            self._write(self.header_rows, _padded(status, self.status_rows))
            self.status = status
        ranges = self.text.take_dirty()
        if everything:
            ranges = [(0, self.text.used)]
        for a, b in ranges:
            self._write(self.base + a, self.text.rows[a:b])
        self.count = self.base + self.text.used

    def _write(self, row: int, data: np.ndarray) -> None:
        if len(data):
            self.instances.write(data.tobytes(), offset=row * ROW_BYTES)
            self.writes += 1


def _padded(rows: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((size, FLOATS), dtype="f4")
    out[: len(rows)] = rows
    return out


class TextRenderer:
    def __init__(self, ctx: moderngl.Context, atlas: GlyphAtlas | None = None, *, linear_output: bool = False):
        self.ctx = ctx
        self.atlas = atlas or GlyphAtlas()
        self.program = ctx.program(vertex_shader=VERTEX, fragment_shader=FRAGMENT)
        self.quad = ctx.buffer(np.array([0, 0, 1, 0, 0, 1, 1, 1], dtype="f4").tobytes())
        self.texture = ctx.texture((self.atlas.size, self.atlas.size), 1, dtype="f1")
        self.texture.filter = (moderngl.LINEAR, moderngl.LINEAR)
        self.meshes: dict[str, PanelMesh] = {}
        noise = [self.atlas.get(c) for c in NOISE_GLYPHS[:32]]
        self.program["noise_count"].value = len(noise)
        self.program["noise_uv"].value = [g.uv for g in noise] + [(0, 0, 0, 0)] * (32 - len(noise))
        sample = noise[0]
        self.program["noise_quad"].value = (*sample.offset, *sample.size)
        self.program["ease_s"].value = EASE_S
        self.program["move_s"].value = MOVE_S
        self.program["linear_output"].value = linear_output
        self.gl_calls = 0  # draw calls, buffer writes and uniform writes: counted for the render benchmark
        self.draw_seconds = 0.0  # time inside draw calls (a software GL does its vertex work there)
        self._upload_atlas()

    def token_at(self, panel: Panel, x: float, y: float) -> int | None:
        """The token under a point of a panel in em space, as last drawn (None before its first frame)."""
        mesh = self.meshes.get(panel.panel_id)
        return mesh.text.token_at(x, y) if mesh is not None else None

    def _upload_atlas(self) -> int:
        if not self.atlas.dirty:
            return 0
        self.texture.write(self.atlas.texels.tobytes())
        self.atlas.dirty.clear()
        return 1

    def render(self, scene: Scene, view: np.ndarray, projection: np.ndarray, time: float) -> None:
        """Draw every panel into the bound framebuffer (premultiplied-free alpha blending, no depth writes)."""
        self.ctx.enable(moderngl.BLEND)
        self.ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
        self.program["time"].value = time
        self.gl_calls += 3  # blend enable, blend func, time
        eye = np.linalg.inv(view)[:3, 3]
        for panel in sorted(scene.panels, key=lambda p: -np.linalg.norm(np.array(p.position) - eye)):
            mesh = self.meshes.get(panel.panel_id)
            if mesh is None or mesh.panel is not panel:  # a new panel under an old id starts afresh
                if mesh is not None:
                    mesh.release()
                mesh = self.meshes[panel.panel_id] = PanelMesh(self.ctx, self.program, self.quad, panel, self.atlas)
            if mesh.version != panel.version:
                self._update(panel, mesh, time)
                mesh.version = panel.version
                self.gl_calls += self._upload_atlas()
            mvp = projection @ view @ panel.model_matrix()
            self.program["mvp"].write(mvp.T.astype("f4").tobytes())
            self.texture.use(0)
            started = perf_counter()
            mesh.vao.render(moderngl.TRIANGLE_STRIP, vertices=4, instances=mesh.count)
            self.draw_seconds += perf_counter() - started
            self.gl_calls += 3

    # --- building a panel's instances (only when it changed) ---------------------------------------------

    def _update(self, panel: Panel, mesh: PanelMesh, time: float) -> None:
        """Bring a panel's buffer up to date, writing only what changed."""
        mesh.text.update(panel.text.cells, panel.text.take_changes(), time, animate=mesh.version >= 0)
        mesh.upload(self._header(panel, mesh), self._status(panel))
        self.gl_calls += mesh.writes

    def _header(self, panel: Panel, mesh: PanelMesh) -> np.ndarray:
        width_em, height_em = panel.width_em, panel.height / panel.em
        pad = 0.8
        border = (0.35, 0.55, 0.95, 0.9) if panel.selected else (0.25, 0.3, 0.4, 0.7)
        rows = [self._solid(-pad - 0.08, -pad - 0.08, width_em + 2 * pad + 0.16, height_em + 0.16, border),
                self._solid(-pad, -pad, width_em + 2 * pad, height_em, (0.05, 0.06, 0.09, 0.88))]
        if panel.title:
            rows += self._line(panel.title, 0.0, 1.0, (0.6, 0.8, 1.0, 1.0), seed=-1)
        if panel.selection:
            for position in range(*panel.selection):
                box = mesh.text.token_box(position)
                if box:
                    rows.append(self._solid(box[0], box[1] - 0.95, box[2], 1.25, (0.2, 0.35, 0.7, 0.55)))
        if panel.cursor is not None:
            box = mesh.text.token_box(panel.cursor) or mesh.text.token_box(len(mesh.text.starts) - 1)
            x, y = (box[0], box[1]) if box else (0.0, 1.3 + mesh.text.top)
            if box and panel.cursor >= len(mesh.text.starts):
                x += box[2]
            rows.append(self._solid(x - 0.04, y - 0.95, 0.08, 1.2, (0.9, 0.9, 0.3, 0.9)))
        return np.array(rows, dtype="f4").reshape(-1, FLOATS)

    def _status(self, panel: Panel) -> np.ndarray:
        height_em = panel.height / panel.em
        rows = self._line(panel.status, 0.0, height_em - 1.4, (0.6, 0.65, 0.75, 0.9), seed=-2, scale=0.7)
        return np.array(rows, dtype="f4").reshape(-1, FLOATS)

    def _line(self, text: str, x: float, y: float, color, *, seed: int, scale: float = 1.0) -> list[list[float]]:
        rows = []
        for char in text:
            glyph = self.atlas.get(char)
            if char != " ":
                ox, oy = glyph.offset
                rows.append([x, y, x, y, -1e9, ox * scale, oy * scale, glyph.size[0] * scale, glyph.size[1] * scale,
                             *glyph.uv, *color, 0.0, 1.0, -1e9, float(seed), 0.0])
            x += glyph.advance * scale
        return rows

    def _solid(self, x: float, y: float, w: float, h: float, color) -> list[float]:
        uv = self.atlas.solid
        return [x, y, x, y, -1e9, 0.0, 0.0, w, h, *uv, *color, 0.0, 1.0, -1e9, 0.0, 1.0]
