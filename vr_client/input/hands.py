"""Webcam hand tracking: the MediaPipe hand model, a HandLandmarker wrapper, and the webcam producer thread.

Model and licence: the hand models are Google's MediaPipe palm detector (`palm_detection_full.tflite`) and hand
landmark model (`hand_landmark_full.tflite`), released under the Apache License 2.0 by the MediaPipe project
(https://github.com/google-ai-edge/mediapipe). The current `mediapipe` package ships no models, but the
mediapipe==0.10.21 wheel on PyPI carries both files; `build_hand_model` packs them into the `.task` archive the
Tasks `HandLandmarker` loads (members `hand_detector.tflite` and `hand_landmarks_detector.tflite`). The
files are used unmodified; the wheel's `mediapipe-0.10.21.dist-info/LICENSE` holds the licence text.

Set-up happens once, on purpose, with `python -m airquill.vr_client.input.hands --setup`: it finds the wheel
in the cache (or `--wheel-dir`, or $AIRQUILL_MEDIAPIPE_WHEEL), else downloads it with pip, and writes the task
file to ~/.cache/airquill/hand_landmarker.task ($AIRQUILL_HAND_MODEL overrides). At run time nothing is
downloaded: a missing model is reported with the command that fixes it.

Importing this module is cheap: mediapipe and OpenCV are imported inside the functions that use them.
"""
from __future__ import annotations

import argparse
import io
import os
import queue
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np

from airquill.shared.book import write_atomic
from airquill.vr_client.input.events import InputUnavailable
from airquill.vr_client.input.gestures import GestureRecognizer, HandFrame

