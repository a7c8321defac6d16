"""The two drivers of the per-request state machines: `iter_denoise` for one request, `Scheduler` for many.

Both do the same three things per forward pass: ask each live request what it needs, run the model once,
hand each request its logits. Nothing else copies that loop.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import torch

from airquill.server.models.base import ForwardRequest, ModelAdapter
from airquill.shared.step import Step


class DenoiseState(Protocol):
    """What every family's per-request state machine offers its drivers."""

    cancel_requested: bool

    @property
    def done(self) -> bool: ...

    def next_forward(self) -> ForwardRequest: ...

    def advance(self, logits: torch.Tensor) -> Step: ...

    def finish_cancelled(self) -> Step: ...


@torch.inference_mode()
def iter_denoise(adapter: ModelAdapter, state: DenoiseState) -> Iterator[Step]:
    """Drive one request, yielding every step; the last step has `is_final` set."""
    while not state.done:
        if state.cancel_requested:
            yield state.finish_cancelled()
            return
        (logits,) = adapter.forward([state.next_forward()])
        yield state.advance(logits)


def denoise(adapter: ModelAdapter, state: DenoiseState) -> Step:
    """Run a request to the end and return its final step."""
    last = None
    for last in iter_denoise(adapter, state):
        pass
    assert last is not None
    return last


@dataclass
class Scheduler:
    """Continuous batching: each `tick` advances every live request (up to `max_batch`) by one forward pass.

    Requests join with `submit` and leave when finished or cancelled, between ticks. A request that asked
    to cancel is finished at the next tick without using the model.
    """

    adapter: ModelAdapter
    max_batch: int = 64
    live: list[DenoiseState] = field(default_factory=list)
    ticks: int = 0

    def submit(self, state: DenoiseState) -> DenoiseState:
        if state.done:
            raise ValueError("request already finished")
        self.live.append(state)
        return state

    @property
    def idle(self) -> bool:
        return not self.live

    @torch.inference_mode()
    def tick(self) -> list[tuple[DenoiseState, Step]]:
        """One forward pass over the live requests; returns each advanced request with its step."""
        results: list[tuple[DenoiseState, Step]] = []
        running: list[DenoiseState] = []
        for state in self.live:
            if state.cancel_requested:
                results.append((state, state.finish_cancelled()))
            elif len(running) < self.max_batch:
                running.append(state)
        if running:
            logits = self.adapter.forward([state.next_forward() for state in running])
            results.extend((state, state.advance(out)) for state, out in zip(running, logits))
        waiting = [state for state in self.live if state not in running]
        self.live = [state for state in waiting + running if not state.done]  # the skipped go first next tick
        self.ticks += 1
        return results

    def run(self) -> Iterator[tuple[DenoiseState, Step]]:
        """Tick until no request is left."""
        while self.live:
            yield from self.tick()
