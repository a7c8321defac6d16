"""`airquill bench render`: frame cost of the text renderer on this machine (EGL, headless), by glyph and
panel count, with text still and with steps arriving. The Python time of a frame is measured up to its last
GL call without waiting for the GPU: time blocked inside draw calls is reported apart, because a software GL
(Mesa llvmpipe) shades the glyphs right there. The frame time includes `finish()`."""
from __future__ import annotations

import json
import statistics
import time

from airquill.shared.step import Step, TokenChange
from airquill.vr_client.scene import Panel, Scene, arc_placement

WORDS = [" and", " the", " LORD", " said", " unto", " Moses", " light", " earth", " waters", " heaven"]
CHARS_PER_TOKEN = 5.5


def make_scene(glyphs: int, panels: int) -> Scene:
    scene = Scene()
    tokens_per_panel = max(1, int(glyphs / panels / CHARS_PER_TOKEN))
    for i, (position, yaw) in enumerate(arc_placement(panels, spread_deg=min(160, 20 * panels))):
        panel = scene.add(Panel(f"p{i}", title=f"chapter {i + 1}", position=position, yaw=yaw,
                                width=0.2 + 0.02 * tokens_per_panel ** 0.5, height=0.6))
        # half the text settled, half still noise
        changes = tuple(TokenChange(t, 10 + t, WORDS[t % len(WORDS)] if t % 2 == 0 else "", 0.9,
                                    0.0 if t % 2 == 0 else 1.0) for t in range(tokens_per_panel))
        panel.text.apply(Step(1, tokens_per_panel, tokens_per_panel, changes))
        panel.touch()
    return scene


def measure(host, glyphs: int, panels: int, *, condensing: bool, frames: int) -> dict:
    scene = make_scene(glyphs, panels)
    host.frame(scene, 0.0)  # first upload, not measured
    python_ms, own_ms, cpu_ms, frame_ms, gl_calls = [], [], [], [], []
    committed = 1
    for f in range(frames):
        t = (f + 1) / 90
        if condensing:  # every frame a step lands in a third of the panels, committing a noise token in each
            for i, panel in enumerate(scene.panels):
                if (i + f) % 3 == 0 and committed < len(panel.text.cells):
                    panel.text.apply(Step(f + 2, 0, len(panel.text.cells),
                                          (TokenChange(committed, 5, WORDS[committed % len(WORDS)], 0.9, 0.0),)))
                    panel.touch()
            committed += 2
        calls_before, draw_before = host.renderer.gl_calls, host.renderer.draw_seconds
        started, cpu_started = time.perf_counter(), time.process_time()
        host.fbo.use()
        host.fbo.clear(0, 0, 0, 1)
        host.renderer.render(scene, host.view, host.projection, t)
        python_ms.append((time.perf_counter() - started) * 1000)
        own_ms.append(python_ms[-1] - (host.renderer.draw_seconds - draw_before) * 1000)
        cpu_ms.append((time.process_time() - cpu_started) * 1000)
        gl_calls.append(host.renderer.gl_calls - calls_before)
        host.ctx.finish()
        frame_ms.append((time.perf_counter() - started) * 1000)
    glyph_count = sum(len(p.text.cells) for p in scene.panels) * CHARS_PER_TOKEN
    return {"glyphs": int(glyph_count), "panels": panels, "condensing": condensing,
            "python_ms": statistics.median(python_ms), "python_own_ms": statistics.median(own_ms),
            "cpu_ms": statistics.median(cpu_ms),
            "frame_ms": statistics.median(frame_ms), "gl_calls": statistics.median(gl_calls),
            "python_us_per_glyph": statistics.median(python_ms) * 1000 / max(1, glyph_count)}


def run(*, frames: int) -> dict:
    from airquill.vr_client.hosts.headless import HeadlessHost

    host = HeadlessHost((1280, 720))
    rows = []
    for glyphs in (1_000, 10_000, 50_000):
        for panels in (1, 10, 50):
            for condensing in (False, True):
                rows.append(measure(host, glyphs, panels, condensing=condensing, frames=frames))
    host.release()
    out = {"rows": rows}
    for glyphs, label in ((1_000, "1k"), (50_000, "50k")):
        row = next(r for r in rows if abs(r["glyphs"] - glyphs) / glyphs < 0.2 and r["panels"] == 10
                   and r["condensing"])
        # Python time up to the last GL call, not counting time blocked inside draw calls: on llvmpipe that
        # is the (software) GPU shading the glyphs, which a real GPU does asynchronously
        out[f"python_ms_per_frame_{label}"] = row["python_own_ms"]
        out[f"python_ms_with_draws_per_frame_{label}"] = row["python_ms"]
        out[f"gl_calls_per_frame_{label}"] = row["gl_calls"]
    out["python_ratio_50k_vs_1k"] = out["python_ms_per_frame_50k"] / out["python_ms_per_frame_1k"]
    out["python_with_draws_ratio_50k_vs_1k"] = (out["python_ms_with_draws_per_frame_50k"]
                                                / out["python_ms_with_draws_per_frame_1k"])
    return out


def report(out: dict) -> str:
    lines = ["glyphs  panels  text        python ms  (own, outside draws)  cpu ms  frame ms  gl calls  python µs/glyph"]
    for r in out["rows"]:
        lines.append(f"{r['glyphs']:>6}  {r['panels']:>6}  {'condensing' if r['condensing'] else 'still':<10}  "
                     f"{r['python_ms']:9.2f}  {r['python_own_ms']:20.2f}  {r['cpu_ms']:6.2f}  {r['frame_ms']:8.1f}  {r['gl_calls']:8.0f}  "
                     f"{r['python_us_per_glyph']:10.3f}")
    lines.append(json.dumps({k: v for k, v in out.items() if k != "rows"}))
    return "\n".join(lines)


def main(args) -> int:
    out = run(frames=args.frames)
    print(json.dumps(out) if args.json else report(out))
    return 0