MEDIAPIPE_VERSION = "0.10.21"
TASK_MEMBERS = {  # member of the .task archive → file inside the mediapipe wheel
    "hand_detector.tflite": "mediapipe/modules/palm_detection/palm_detection_full.tflite",
    "hand_landmarks_detector.tflite": "mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
}
MODEL_ENV = "AIRQUILL_HAND_MODEL"
WHEEL_ENV = "AIRQUILL_MEDIAPIPE_WHEEL"
SETUP_COMMAND = "python -m airquill.vr_client.input.hands --setup"
# The tflite files are the same in every 0.10.21 wheel; asking pip for one fixed platform lets the set-up run
# on any host, including Pythons that 0.10.21 has no wheel for.
WHEEL_PLATFORM = ("--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "--only-binary=:all:")


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/airquill, else ~/.cache/airquill."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "airquill"


def default_model_path() -> Path:
    """Where the task file lives: $AIRQUILL_HAND_MODEL, else <cache>/hand_landmarker.task."""
    return Path(os.environ[MODEL_ENV]).expanduser() if os.environ.get(MODEL_ENV) else cache_dir() / "hand_landmarker.task"


def default_wheel_dir() -> Path:
    """Where `--setup` keeps the downloaded mediapipe wheel (so tests and re-runs need no network)."""
    return cache_dir() / "wheels"


def find_wheel(*, wheel_dir: Path | None = None) -> Path | None:
    """The mediapipe==0.10.21 wheel: in `wheel_dir` if given, else $AIRQUILL_MEDIAPIPE_WHEEL (a file or a
    folder), else the default wheel folder. None if there is none."""
    if wheel_dir is not None:
        places = [Path(wheel_dir)]
    else:
        places = [Path(os.environ[WHEEL_ENV]).expanduser()] if os.environ.get(WHEEL_ENV) else []
        places.append(default_wheel_dir())
    for place in places:
        if place.is_file() and place.name.startswith(f"mediapipe-{MEDIAPIPE_VERSION}-"):
            return place
        if place.is_dir():
            found = sorted(place.glob(f"mediapipe-{MEDIAPIPE_VERSION}-*.whl"))
            if found:
                return found[0]
    return None


def download_wheel(dest: Path) -> Path:
    """Download the mediapipe==0.10.21 wheel into `dest` with pip (the one step that needs the network)."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", *WHEEL_PLATFORM,
           f"mediapipe=={MEDIAPIPE_VERSION}", "-d", str(dest)]
    subprocess.run(cmd, check=True)
    wheel = find_wheel(wheel_dir=dest)
    if wheel is None:
        raise FileNotFoundError(f"pip download finished but no mediapipe-{MEDIAPIPE_VERSION}-*.whl is in {dest}")
    return wheel


def build_hand_model(wheel: Path, out: Path) -> Path:
    """Pack the two hand models from the mediapipe wheel into a `.task` archive at `out`, atomically."""
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        missing = [src for src in TASK_MEMBERS.values() if src not in names]
        if missing:
            raise ValueError(f"{wheel} lacks {', '.join(missing)}; use the mediapipe=={MEDIAPIPE_VERSION} wheel")
        blobs = {member: zf.read(src) for member, src in TASK_MEMBERS.items()}
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as task:  # stored: tflite is mmapped
        for member, blob in blobs.items():
            task.writestr(member, blob)
    out = Path(out)
    write_atomic(out, archive.getvalue())
    return out


def hand_model_path(path: Path | None = None) -> Path:
    """The task file to load, or FileNotFoundError naming the command that creates it."""
    path = Path(path) if path is not None else default_model_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"hand-tracking model not found at {path}. Create it once with `{SETUP_COMMAND}` (it downloads "
            f"mediapipe=={MEDIAPIPE_VERSION} from PyPI and extracts the Apache-2.0 hand models), "
            f"or point ${MODEL_ENV} at an existing hand_landmarker.task.")
    return path


def setup_hand_model(*, wheel_dir: Path | None = None, out: Path | None = None) -> Path:
    """Find (or download) the wheel and build the task file; returns its path."""
    wheel = find_wheel(wheel_dir=wheel_dir)
    if wheel is None:
        wheel = download_wheel(Path(wheel_dir) if wheel_dir is not None else default_wheel_dir())
    return build_hand_model(wheel, Path(out) if out is not None else default_model_path())


class HandLandmarkerPipeline:
    """MediaPipe's HandLandmarker in VIDEO mode (tracking between frames, up to two hands): RGB frame → HandFrames.

    Handedness: MediaPipe's hand model documents its left/right label for a mirrored (selfie) image. The webcam
    producer mirrors every frame before it gets here (so moving the hand right moves the pointer right) and the
    labels are taken as they come. A camera that already mirrors, or a mediapipe build that labels the other way,
    is fixed with `swap_handedness=True`. Two hands with the same label keep it on the more confident one and
    the other gets the opposite label.
    """

    def __init__(self, *, model_path: Path | None = None, num_hands: int = 2, min_detection_confidence: float = 0.5,
                 min_presence_confidence: float = 0.5, min_tracking_confidence: float = 0.5,
                 swap_handedness: bool = False) -> None:
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.HandLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(hand_model_path(model_path))),
            running_mode=vision.RunningMode.VIDEO, num_hands=num_hands,
            min_hand_detection_confidence=min_detection_confidence,
            min_hand_presence_confidence=min_presence_confidence, min_tracking_confidence=min_tracking_confidence)
        self._landmarker = vision.HandLandmarker.create_from_options(options)
        self.swap_handedness = swap_handedness
        self._last_ms = -1

    def process(self, rgb: np.ndarray, t: float) -> list[HandFrame]:
        """Track hands in one RGB uint8 (H, W, 3) frame taken at `t` seconds (must not go backwards)."""
        import mediapipe as mp

        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 (H, W, 3) frame, got {rgb.dtype} {rgb.shape}")
        # VIDEO mode needs strictly increasing integer milliseconds; two frames in the same ms are nudged apart.
        ms = max(int(round(t * 1000.0)), self._last_ms + 1)
        self._last_ms = ms
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        result = self._landmarker.detect_for_video(image, ms)
        aspect = rgb.shape[1] / rgb.shape[0]
        found = []
        for marks, classes in zip(result.hand_landmarks, result.handedness):
            label = (classes[0].category_name or "").lower() if classes else ""
            if label not in ("left", "right"):
                continue
            if self.swap_handedness:
                label = "right" if label == "left" else "left"
            points = np.array([[m.x, m.y, m.z] for m in marks], dtype=float)
            if points.shape == (21, 3):
                found.append((float(classes[0].score or 0.0), label, points))
        found.sort(key=lambda item: -item[0])
        frames: list[HandFrame] = []
        for _, label, points in found:
            if any(f.hand == label for f in frames):
                label = "right" if label == "left" else "left"
                if any(f.hand == label for f in frames):
                    continue
            frames.append(HandFrame(label, points, t, aspect))  # type: ignore[arg-type]
        return frames

    def close(self) -> None:
        self._landmarker.close()

    def __enter__(self) -> HandLandmarkerPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WebcamHands:
    """Producer thread: webcam → HandLandmarker → GestureRecognizer → events on `events`.

    Never raises into the client: no model, no webcam, or a camera that stops delivering frames each put one
    `InputUnavailable('hands', ...)` on the queue and end the thread, so the other inputs carry on.
    """

    def __init__(self, events: queue.Queue, *, camera_index: int = 0, model_path: Path | None = None,
                 recognizer: GestureRecognizer | None = None, mirror: bool = True, width: int = 640,
                 height: int = 480, max_failed_reads: int = 30) -> None:
        self.events, self.camera_index, self.model_path = events, camera_index, model_path
        self.recognizer = recognizer or GestureRecognizer()
        self.mirror, self.width, self.height, self.max_failed_reads = mirror, width, height, max_failed_reads
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> WebcamHands:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="airquill-webcam-hands", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 5.0) -> None:
        """Ask the thread to finish and wait for it (it closes any open pinch or grab on the way out)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _unavailable(self, message: str) -> None:
        self.events.put(InputUnavailable("hands", message))

    def _run(self) -> None:
        try:
            model = hand_model_path(self.model_path)
        except FileNotFoundError as exc:
            self._unavailable(str(exc))
            return
        try:
            self._track(model)
        except Exception as exc:  # a producer must not take the client down
            self._unavailable(f"hand tracking stopped: {type(exc).__name__}: {exc}")

    def _track(self, model: Path) -> None:
        import cv2

        capture = cv2.VideoCapture(self.camera_index)
        try:
            if not capture.isOpened():
                self._unavailable(f"no webcam: camera {self.camera_index} could not be opened; hand input is off")
                return
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            ok, frame = capture.read()
            if not ok or frame is None:
                self._unavailable(f"no webcam: camera {self.camera_index} opened but gave no frame; hand input is off")
                return
            with HandLandmarkerPipeline(model_path=model) as pipeline:
                failed = 0
                while not self._stop.is_set():
                    if frame is None:
                        failed += 1
                        if failed >= self.max_failed_reads:
                            self._unavailable(f"webcam {self.camera_index} stopped delivering frames")
                            break
                    else:
                        failed = 0
                        t = time.monotonic()
                        if self.mirror:
                            frame = cv2.flip(frame, 1)
                        hands = pipeline.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), t)
                        for event in self.recognizer.update(hands, t):
                            self.events.put(event)
                    ok, frame = capture.read()
                    frame = frame if ok else None
            for event in self.recognizer.update([], time.monotonic()):  # close open pinches / grabs
                self.events.put(event)
        finally:
            capture.release()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m airquill.vr_client.input.hands",
                                     description="Set up (or check) the webcam hand-tracking model.")
    parser.add_argument("--setup", action="store_true",
                        help=f"build the task file from the mediapipe=={MEDIAPIPE_VERSION} wheel (downloads it if needed)")
    parser.add_argument("--wheel-dir", type=Path, help="folder holding (or receiving) the mediapipe wheel")
    parser.add_argument("--out", type=Path, help=f"task file to write (default {default_model_path()})")
    args = parser.parse_args(argv)
    if args.setup:
        path = setup_hand_model(wheel_dir=args.wheel_dir, out=args.out)
        print(f"hand model ready: {path}")
        return 0
    try:
        print(f"hand model ready: {hand_model_path(args.out)}")
        return 0
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
