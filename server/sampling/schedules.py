"""Commit schedules: how many (and which) masked tokens of a block become final at each step.

A schedule sees the candidates' confidence and entropy and returns the indices to commit. Fixed schedules
(linear, cosine) commit a planned count each step, so a block takes exactly its step budget; adaptive ones
(threshold, entropy bound) commit as many as their rule allows between a minimum and a maximum per step, so
a block takes at most ceil(n / min_per_step) steps. Schedules are chosen by name from `SCHEDULES`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Protocol

import torch


class CommitSchedule(Protocol):
    adaptive: ClassVar[bool]

    def block_steps(self, n_masked: int, budget: int) -> int:
        """Steps (exact for fixed schedules, maximum for adaptive ones) to fill a block of n masked tokens."""

    def select(
        self, confidence: torch.Tensor, entropy: torch.Tensor, *, step: int, steps: int, block_total: int,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Indices into the candidates (the block's still-masked positions) to commit at `step` (0-based) of
        `steps`; `block_total` is how many positions of the block were masked when it started; `generator` is
        the request's own random stream (for schedules that pick positions at random)."""


def _top_confident(confidence: torch.Tensor, k: int) -> torch.Tensor:
    k = max(0, min(k, confidence.numel()))
    order = torch.sort(-confidence, stable=True).indices  # stable on ties: reproducible runs
    return order[:k]


@dataclass(frozen=True)
class FixedSchedule:
    """Commit a planned share of the block per step, the most confident first (MDLM/LLaDA low-confidence
    remasking), or at random positions (`random`: MDLM's ancestral sampler, whose samples keep the data's
    diversity where confidence-first ordering drifts into repetition). At least one token per step and at
    least one left for every later step, so a block takes exactly its budget (capped at its size)."""

    name: str = "linear"
    adaptive: ClassVar[bool] = False
    order: str = "confidence"  # confidence | random

    def revealed(self, fraction: float) -> float:
        if self.name == "cosine":  # MaskGIT: few tokens early, most late
            return 1.0 - math.cos(math.pi / 2 * fraction)
        return fraction

    def block_steps(self, n_masked: int, budget: int) -> int:
        return max(1, min(budget, n_masked))

    def select(self, confidence, entropy, *, step, steps, block_total, generator=None):
        remaining = confidence.numel()
        committed = block_total - remaining
        planned = round(block_total * self.revealed((step + 1) / steps)) - committed
        later_steps = steps - step - 1
        count = min(max(1, planned), remaining - later_steps)
        if self.order == "random":
            return torch.randperm(remaining, generator=generator)[:count]
        return _top_confident(confidence, count)


@dataclass(frozen=True)
class AdaptiveSchedule:
    """Commits as many candidates as `count` allows, clamped to [min_per_step, max_per_step], in `order`."""

    min_per_step: int = 1
    max_per_step: int = 1_000_000
    adaptive: ClassVar[bool] = True

    def block_steps(self, n_masked: int, budget: int) -> int:
        return math.ceil(n_masked / self.min_per_step)

    def select(self, confidence, entropy, *, step, steps, block_total, generator=None):
        order = self.order(confidence, entropy)
        k = min(self.max_per_step, max(self.min_per_step, self.count(confidence[order], entropy[order])))
        return order[:k]

    def order(self, confidence: torch.Tensor, entropy: torch.Tensor) -> torch.Tensor:
        return torch.sort(-confidence, stable=True).indices

    def count(self, confidence: torch.Tensor, entropy: torch.Tensor) -> int:
        raise NotImplementedError


@dataclass(frozen=True)
class ThresholdSchedule(AdaptiveSchedule):
    """Commit every candidate whose confidence exceeds `threshold` (Fast-dLLM)."""

    threshold: float = 0.9

    def count(self, confidence, entropy):
        return int((confidence > self.threshold).sum())


@dataclass(frozen=True)
class EntropyBoundSchedule(AdaptiveSchedule):
    """Commit the lowest-entropy candidates while their summed entropy stays under `bound` nats (EB-sampler)."""

    bound: float = 1.0

    def order(self, confidence, entropy):
        return torch.sort(entropy, stable=True).indices

    def count(self, confidence, entropy):
        return int((entropy.cumsum(0) <= self.bound).sum())


SCHEDULES = {
    "linear": lambda **kw: FixedSchedule("linear", **kw),
    "cosine": lambda **kw: FixedSchedule("cosine", **kw),
    "random": lambda **kw: FixedSchedule("linear", order="random", **kw),
    "threshold": ThresholdSchedule,
    "entropy": EntropyBoundSchedule,
}


def make_schedule(name: str, **options) -> CommitSchedule:
    try:
        factory = SCHEDULES[name]
    except KeyError:
        raise ValueError(f"unknown schedule {name!r}; choose from {', '.join(SCHEDULES)}") from None
    return factory(**options)
