"""Air-writing: a pinch-held fingertip path (a stroke) recognised as a letter, digit or edit mark.

The recogniser is of the $P family (Vatavu, Anthony & Wobbrock, "Gestures as point clouds", ICMI 2012): a
stroke is resampled to n points evenly spaced along its path, centred on its centroid, scaled, and compared
with every template by greedy cloud matching (each point takes the nearest unmatched template point, earlier
matches weigh more; a few start points, both directions; the least weighted sum wins). Departures, each for
a measured reason: (1) scale is the RMS radius about the centroid rather than the bounding box, which a
15-degree tilt can grow by a fifth (a rotation leaves RMS alone); (2) every point also carries its
position along the stroke as a third, weighted coordinate, since a bare cloud cannot tell a left-to-right line
(space) from a right-to-left one (backspace), and matching then also punishes a stroke that is another glyph
plus a tail (и/й, е/ё, ш/щ), which plain $P's decaying weights forgive; (3) light smoothing takes out jitter.

Latin and Cyrillic share shapes, so recognition runs within one alphabet set at a time: "latin" (a-z),
"cyrillic" (а-я with ё) or "digits" (0-9), each with the three edit marks. Glyphs are single strokes in the
spirit of Graffiti, written as polylines on a grid x 0..4 (right), y 0..4 (down; descenders reach 6).

Edit marks (every set)   space ' ': line left to right    backspace '\\b': line right to left
                         enter '\\n': down, then left (the ↵ key's shape)
Latin   as written: c, e (bar first, then round), m, n (from the bottom-left), o (anticlockwise from the top),
  p (stem up, bowl), r (p with a leg), s, u, v, w, z.   a: Λ, no crossbar   b: stem down, bowl at the bottom
  d: stem down, back up, one big bowl   f: Γ from its right end   g: c, then up and in (G)   h: stem down,
  back up halfway, arch   i: vertical line down   j: stem down, hook left, loop back up across the stem
  k: stem down, back up halfway, arm up-right, back in, leg down-right   l: L   q: o, then a tail out to the
  bottom-right   t: bar, then down at the right end (┐)   x: ↘, ←, ↗   y: ↘ to the middle, ↗, long ↙
Cyrillic   а: ɑ, bowl then the stem (Λ is л)   б: 6 with a top bar   в: B (stem up, two bumps)   г: Г (up,
  right)   д: handwritten, a g (bowl, descender hooking left)   е: as Latin e   ё: е, then a flick up to the
  dots   ж: х with sides (↘ ↑ ↙ ↑)   з: 3   и: И (down, ↗, down)   й: и, then a flick up to the breve
  к: as Latin k   л: Λ   м: M   н: h-like (stem down, back up halfway, across, down)   о: circle   п: П
  р: as Latin p   с: c   т: ┐   у: as Latin y   ф: stem up, then round the circle   х: as Latin x
  ц: ⊔, then back down the right stem into a tail   ч: mirrored h (right stem down, back up halfway, left,
  up)   ш: ⊔⊔ (middle stem up and back down)   щ: ш, then the tail of ц   ъ: flag, stem down, bowl
  ы: ь, then across to the top of a right stem and down   ь: stem down, bowl at the bottom   э: е mirrored
  ю: stem down, back up halfway, bar, circle   я: Я (stem up, bowl to the left, leg down-left)
Digits   as written; 1 is a vertical line; 4 is closed (stem up, ↙, bar to the right).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .events import Hand, Letter, Pinch

Point = tuple[float, float]
Polyline = tuple[Point, ...]

ALPHABETS = ("latin", "cyrillic", "digits")

_MARKS: dict[str, Polyline] = {
    " ": ((0, 0), (4, 0)),
    "\b": ((4, 0), (0, 0)),
    "\n": ((4, 0), (4, 4), (0, 4)),
}
_CIRCLE: Polyline = ((2, 0), (1, 0), (0, 1), (0, 3), (1, 4), (3, 4), (4, 3), (4, 1), (3, 0), (2, 0))
_C: Polyline = ((4, 1), (3, 0), (1, 0), (0, 1), (0, 3), (1, 4), (3, 4), (4, 3))
_E: Polyline = ((0, 2), (4, 2), (4, 1), (3, 0), (1, 0), (0, 1), (0, 3), (1, 4), (4, 4))
_K: Polyline = ((0, 0), (0, 4), (0, 2), (4, 0), (1, 2), (4, 4))
_M: Polyline = ((0, 4), (0, 0), (2, 3), (4, 0), (4, 4))
_P: Polyline = ((0, 4), (0, 0), (3, 0), (4, 1), (3, 2), (0, 2))
_T: Polyline = ((0, 0), (4, 0), (4, 4))
_X: Polyline = ((0, 0), (4, 4), (0, 4), (4, 0))
_Y: Polyline = ((0, 0), (2, 2), (4, 0), (1, 6))
_LAMBDA: Polyline = ((0, 4), (2, 0), (4, 4))
# ё and й get strokes of their own (no diacritic in one stroke): the base letter, then a flick up to where
# the dots or the breve sit.
_FLICK: Polyline = ((2, -1),)
_SH: Polyline = ((0, 0), (0, 4), (2, 4), (2, 0), (2, 4), (4, 4), (4, 0))
_SOFT: Polyline = ((0, 4), (3, 4), (4, 3), (3, 2), (0, 2))  # ь's bowl, from the bottom of the stem

_LATIN: dict[str, Polyline] = {
    "a": _LAMBDA,
    "b": ((0, 0),) + _SOFT,
    "c": _C,
    "d": ((0, 0), (0, 4), (0, 0), (2, 0), (4, 1), (4, 3), (2, 4), (0, 4)),
    "e": _E,
    "f": ((4, 0), (0, 0), (0, 4)),
    "g": _C + ((4, 2), (1, 2)),
    "h": ((0, 0), (0, 4), (0, 2), (1, 1), (3, 1), (4, 2), (4, 4)),
    "i": ((0, 0), (0, 4)),
    "j": ((2, 0), (2, 5), (1, 6), (0, 5), (1, 4), (4, 3)),
    "k": _K,
    "l": ((0, 0), (0, 4), (4, 4)),
    "m": _M,
    "n": ((0, 4), (0, 0), (4, 4), (4, 0)),
    "o": _CIRCLE,
    "p": _P,
    "q": _CIRCLE + ((5, 5),),
    "r": _P + ((4, 4),),
    "s": ((4, 0), (1, 0), (0, 1), (1, 2), (3, 2), (4, 3), (3, 4), (0, 4)),
    "t": _T,
    "u": ((0, 0), (0, 3), (1, 4), (3, 4), (4, 3), (4, 0)),
    "v": ((0, 0), (2, 4), (4, 0)),
    "w": ((0, 0), (1, 4), (2, 1), (3, 4), (4, 0)),
    "x": _X,
    "y": _Y,
    "z": ((0, 0), (4, 0), (0, 4), (4, 4)),
}

_CYRILLIC: dict[str, Polyline] = {
    "а": ((4, 1), (3, 0), (1, 0), (0, 1), (0, 3), (1, 4), (3, 4), (4, 3), (4, 0), (4, 4)),
    "б": ((4, 0), (1, 0), (0, 1), (0, 3), (1, 4), (3, 4), (4, 3), (3, 2), (0, 2)),
    "в": ((0, 4), (0, 0), (3, 0), (4, 1), (3, 2), (4, 3), (3, 4), (0, 4)),
    "г": ((0, 4), (0, 0), (4, 0)),
    "д": ((4, 1), (3, 0), (1, 0), (0, 1), (0, 2), (1, 3), (3, 3), (4, 2), (4, 5), (3, 6), (1, 6), (0, 5)),
    "е": _E,
    "ё": _E + _FLICK,
    "ж": ((0, 0), (4, 4), (4, 0), (0, 4), (0, 0)),
    "з": ((0, 1), (1, 0), (3, 0), (4, 1), (2, 2), (4, 3), (3, 4), (1, 4), (0, 3)),
    "и": ((0, 0), (0, 4), (4, 0), (4, 4)),
    "й": ((0, 0), (0, 4), (4, 0), (4, 4)) + _FLICK,
    "к": _K,
    "л": _LAMBDA,
    "м": _M,
    "н": ((0, 0), (0, 4), (0, 2), (4, 2), (4, 4)),
    "о": _CIRCLE,
    "п": ((0, 4), (0, 0), (4, 0), (4, 4)),
    "р": _P,
    "с": _C,
    "т": _T,
    "у": _Y,
    "ф": ((2, 6), (2, 0), (2, 1), (1, 1), (0, 2), (0, 4), (1, 5), (3, 5), (4, 4), (4, 2), (3, 1), (2, 1)),
    "х": _X,
    "ц": ((0, 0), (0, 4), (4, 4), (4, 0), (4, 5), (5, 6)),
    "ч": ((4, 0), (4, 4), (4, 2), (1, 2), (0, 1), (0, 0)),
    "ш": _SH,
    "щ": _SH + ((4, 5), (5, 6)),
    "ъ": ((0, 0), (2, 0), (2, 4), (4, 4), (5, 3), (4, 2), (2, 2)),
    "ы": ((0, 0),) + _SOFT + ((4, 0), (4, 4)),
    "ь": ((0, 0),) + _SOFT,
    "э": ((4, 2), (0, 2), (0, 1), (1, 0), (3, 0), (4, 1), (4, 3), (3, 4), (0, 4)),
    "ю": ((0, 0), (0, 4), (0, 2), (1, 2), (2, 0), (4, 0), (5, 2), (4, 4), (2, 4), (1, 2)),
    "я": ((4, 4), (4, 0), (1, 0), (0, 1), (1, 2), (4, 2), (0, 4)),
}

_DIGITS: dict[str, Polyline] = {
    "0": _CIRCLE,
    "1": ((0, 0), (0, 4)),
    "2": ((0, 1), (1, 0), (3, 0), (4, 1), (0, 4), (4, 4)),
    "3": ((0, 0), (3, 0), (4, 1), (2, 2), (4, 3), (3, 4), (0, 4)),
    "4": ((3, 4), (3, 0), (0, 3), (4, 3)),
    "5": ((4, 0), (0, 0), (0, 2), (3, 2), (4, 3), (3, 4), (0, 4)),
    "6": ((3, 0), (1, 1), (0, 3), (1, 4), (3, 4), (4, 3), (3, 2), (0, 2)),
    "7": ((0, 0), (4, 0), (1, 4)),
    "8": ((4, 1), (3, 0), (1, 0), (0, 1), (4, 3), (3, 4), (1, 4), (0, 3), (4, 1)),
    "9": ((4, 1), (3, 0), (1, 0), (0, 1), (1, 2), (3, 2), (4, 1), (4, 4)),
}

_SETS: dict[str, dict[str, Polyline]] = {"latin": _LATIN, "cyrillic": _CYRILLIC, "digits": _DIGITS}


def alphabet_strokes(alphabet: str) -> dict[str, Polyline]:
    """The template polylines of one alphabet set (edit marks included), for a cheat sheet in the UI."""
    return {**_glyphs_of(alphabet), **_MARKS}


def _glyphs_of(alphabet: str) -> dict[str, Polyline]:
    try:
        return _SETS[alphabet]
    except KeyError:
        raise ValueError(f"unknown alphabet {alphabet!r}; choose one of {', '.join(ALPHABETS)}") from None


def resample(points: np.ndarray, n: int) -> np.ndarray:
    """`n` points evenly spaced along the path through `points` (so sampling rate and speed do not matter)."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    along = np.concatenate([[0.0], np.cumsum(seg)])
    targets = np.linspace(0.0, along[-1], n)
    return np.column_stack([np.interp(targets, along, points[:, k]) for k in range(points.shape[1])])


