"""Air-writing: every glyph of every alphabet set survives the distortions a real hand adds (tilt, size, aspect,
jitter, sampling rate and speed), and pinch strokes become the right `Letter` events."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from airquill.vr_client.input.airwriting import (ALPHABETS, AirWriter, AirWriterConfig, PointCloudRecognizer,
                                                 alphabet_strokes, recognizer_for)
from airquill.vr_client.input.events import Letter, Pinch

VARIANTS = 12  # distorted copies per glyph
MARKS = {" ", "\b", "\n"}


def variant(polyline, rng: np.random.Generator, *, tilt: float = 15.0, aspect: float = 1.3,
            jitter: float = 0.02) -> np.ndarray:
    """The glyph as a hand might write it: sampled 24-150 times at an uneven speed, tilted up to `tilt`
    degrees, 0.5-2x the size with the axes up to `aspect` apart, Gaussian jitter of `jitter` times the
    glyph's size on every sample, moved anywhere."""
    p = np.asarray(polyline, dtype=float)
    along = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
    u = np.linspace(0.0, 1.0, int(rng.integers(24, 151)))
    wobble, cycles = rng.uniform(-0.6, 0.6), int(rng.integers(1, 3))  # speed varies, never stops or reverses
    u = u - wobble * np.sin(2 * np.pi * cycles * u) / (2 * np.pi * cycles)
    pts = np.column_stack([np.interp(u * along[-1], along, p[:, k]) for k in range(2)])
    pts = (pts - pts.mean(axis=0)) / np.ptp(pts, axis=0).max()
    angle = np.radians(rng.uniform(-tilt, tilt))
    pts = pts @ np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    pts = pts + rng.normal(0.0, jitter, pts.shape)
    size, stretch = rng.uniform(0.5, 2.0), np.exp(rng.uniform(-np.log(aspect), np.log(aspect)))
    return pts * size * np.array([np.sqrt(stretch), 1 / np.sqrt(stretch)]) + rng.uniform(-3.0, 3.0, 2)


@pytest.fixture(scope="module", params=ALPHABETS)
def alphabet(request):
    return request.param


@pytest.fixture(scope="module")
def recognizer(alphabet):
    return recognizer_for(alphabet)


def test_sets_hold_the_promised_characters():
    latin = {chr(c) for c in range(ord("a"), ord("z") + 1)}
    cyrillic = {chr(c) for c in range(ord("а"), ord("я") + 1)} | {"ё"}
    digits = set("0123456789")
    assert len(cyrillic) == 33
    for name, chars in zip(ALPHABETS, (latin, cyrillic, digits)):
        strokes = alphabet_strokes(name)
        assert set(strokes) == chars | MARKS, name
        assert all(len(poly) >= 2 for poly in strokes.values())
        assert set(recognizer_for(name).names) == chars | MARKS


def test_templates_are_far_apart(alphabet, recognizer):
    """Each template is itself at distance 0 and a fair way (in RMS radii) from every other glyph of its set."""
    for glyph, polyline in alphabet_strokes(alphabet).items():
        distances = dict(zip(recognizer.names, recognizer.distances(polyline)))
        assert distances.pop(glyph) < 1e-9
        nearest = min(distances, key=distances.get)
        assert distances[nearest] > 0.15, f"{glyph!r} is only {distances[nearest]:.3f} from {nearest!r}"


def test_every_glyph_survives_hand_distortions(alphabet, recognizer):
    """≥ 98 % of all distorted variants are read right, and ≥ 90 % of every single glyph's."""
    right, confusions = Counter(), Counter()
    glyphs = alphabet_strokes(alphabet)
    for index, (glyph, polyline) in enumerate(glyphs.items()):
        for seed in range(VARIANTS):
            got, score = recognizer.recognize(variant(polyline, np.random.default_rng([index, seed])))
            assert 0.0 <= score <= 1.0
            if got == glyph:
                right[glyph] += 1
            else:
                confusions[glyph, got] += 1
    accuracy = sum(right.values()) / (len(glyphs) * VARIANTS)
    weakest = min(glyphs, key=lambda g: right[g])
    print(f"\n{alphabet}: {accuracy:.1%} of {len(glyphs) * VARIANTS} variants read right; weakest glyph "
          f"{weakest!r} {right[weakest]}/{VARIANTS}; confusions (written, read): {confusions.most_common()}")
    assert accuracy >= 0.98, confusions.most_common()
    assert all(right[g] >= 0.9 * VARIANTS for g in glyphs), confusions.most_common()


def test_direction_separates_space_from_backspace():
    recognizer = recognizer_for("latin")
    line = np.column_stack([np.linspace(0.2, 0.6, 30), np.full(30, 0.5)])
    assert recognizer.recognize(line)[0] == " "
    assert recognizer.recognize(line[::-1])[0] == "\b"


