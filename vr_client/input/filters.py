"""The One Euro filter (Casiez, Roussel and Vogel, CHI 2012), vectorised over arrays of points.

Hand landmarks jitter by a pixel or two when the hand is still and move fast when the user drags. A fixed
low-pass filter must trade jitter for lag; the One Euro filter adapts its cutoff frequency to the signal's speed:
slow movement → low cutoff (jitter removed), fast movement → high cutoff (little lag). Per sample, with
`dt` the time since the previous sample:

    alpha(fc)  = 1 / (1 + tau / dt),  tau = 1 / (2 pi fc)         smoothing factor of a first-order low-pass
    dx         = (x - x_prev) / dt                                 raw speed (from the previous raw sample)
    dx_hat     = dx_hat_prev + alpha(d_cutoff) (dx - dx_hat_prev)  low-passed speed
    fc         = min_cutoff + beta |dx_hat|                        adaptive cutoff
    x_hat      = x_hat_prev + alpha(fc) (x - x_hat_prev)           the output

The paper filters one scalar channel. Here the last axis of the array holds one point's coordinates, so each
point (one landmark) gets one cutoff from the length of its smoothed velocity: the result does not depend on
how the coordinate frame is rotated. `per_point=False` gives the paper's per-channel filter instead. A
`speed_scale` per call divides the speed before it meets `beta`, so `beta` can be expressed in hand sizes per
second and the same setting works for image coordinates and for metres.
"""
from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike


def smoothing_factor(cutoff: float | np.ndarray, dt: float) -> float | np.ndarray:
    """Exponential smoothing factor of a first-order low-pass with cutoff frequency `cutoff` (Hz) at step `dt` (s)."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=float))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Adaptive low-pass filter for an array of points fed one sample at a time with its timestamp.

    `min_cutoff` (Hz) sets the smoothing when still (lower: less jitter, more lag); `beta` (per unit of speed)
    how fast the cutoff rises with speed (higher: less lag when moving); `d_cutoff` (Hz) smooths the speed
    estimate itself.
    """

    def __init__(self, *, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0, per_point: bool = True) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0:
            raise ValueError(f"cutoff frequencies must be positive (min_cutoff={min_cutoff}, d_cutoff={d_cutoff})")
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.min_cutoff, self.beta, self.d_cutoff, self.per_point = float(min_cutoff), float(beta), float(d_cutoff), per_point
        self.reset()

    def reset(self) -> None:
        """Forget the history: the next sample is passed through as the new starting point."""
        self._x_prev: np.ndarray | None = None  # previous raw sample
        self._x_hat: np.ndarray | None = None
        self._dx_hat: np.ndarray | None = None
        self._t_prev: float | None = None

    @property
    def value(self) -> np.ndarray | None:
        """The latest filtered sample (None before the first)."""
        return None if self._x_hat is None else self._x_hat.copy()

    def __call__(self, x: ArrayLike, t: float, *, speed_scale: float = 1.0) -> np.ndarray:
        """Filter one sample `x` taken at time `t` (seconds); returns the filtered sample (a new array).

        A sample whose time does not advance (t <= previous t) cannot give a speed: the previous estimate is
        returned unchanged rather than dividing by zero.
        """
        x = np.array(x, dtype=float)
        if self._x_hat is None or self._t_prev is None:
            self._x_prev, self._x_hat, self._dx_hat, self._t_prev = x.copy(), x.copy(), np.zeros_like(x), float(t)
            return x
        if x.shape != self._x_hat.shape:
            raise ValueError(f"sample shape {x.shape} differs from the filter's {self._x_hat.shape}; call reset() first")
        dt = float(t) - self._t_prev
        if dt <= 0.0:
            return self._x_hat.copy()
        assert self._x_prev is not None and self._dx_hat is not None
        dx = (x - self._x_prev) / dt
        self._dx_hat = self._dx_hat + smoothing_factor(self.d_cutoff, dt) * (dx - self._dx_hat)
        if self.per_point and x.ndim >= 1:
            speed = np.linalg.norm(self._dx_hat, axis=-1, keepdims=True)
        else:
            speed = np.abs(self._dx_hat)
        scale = speed_scale if speed_scale > 0 else 1.0
        cutoff = self.min_cutoff + self.beta * speed / scale
        self._x_hat = self._x_hat + smoothing_factor(cutoff, dt) * (x - self._x_hat)
        self._x_prev, self._t_prev = x, float(t)
        return self._x_hat.copy()
