"""Sampling settings for one request (one frozen dataclass, as the house style asks)."""
from __future__ import annotations

from dataclasses import dataclass

from airquill.server.sampling.schedules import CommitSchedule, make_schedule


@dataclass(frozen=True)
class SamplingOptions:
    steps: int = 64  # step budget for fixed schedules (over the whole output)
    schedule: str = "linear"  # linear | cosine | threshold | entropy
    threshold: float = 0.9  # threshold schedule
    entropy_bound: float = 1.0  # entropy schedule (nats per step)
    min_per_step: int = 1  # adaptive schedules
    max_per_step: int | None = None  # adaptive schedules; None = the whole block
    temperature: float = 0.8
    top_p: float = 0.95
    # > 1 discourages tokens already in the last `repetition_window` tokens. 1.5 over 32 tokens is the measured
    # default: without it the shipped model repeats itself (BENCHMARKS.md, "Sampler")
    repetition_penalty: float = 1.5
    repetition_window: int = 32
    seed: int = 0
    block_size: int | None = None  # None: the model's default (generation) or its widest block (infill)
    prefix_cache: bool = True
    stop_at_eos: bool = True  # generation: end at the first end-of-text token (skips the remaining blocks)
    min_tokens: int = 8  # generation: no end-of-text token among the first this many output tokens

    def commit_schedule(self) -> CommitSchedule:
        limits = {"min_per_step": self.min_per_step, "max_per_step": self.max_per_step or 1_000_000}
        by_name = {
            "threshold": {"threshold": self.threshold, **limits},
            "entropy": {"bound": self.entropy_bound, **limits},
        }
        return make_schedule(self.schedule, **by_name.get(self.schedule, {}))

    def validate(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.repetition_penalty < 1.0:
            raise ValueError(f"repetition_penalty must be >= 1, got {self.repetition_penalty}")
        if self.repetition_window < 1:
            raise ValueError(f"repetition_window must be at least 1, got {self.repetition_window}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.min_per_step < 1:
            raise ValueError(f"min_per_step must be at least 1, got {self.min_per_step}")
        if self.max_per_step is not None and self.max_per_step < self.min_per_step:
            raise ValueError("max_per_step must be at least min_per_step")
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.entropy_bound <= 0:
            raise ValueError(f"entropy_bound must be > 0, got {self.entropy_bound}")
        if self.min_tokens < 0:
            raise ValueError(f"min_tokens must be >= 0, got {self.min_tokens}")
        if self.block_size is not None and self.block_size < 1:
            raise ValueError(f"block_size must be at least 1, got {self.block_size}")