def _smooth(points: np.ndarray, radius: int) -> np.ndarray:
    """A triangular moving average over 2 * radius + 1 points (ends held), to take out tracking jitter."""
    if radius < 1:
        return points
    kernel = np.concatenate([np.arange(1, radius + 2), np.arange(radius, 0, -1)]).astype(float)
    kernel /= kernel.sum()
    padded = np.pad(points, ((radius, radius), (0, 0)), mode="edge")
    return np.column_stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(points.shape[1])])


class PointCloudRecognizer:
    """$P-style recogniser with an order coordinate: templates in, (best name, score in [0, 1]) out.

    `n` points per cloud; `time_weight`: span of the order coordinate, in units of the shape's RMS radius
    (0 gives plain, direction-blind $P); `epsilon`: every n**(1-epsilon)-th point is a start, as in $P;
    `reject_distance`: the mean matched distance (RMS-radius units) that scores 0; `smoothing`: radius of
    the jitter filter, in points of a 4n-point resampling; strokes with fewer than `min_points` points or
    a bounding box under `min_extent` (input units) are refused.
    """

    def __init__(self, *, n: int = 32, time_weight: float = 2.0, epsilon: float = 0.5,
                 reject_distance: float = 0.6, smoothing: int = 2, min_points: int = 2,
                 min_extent: float = 1e-6) -> None:
        self.n, self.time_weight, self.reject_distance = n, time_weight, reject_distance
        self.smoothing = smoothing
        self.min_points, self.min_extent = min_points, min_extent
        self._starts = np.arange(0, n, max(1, int(n ** (1.0 - epsilon))))
        self._names: list[str] = []
        self._clouds: list[np.ndarray] = []
        self._stack: np.ndarray | None = None  # (templates, n, 3), rebuilt after add_template

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._names)

    def add_template(self, name: str, points: Sequence[Point] | np.ndarray) -> None:
        """Add one example stroke for `name` (several per name are fine: the best one counts)."""
        self._names.append(name)
        self._clouds.append(self.normalise(points))
        self._stack = None

    def normalise(self, points: Sequence[Point] | np.ndarray) -> np.ndarray:
        """The (n, 3) cloud of a stroke: smoothed, resampled, centred, RMS radius 1, plus the order coordinate."""
        p = np.asarray(points, dtype=float).reshape(-1, 2)
        if len(p) < self.min_points:
            raise ValueError(f"a stroke needs at least {self.min_points} points, got {len(p)}")
        if not np.isfinite(p).all():
            raise ValueError("the stroke has points that are not finite")
        extent = float(np.ptp(p, axis=0).max())
        if extent < self.min_extent:
            raise ValueError(f"the stroke's extent {extent:.3g} is too small to recognise (a tap?)")
        p = resample(_smooth(resample(p, 4 * self.n), self.smoothing), self.n)
        p = p - p.mean(axis=0)
        p = p / np.sqrt((p ** 2).sum(axis=1).mean())
        order = (np.linspace(0.0, 1.0, self.n) - 0.5) * self.time_weight
        return np.column_stack([p, order])

    def distances(self, points: Sequence[Point] | np.ndarray) -> np.ndarray:
        """Mean weighted matching distance from the stroke to every template, in template order."""
        if not self._clouds:
            raise ValueError("the recogniser has no templates")
        if self._stack is None:
            self._stack = np.stack(self._clouds)
        return _greedy_cloud_distances(self.normalise(points), self._stack, self._starts)

    def scores(self, points: Sequence[Point] | np.ndarray) -> dict[str, float]:
        """Every name's best score (1 = identical clouds, 0 = at or beyond `reject_distance`)."""
        best: dict[str, float] = {}
        for name, d in zip(self._names, self.distances(points)):
            best[name] = max(best.get(name, 0.0), self._score(float(d)))
        return best

    def recognize(self, points: Sequence[Point] | np.ndarray) -> tuple[str, float]:
        """The nearest template's name and its score; ValueError for too few points or a dot."""
        d = self.distances(points)
        i = int(np.argmin(d))
        return self._names[i], self._score(float(d[i]))

    def _score(self, distance: float) -> float:
        return max(0.0, 1.0 - distance / self.reject_distance)


