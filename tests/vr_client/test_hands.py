"""The real MediaPipe HandLandmarker, with the task file built from the mediapipe==0.10.21 wheel, and the
webcam producer's honest failure when there is no webcam.

The wheel comes from `python -m airquill.vr_client.input.hands --setup` (run by the Makefile before the tests)
or from $AIRQUILL_MEDIAPIPE_WHEEL. No freely licensed photo of a hand ships with any package on the machine
these tests were written on, so there is no positive-detection test: the tracker is checked on frames that must
give no hand or well-formed results.
"""
from __future__ import annotations

import queue
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from airquill.vr_client.input import hands
from airquill.vr_client.input.events import InputUnavailable


@pytest.fixture(scope="module")
def wheel() -> Path:
    found = hands.find_wheel()
    if found is None:
        pytest.fail(f"the mediapipe=={hands.MEDIAPIPE_VERSION} wheel is missing: run `{hands.SETUP_COMMAND}` "
                    f"(the Makefile's test setup does) or set ${hands.WHEEL_ENV} to the wheel or its folder; "
                    f"looked in {hands.default_wheel_dir()}")
    return found


@pytest.fixture(scope="module")
def task_file(wheel, tmp_path_factory) -> Path:
    return hands.build_hand_model(wheel, tmp_path_factory.mktemp("model") / "hand_landmarker.task")


@pytest.fixture
def pipeline(task_file):
    with hands.HandLandmarkerPipeline(model_path=task_file) as p:
        yield p


def test_task_file_holds_the_two_models(wheel, task_file):
    with zipfile.ZipFile(task_file) as task, zipfile.ZipFile(wheel) as whl:
        assert sorted(task.namelist()) == sorted(hands.TASK_MEMBERS)
        for member, source in hands.TASK_MEMBERS.items():
            assert task.read(member) == whl.read(source)
    assert [p.name for p in task_file.parent.iterdir()] == [task_file.name]  # atomic: no temp file left


def test_a_wheel_without_the_models_is_rejected(tmp_path):
    fake = tmp_path / f"mediapipe-{hands.MEDIAPIPE_VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(fake, "w") as z:
        z.writestr("mediapipe/__init__.py", "")
    with pytest.raises(ValueError, match="palm_detection_full.tflite"):
        hands.build_hand_model(fake, tmp_path / "out.task")
    assert not (tmp_path / "out.task").exists()


def test_missing_model_names_the_setup_command(tmp_path, monkeypatch):
    monkeypatch.setenv(hands.MODEL_ENV, str(tmp_path / "none.task"))
    with pytest.raises(FileNotFoundError, match=r"python -m airquill\.vr_client\.input\.hands --setup"):
        hands.hand_model_path()
    (tmp_path / "none.task").write_bytes(b"x")
    assert hands.hand_model_path() == tmp_path / "none.task"


def test_wheel_lookup_by_env_var(wheel, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setenv(hands.WHEEL_ENV, str(wheel))
    assert hands.find_wheel() == wheel
    monkeypatch.setenv(hands.WHEEL_ENV, str(wheel.parent))
    assert hands.find_wheel() is not None
    monkeypatch.setenv(hands.WHEEL_ENV, str(tmp_path))
    assert hands.find_wheel() is None


def test_setup_cli_builds_from_a_local_wheel(wheel, tmp_path, capsys):
    out = tmp_path / "m" / "hand.task"
    assert hands.main(["--setup", "--wheel-dir", str(wheel.parent), "--out", str(out)]) == 0
    assert zipfile.is_zipfile(out) and str(out) in capsys.readouterr().out
    assert hands.main(["--out", str(tmp_path / "missing.task")]) == 1
    assert "--setup" in capsys.readouterr().err


def test_importing_the_module_loads_neither_mediapipe_nor_opencv():
    code = ("import sys, airquill.vr_client.input.hands; "
            "print(sorted(m for m in ('mediapipe', 'cv2') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_blank_frame_has_no_hand(pipeline):
    assert pipeline.process(np.zeros((480, 640, 3), np.uint8), 0.0) == []
    assert pipeline.process(np.full((480, 640, 3), 255, np.uint8), 0.033) == []


def test_noise_frames_give_well_formed_results(pipeline):
    rng = np.random.default_rng(0)
    for i in range(8):
        frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
        found = pipeline.process(frame, i / 30)
        assert isinstance(found, list) and len(found) <= 2
        assert len({f.hand for f in found}) == len(found)
        for f in found:
            assert f.hand in ("left", "right") and f.t == i / 30 and f.aspect == pytest.approx(640 / 480)
            assert f.landmarks.shape == (21, 3) and np.all(np.isfinite(f.landmarks))


def test_video_mode_runs_a_sequence_with_increasing_timestamps(pipeline):
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    times = [0.0, 0.033, 0.066, 0.066, 0.0664, 0.1, 0.133]  # repeated and sub-millisecond steps are nudged
    for t in times:
        frame = np.roll(base, int(t * 300), axis=1)
        assert isinstance(pipeline.process(frame, t), list)
    with pytest.raises(ValueError):
        pipeline.process(np.zeros((10, 10, 3), np.float32), 1.0)


def test_webcam_without_a_camera_reports_unavailable(task_file):
    events: queue.Queue = queue.Queue()
    producer = hands.WebcamHands(events, camera_index=99, model_path=task_file).start()
    event = events.get(timeout=20)
    producer.stop()
    assert isinstance(event, InputUnavailable) and event.source == "hands"
    assert "camera 99" in event.message
    assert not producer.running and events.empty()


def test_webcam_without_a_model_reports_unavailable(tmp_path):
    events: queue.Queue = queue.Queue()
    producer = hands.WebcamHands(events, camera_index=99, model_path=tmp_path / "none.task").start()
    event = events.get(timeout=20)
    producer.stop()
    assert isinstance(event, InputUnavailable) and "--setup" in event.message