def test_recognition_is_deterministic():
    stroke = variant(alphabet_strokes("cyrillic")["ж"], np.random.default_rng(7))
    first, second = recognizer_for("cyrillic"), recognizer_for("cyrillic")
    assert np.array_equal(first.distances(stroke), second.distances(stroke))
    assert first.recognize(stroke) == first.recognize(stroke) == second.recognize(stroke)


def test_unknown_alphabet_lists_the_choices():
    with pytest.raises(ValueError, match="latin, cyrillic, digits"):
        recognizer_for("greek")
    with pytest.raises(ValueError, match="choose one of"):
        AirWriter(alphabet="greek")
    writer = AirWriter(alphabet="digits")
    with pytest.raises(ValueError):
        writer.alphabet = "klingon"
    assert writer.alphabet == "digits"


@pytest.mark.parametrize("points, message", [
    ([(0.1, 0.1)], "at least"),
    ([(0.4, 0.4)] * 20, "too small"),
    ([(0.0, 0.0), (float("nan"), 1.0)], "not finite"),
])
def test_degenerate_strokes_are_refused(points, message):
    with pytest.raises(ValueError, match=message):
        recognizer_for("latin").recognize(points)


def test_own_templates_and_several_per_name():
    recognizer = PointCloudRecognizer()
    with pytest.raises(ValueError, match="no templates"):
        recognizer.recognize([(0, 0), (1, 1)])
    recognizer.add_template("check", [(0, 2), (1, 3), (3, 0)])
    recognizer.add_template("bar", [(0, 0), (4, 0)])
    recognizer.add_template("bar", [(0, 0), (0, 4)])  # vertical bars count too
    assert recognizer.recognize([(0, 0), (0.1, 2), (0, 5)])[0] == "bar"
    assert recognizer.recognize([(10, 12), (11, 13.2), (13, 9.8)])[0] == "check"
    scores = recognizer.scores([(0, 0), (0, 4)])
    assert set(scores) == {"check", "bar"} and scores["bar"] == pytest.approx(1.0)
    assert scores["check"] < 0.9


def pinches(polyline, *, hand="right", origin=(0.3, 0.2), size=0.25, samples=40, t0=10.0):
    """Pinch start, holds and end tracing a grid polyline at `origin`, `size` panel units per 4 grid units."""
    p = np.asarray(polyline, dtype=float)
    along = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
    s = np.linspace(0.0, along[-1], samples)
    xs, ys = (origin[k] + np.interp(s, along, p[:, k]) * size / 4 for k in range(2))
    phases = ["start"] + ["hold"] * (samples - 2) + ["end"]
    return [Pinch(ph, hand, float(x), float(y), t0 + i / 30) for i, (ph, x, y) in enumerate(zip(phases, xs, ys))]


def feed_all(writer, events):
    return [out for out in map(writer.feed, events) if out is not None]


def test_air_writer_turns_strokes_into_letters_in_the_current_alphabet():
    writer = AirWriter("right")
    events = pinches(alphabet_strokes("latin")["k"])
    letters = feed_all(writer, events)
    assert [letter.char for letter in letters] == ["k"] and isinstance(letters[0], Letter)
    assert letters[0].t == events[-1].t and letters[0].score >= writer.config.min_score
    assert writer.writing is False
    writer.alphabet = "cyrillic"
    assert [letter.char for letter in feed_all(writer, pinches(alphabet_strokes("cyrillic")["ж"]))] == ["ж"]
    writer.alphabet = "digits"
    assert [letter.char for letter in feed_all(writer, pinches(alphabet_strokes("digits")["7"]))] == ["7"]
    assert [letter.char for letter in feed_all(writer, pinches(((4, 0), (0, 0))))] == ["\b"]


def test_taps_other_hands_and_orphan_events_produce_nothing():
    writer = AirWriter("right")
    tap = [Pinch("start", "right", 0.5, 0.5, 1.0), Pinch("hold", "right", 0.505, 0.502, 1.03),
           Pinch("end", "right", 0.503, 0.501, 1.06)]
    assert feed_all(writer, tap) == []
    assert feed_all(writer, pinches(alphabet_strokes("latin")["z"], hand="left")) == []
    assert feed_all(writer, pinches(alphabet_strokes("latin")["z"])[1:]) == []  # its start was missed
    events = pinches(alphabet_strokes("latin")["z"])
    feed_all(writer, events[:10])
    assert writer.writing
    writer.cancel()
    assert feed_all(writer, events[10:]) == [] and not writer.writing


def test_weak_matches_are_dropped_at_the_configured_minimum():
    events = pinches(alphabet_strokes("latin")["s"])
    (letter,) = feed_all(AirWriter("right", config=AirWriterConfig(min_score=0.0)), events)
    assert letter.char == "s"
    assert feed_all(AirWriter("right", config=AirWriterConfig(min_score=letter.score + 1e-6)), events) == []
    with pytest.raises(AttributeError):
        AirWriterConfig().min_score = 0.1  # frozen: one config object can be shared safely