def _greedy_cloud_distances(cloud: np.ndarray, templates: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """$P's greedy cloud match against all templates at once, both directions and all start points together.

    Returns, per template, the least over (direction, start) of the weighted sum of matched distances divided
    by the sum of the weights, i.e. a mean distance in units of the RMS radius.
    """
    m, n, _ = templates.shape
    pair = np.linalg.norm(cloud[None, :, None, :] - templates[:, None, :, :], axis=-1)  # (m, n stroke, n tmpl)
    both = np.stack([pair, pair.transpose(0, 2, 1)], axis=1)  # (m, 2, n from, n to)
    rows = (starts[None, :] + np.arange(n)[:, None]) % n  # (step, start): which "from" point goes at each step
    by_step = np.moveaxis(both[:, :, rows, :], 2, 0)  # (step, m, 2, start, n to)
    taken = np.zeros(by_step.shape[1:], dtype=float)  # +inf where a "to" point is already matched
    total = np.zeros(by_step.shape[1:-1])
    for step in range(n):
        row = by_step[step] + taken
        j = np.argmin(row, axis=-1)[..., None]
        total += (1.0 - step / n) * np.take_along_axis(row, j, axis=-1)[..., 0]
        np.put_along_axis(taken, j, np.inf, axis=-1)
    weights = n - (n - 1) / 2.0  # sum over steps of (1 - step / n)
    return total.reshape(m, -1).min(axis=1) / weights


def recognizer_for(alphabet: str, **options: Any) -> PointCloudRecognizer:
    """A fresh recogniser holding one alphabet set's glyphs and the edit marks (options go to the recogniser).

    Fresh rather than shared, so a caller's `add_template` (a user's own variant of a glyph) stays its own."""
    strokes = alphabet_strokes(alphabet)  # ValueError for an unknown set, before any work
    recognizer = PointCloudRecognizer(**options)
    for name, polyline in strokes.items():
        recognizer.add_template(name, polyline)
    return recognizer


@dataclass(frozen=True)
class AirWriterConfig:
    """`min_score`: weaker matches are dropped rather than typed; `min_extent` (pointer-space units) and
    `min_points`: strokes smaller than this are taps, not letters."""

    min_score: float = 0.5
    min_extent: float = 0.03
    min_points: int = 4


class AirWriter:
    """Turns one hand's pinch strokes into `Letter` events, within the alphabet set chosen at run time."""

    def __init__(self, hand: Hand = "right", *, alphabet: str = "latin",
                 config: AirWriterConfig = AirWriterConfig()) -> None:
        self.hand, self.config = hand, config
        self._recognizers: dict[str, PointCloudRecognizer] = {}
        self._stroke: list[Point] | None = None
        self.alphabet = alphabet

    @property
    def alphabet(self) -> str:
        """The set strokes are read in ("latin", "cyrillic", "digits"); switchable between strokes."""
        return self._alphabet

    @alphabet.setter
    def alphabet(self, name: str) -> None:
        if name not in self._recognizers:
            self._recognizers[name] = recognizer_for(name)  # raises ValueError for an unknown set
        self._alphabet = name

    @property
    def writing(self) -> bool:
        """True while a stroke is in progress (a UI can draw the ink)."""
        return self._stroke is not None

    def feed(self, event: Pinch) -> Letter | None:
        """Take one pinch event; on the end of a stroke, the recognised letter (or None: tap, weak match)."""
        if event.hand != self.hand:
            return None
        if event.phase == "start":
            self._stroke = [(event.x, event.y)]
            return None
        if self._stroke is None:
            return None  # hold or end without a start (the start was before this writer existed)
        self._stroke.append((event.x, event.y))
        if event.phase == "hold":
            return None
        stroke, self._stroke = self._stroke, None
        return self._recognize(stroke, event.t)

    def cancel(self) -> None:
        """Drop the stroke in progress (an open palm, say)."""
        self._stroke = None

    def _recognize(self, stroke: list[Point], t: float) -> Letter | None:
        points = np.asarray(stroke, dtype=float)
        if len(points) < self.config.min_points or np.ptp(points, axis=0).max() < self.config.min_extent:
            return None
        char, score = self._recognizers[self._alphabet].recognize(points)
        return Letter(char, score, t) if score >= self.config.min_score else None
