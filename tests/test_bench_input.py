"""`airquill bench input` on tiny sizes: every part runs for real (MediaPipe, the recogniser and controller, Vosk
with the Korean model, a child server with the shipped model) and the result's structure and counts are
consistent. No timing thresholds: the figures are whatever this machine gives."""
from __future__ import annotations

import json
import types

import pytest

from airquill import bench_input
from airquill.bench_input import _gap, measure, report, synthetic_hand
from airquill.vr_client.input.gestures import GestureConfig

FRAMES, PINCHES, REWRITES = 3, 2, 1
EDIT_LENGTH, EDIT_STEPS = 24, 8  # a smaller panel and fewer steps than the benchmark's, to keep the test short


@pytest.fixture(scope="module")
def result():
    return measure(frames=FRAMES, pinches=PINCHES, voice_repeats=1, rewrites=REWRITES, edit_length=EDIT_LENGTH,
                   edit_steps=EDIT_STEPS)


def test_the_synthetic_hand_has_the_gap_it_was_asked_for():
    for gap in (0.1, 0.3, 0.8):
        assert _gap(synthetic_hand(gap=gap)) == pytest.approx(gap, rel=1e-6)


def test_hand_tracking_and_gesture_figures(result):
    assert result["skipped"] == []
    for prefix in ("hand", "hand_noise"):
        assert result[f"{prefix}_frames"] == FRAMES
        assert 0 < result[f"{prefix}_ms_per_frame_p50"] <= result[f"{prefix}_ms_per_frame_p90"]
        assert result[f"{prefix}_hands_found"] >= 0
    assert result["gesture_frames"] == 5 * FRAMES and result["gesture_events"] > 0
    assert 0 < result["gesture_ms_per_frame"] <= result["gesture_ms_per_frame_p90"]


def test_pinch_latency_counts_are_consistent(result):
    confirm = GestureConfig().pinch_enter_frames
    assert result["pinch_confirm_frames"] == confirm and result["pinch_missed"] == 0
    assert len(result["pinch_to_action_frames_all"]) == PINCHES
    assert all(n >= confirm for n in result["pinch_to_action_frames_all"])
    assert confirm <= result["pinch_to_action_frames"] <= result["pinch_to_action_frames_max"]
    assert 0 <= result["pinch_on_target"] <= PINCHES
    assert 0 < result["pinch_processing_ms"] <= result["pinch_processing_ms_all_frames"]
    wait = (result["pinch_to_action_frames"] - 1) * 1000 / result["pinch_fps"]
    assert result["pinch_to_action_ms"] == pytest.approx(wait + result["pinch_processing_ms"])


def test_voice_figures(result):
    assert result["voice_error"] is None, result["voice_error"]
    for suffix in ("", "_grammar"):
        assert result[f"voice_repeats{suffix}"] == 1
        assert 0 < result[f"voice_finish_only{suffix}_ms"] <= result[f"voice_final{suffix}_ms"]
        endpoint = result[f"voice_endpoint{suffix}_ms"]
        assert endpoint is None or 0 <= endpoint <= 1000 * bench_input.ENDPOINT_SILENCE_S + result["voice_chunk_ms"]
    assert 0 < result["voice_speech_end_s"] <= result["voice_audio_s"]


def test_edit_figures(result):
    assert result["edit_error"] is None, result["edit_error"]
    assert result["edit_panel_tokens"] == result["edit_length"] == EDIT_LENGTH
    assert result["edit_steps_requested"] == EDIT_STEPS
    assert len(result["edit_first_noise_ms"]) == len(result["edit_done_ms"]) == len(result["edit_steps"]) == REWRITES
    assert result["edit_without_noise"] == 0 and result["edit_noise_in_span"]
    assert all(steps >= 1 for steps in result["edit_steps"])
    for first, done, end in zip(result["edit_first_noise_ms"], result["edit_done_ms"], result["edit_end_ms"]):
        assert 0 < first <= done <= end
    assert result["edit_first_noise_ms_p50"] <= result["edit_done_ms_p50"]


def test_report_and_json(result):
    assert json.loads(json.dumps(result)) == result  # one JSON object, no NaN or odd types
    text = report(result)
    for phrase in ("blank frames", "palm detector", "pinch_to_action_ms", "finish()", "first re-noised frame"):
        assert phrase in text


def test_skipped_parts_are_null_with_a_reason_and_main_prints_json(monkeypatch, capsys):
    out = measure(frames=2, pinches=1, hands=False, voice=False, edit=False)
    assert out["skipped"] == ["hands", "voice", "edit"]
    for key in ("hand_ms_per_frame_p50", "voice_final_ms", "voice_final_grammar_ms", "edit_first_noise_ms_p50",
                "edit_done_ms_p50"):
        assert out[key] is None
    assert out["voice_error"] == out["edit_error"] == "skipped"
    assert out["pinch_to_action_frames"] >= out["pinch_confirm_frames"]
    assert "skipped" in report(out)
    seen = {}

    def fake_measure(**kwargs):
        seen.update(kwargs)
        return out

    monkeypatch.setattr(bench_input, "measure", fake_measure)
    args = types.SimpleNamespace(json=True, frames=7, threads=None, model=None, device=None)
    assert bench_input.main(args) == 0
    assert json.loads(capsys.readouterr().out) == out
    assert seen == {"frames": 7, "threads": None, "model": None, "device": None}
