"""Per-client relay from the engine thread to the connection's writer, with coalescing.

The engine never waits for a client: each step is merged into the request's pending delta (positions keep
their latest value), so a slow reader gets fewer, larger deltas and ends in exactly the server's final
state. Pending data is bounded by one delta per request, each at most the request's length. The final step
is always delivered, and followed by the request's `done` message.
"""
from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

from airquill.shared.step import Step, TokenChange


@dataclass
class PendingDelta:
    index: int
    total: int
    length: int
    finish: object
    changes: dict[int, TokenChange] = field(default_factory=dict)
    merged: int = 0  # how many steps this delta coalesces

    def merge(self, step: Step) -> None:
        self.index, self.total, self.length, self.finish = step.index, step.total, step.length, step.finish
        for change in step.changes:
            self.changes[change.position] = change
        if any(p >= step.length for p in self.changes):
            self.changes = {p: c for p, c in self.changes.items() if p < step.length}
        self.merged += 1

    def to_step(self) -> Step:
        changes = tuple(self.changes[p] for p in sorted(self.changes))
        return Step(index=self.index, total=self.total, length=self.length, changes=changes, finish=self.finish)


class StepRelay:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._lock = threading.Lock()
        self._pending: dict[str, PendingDelta] = {}
        self._ready = asyncio.Event()
        self.coalesced = 0  # steps merged into an earlier pending delta (a slow reader)

    def push(self, request_id: str, step: Step) -> None:
        """Called from the engine thread."""
        with self._lock:
            pending = self._pending.get(request_id)
            if pending is None:
                pending = self._pending[request_id] = PendingDelta(step.index, step.total, step.length, step.finish)
            else:
                self.coalesced += 1
            pending.merge(step)
        self._loop.call_soon_threadsafe(self._ready.set)

    def drop(self, request_id: str) -> None:
        with self._lock:
            self._pending.pop(request_id, None)

    async def next_batch(self) -> list[tuple[str, Step, int]]:
        """Wait for pending deltas and take them all: (request id, coalesced step, steps merged)."""
        await self._ready.wait()
        with self._lock:
            taken, self._pending = self._pending, {}
            self._ready.clear()
        return [(rid, delta.to_step(), delta.merged) for rid, delta in taken.items()]
